module github.com/pavilion-trust/gateway/integration

go 1.24

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/mitchellh/mapstructure v1.5.1-0.20231216201459-8508981c8b6c
	github.com/pavilion-trust/gateway v0.0.0
	github.com/traefik/yaegi v0.16.1
)

replace github.com/pavilion-trust/gateway => ../
