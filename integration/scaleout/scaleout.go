// Package scaleout drives load against several gateway instances that share one limit and
// checks what each client was admitted against its limit, per window: the "four gateways,
// one limit" test (integration/plugintest) and benchmark (integration/bench).
//
// Every request's send and receive times are recorded on this machine's clock, which Redis
// (on loopback, same host) shares: a request admitted at Redis time r has send <= r <= recv.
// A count is therefore certain, never estimated: an admitted request is counted in a window
// only when [send, recv] lies inside it.
package scaleout

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sample is one request.
type Sample struct {
	Client     string
	Gateway    int
	Send, Recv time.Time
	Code       int // 0: transport error
}

// Load sends requests for clients, spread round-robin over urls (one per gateway), from
// workers goroutines (client i is sent by worker i % workers, one request at a time per
// worker) for d, and returns every sample.
func Load(urls []string, clients []string, workers int, d time.Duration) []Sample {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxIdleConns: 4 * workers}}
	defer hc.CloseIdleConnections()
	end := time.Now().Add(d)
	var mu sync.Mutex
	var all []Sample
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		var mine []string
		for i := w; i < len(clients); i += workers {
			mine = append(mine, clients[i])
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func(w int, mine []string) {
			defer wg.Done()
			var out []Sample
			for i := 0; time.Now().Before(end); i++ {
				c := mine[i%len(mine)]
				g := (i + w) % len(urls)
				// Wall-clock readings (Round(0) drops the monotonic part): the scripts count
				// on Redis' TIME, the wall clock, which may be slewed against the monotonic one.
				s := Sample{Client: c, Gateway: g, Send: time.Now().Round(0)}
				req, _ := http.NewRequest(http.MethodGet, urls[g], nil)
				req.Header.Set("X-Auth-Client", c)
				res, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					s.Code = res.StatusCode
				}
				s.Recv = time.Now().Round(0)
				out = append(out, s)
			}
			mu.Lock()
			all = append(all, out...)
			mu.Unlock()
		}(w, mine)
	}
	wg.Wait()
	return all
}

// Result is what one algorithm's clients got.
type Result struct {
	Name       string
	Algorithm  string
	Limit      int
	Window     time.Duration
	Clients    int
	Duration   time.Duration
	Requests   int
	Admitted   int
	Refused    int
	Other      map[int]int // other statuses (0: transport error)
	Gateways   []int       // admitted per gateway
	MaxFixed   int         // most admitted to one client within one fixed window (aligned to the clock, as the scripts' windows are)
	MaxSliding int         // most admitted to one client within any interval of one window
	// GCRA: the most any client got beyond burst + elapsed × rate, over the whole run
	// (negative: under); the limit the algorithm promises.
	GCRAExcess int
	// Mean admitted per client per full window (the fixed windows entirely inside the run).
	MeanFixed float64
	ReqPerSec float64
}

