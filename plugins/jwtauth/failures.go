package jwtauth

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/pavilion-trust/gateway/plugins/clientip"
)

// failureBudget is the failedAuth option: refused authentications per client address in a
// fixed window, in memory per gateway instance. Its size is bounded like the token cache: two
// generations of at most maxFailureClients/2 addresses each.
type failureBudget struct {
	limit   int
	window  int64 // ns
	trusted []*net.IPNet

	mu   sync.Mutex
	cur  map[string]*failures
	old  map[string]*failures
	half int
}

// failures is one address's count in the window that started at start (unix ns).
type failures struct {
	n     int
	start int64
}

const maxFailureClients = 100000

// newFailureBudget returns the budget of s, nil when it is off.
func newFailureBudget(s *settings) *failureBudget {
	if s.failLimit <= 0 {
		return nil
	}
	return &failureBudget{
		limit:   s.failLimit,
		window:  int64(s.failWindow),
		trusted: s.failTrusted,
		cur:     map[string]*failures{},
		old:     map[string]*failures{},
		half:    maxFailureClients / 2,
	}
}

// client is the address a request's refusals are counted against.
func (b *failureBudget) client(req *http.Request) string {
	if b.trusted == nil {
		return clientip.Network(clientip.Peer(req))
	}
	return clientip.Network(clientip.Forwarded(req, b.trusted))
}

// spent returns the whole seconds until the window of the request's address ends (at least
// 1) when it has used up its budget, else 0.
func (b *failureBudget) spent(req *http.Request, now time.Time) int64 {
	addr := b.client(req)
	t := now.UnixNano()
	b.mu.Lock()
	f := b.lookup(addr)
	b.mu.Unlock()
	if f == nil || f.n < b.limit || t-f.start >= b.window {
		return 0
	}
	left := (f.start + b.window - t + int64(time.Second) - 1) / int64(time.Second)
	if left < 1 {
		left = 1
	}
	return left
}

// lookup returns the count of addr, from either generation; b.mu is held.
func (b *failureBudget) lookup(addr string) *failures {
	f := b.cur[addr]
	if f == nil {
		f = b.old[addr]
	}
	return f
}

// fail counts one refused authentication of the request's address.
func (b *failureBudget) fail(req *http.Request, now time.Time) {
	addr := b.client(req)
	t := now.UnixNano()
	b.mu.Lock()
	f := b.cur[addr]
	if f == nil {
		f = b.lookup(addr)
		if f == nil {
			f = &failures{start: t}
		}
		if len(b.cur) >= b.half {
			b.old = b.cur
			b.cur = map[string]*failures{}
		}
		b.cur[addr] = f
	}
	if t-f.start >= b.window {
		f.n = 0
		f.start = t
	}
	f.n++
	b.mu.Unlock()
}
