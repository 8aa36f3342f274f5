// Package attacktest is the gateway's attack campaign and the tests of its entry-point limits:
// real Traefik with the repository's static/traefik.yml and dynamic/ (through gatewaytest),
// real TLS and HTTP/2, redis-server, the development issuer and two recording echo upstreams.
//
// Every case of the campaign states its exact answer and whether the request may reach an
// upstream; a refused request must never reach one. `go test -v -run TestCampaign
// ./attacktest/` prints the list of cases with their answers.
package attacktest