// Analyze computes a Result from samples of clients limited to limit per window.
func Analyze(name, algorithm string, limit int, window time.Duration, samples []Sample, d time.Duration) Result {
	r := Result{Name: name, Algorithm: algorithm, Limit: limit, Window: window, Duration: d, Other: map[int]int{}, GCRAExcess: -1 << 30}
	byClient := map[string][]Sample{}
	var first, last time.Time
	maxGW := 0
	for _, s := range samples {
		r.Requests++
		if s.Gateway+1 > maxGW {
			maxGW = s.Gateway + 1
		}
		if first.IsZero() || s.Send.Before(first) {
			first = s.Send
		}
		if s.Recv.After(last) {
			last = s.Recv
		}
		switch s.Code {
		case 200:
			r.Admitted++
			byClient[s.Client] = append(byClient[s.Client], s)
		case 429:
			r.Refused++
		default:
			r.Other[s.Code]++
		}
	}
	r.Gateways = make([]int, maxGW)
	if d > 0 {
		r.ReqPerSec = float64(r.Requests) / d.Seconds()
	}
	r.Clients = len(byClient)
	fullWindows := 0
	fullAdmitted := 0
	for _, adm := range byClient {
		sort.Slice(adm, func(i, j int) bool { return adm[i].Send.Before(adm[j].Send) })
		for _, s := range adm {
			r.Gateways[s.Gateway]++
		}
		// Fixed windows: [k·W, (k+1)·W) of the clock.
		perWindow := map[int64]int{}
		for _, s := range adm {
			k := s.Send.UnixNano() / int64(window)
			if s.Recv.UnixNano()/int64(window) == k {
				perWindow[k]++
			}
		}
		for k, n := range perWindow {
			if n > r.MaxFixed {
				r.MaxFixed = n
			}
			if time.Unix(0, k*int64(window)).After(first) && time.Unix(0, (k+1)*int64(window)).Before(last) {
				fullWindows++
				fullAdmitted += n
			}
		}
		// Sliding: from each admitted request's send, those received within one window.
		for i, s := range adm {
			n := 0
			for j := i; j < len(adm) && adm[j].Send.Sub(s.Send) < window; j++ {
				if adm[j].Recv.Sub(s.Send) < window {
					n++
				}
			}
			if n > r.MaxSliding {
				r.MaxSliding = n
			}
		}
		// GCRA: after the first admission at t0, by time t at most burst + (t - t0)·rate;
		// elapsed is taken at its longest (first send to this receive), so an excess is
		// certain.
		if len(adm) > 0 {
			t0 := adm[0].Send
			for i, s := range adm {
				allowed := limit + int(float64(s.Recv.Sub(t0))/float64(window)*float64(limit))
				if e := (i + 1) - allowed; e > r.GCRAExcess {
					r.GCRAExcess = e
				}
			}
		}
	}
	if fullWindows > 0 {
		r.MeanFixed = float64(fullAdmitted) / float64(fullWindows)
	}
	return r
}

// Check returns what is wrong with r for its algorithm, or "":
//   - every algorithm: no answer other than 200 and 429;
//   - sliding-log and sliding-window: no client over its limit within one fixed window
//     (the scripts' windows are aligned to Redis' clock);
//   - sliding-log: no client over its limit within any interval of one window;
//   - gcra: no client over burst + elapsed × rate (burst = requests, rate = requests per
//     window: after an idle spell a client may get its burst and then the rate, up to
//     twice the limit in one window, as redis_rate does);
//   - sliding-window: within any interval of one window, under twice the limit (its
//     weighted estimate assumes the previous window's requests were spread evenly: a client
//     that sent them all at its end can get limit + previous × elapsed share).
func Check(r Result) string {
	var p []string
	if len(r.Other) > 0 {
		p = append(p, fmt.Sprintf("answers other than 200/429: %v", r.Other))
	}
	if r.Admitted == 0 || r.Refused == 0 {
		p = append(p, fmt.Sprintf("admitted %d, refused %d: the limit was not exercised", r.Admitted, r.Refused))
	}
	if r.Algorithm != "gcra" && r.MaxFixed > r.Limit {
		p = append(p, fmt.Sprintf("a client got %d in one fixed window, limit %d", r.MaxFixed, r.Limit))
	}
	switch r.Algorithm {
	case "sliding-log":
		if r.MaxSliding > r.Limit {
			p = append(p, fmt.Sprintf("a client got %d within one window's interval, limit %d", r.MaxSliding, r.Limit))
		}
	case "gcra":
		if r.GCRAExcess > 0 {
			p = append(p, fmt.Sprintf("a client got %d beyond burst + elapsed × rate", r.GCRAExcess))
		}
	case "sliding-window":
		if r.MaxSliding >= 2*r.Limit {
			p = append(p, fmt.Sprintf("a client got %d within one window's interval, bound < %d", r.MaxSliding, 2*r.Limit))
		}
	}
	return strings.Join(p, "; ")
}

// Table renders results as a Markdown table.
func Table(rs []Result) string {
	var b strings.Builder
	b.WriteString("| run | algorithm | clients | limit | requests | admitted | refused | admitted per gateway | max per fixed window | max per sliding window | gcra excess | mean per full window | req/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		excess := "-"
		if r.Algorithm == "gcra" {
			excess = fmt.Sprint(r.GCRAExcess)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d/%s | %d | %d | %d | %v | %d | %d | %s | %.1f | %.0f |\n",
			r.Name, r.Algorithm, r.Clients, r.Limit, r.Window, r.Requests, r.Admitted, r.Refused, r.Gateways,
			r.MaxFixed, r.MaxSliding, excess, r.MeanFixed, r.ReqPerSec)
	}
	return b.String()
}
