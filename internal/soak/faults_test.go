package soak

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/faultproxy"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
)

// The fault kinds.
const (
	fAzurite      = "azurite stopped and restarted"
	fEntra429     = "entra 429 (Retry-After 1)"
	fEntra503     = "entra 503"
	fTokenSvc500  = "token service 500"
	fAtl429       = "atlassian 429 (Retry-After 2)"
	fAtl5xx       = "atlassian 502/503"
	fConnector429 = "connector 429 (Retry-After 1)"
	fKillExchange = "kill -9 mid-exchange"
	fKillRefresh  = "kill -9 mid-refresh"
	// The vault drops every connection without an answer (keyvault.Server.SetDown: the tunnel
	// still connects, the TLS handshake succeeds, the request is cut) and one instance is
	// killed and started again meanwhile, so a process starts with no key cached.
	fKeyVault = "key vault down, an instance restarted"
)

var faultKinds = []string{fAzurite, fEntra429, fEntra503, fTokenSvc500, fAtl429, fAtl5xx, fConnector429, fKillExchange, fKillRefresh, fKeyVault}

// kvMinWindow is the shortest Key Vault outage: long enough for a process to start while the
// vault is down and to answer a question then (its Key Vault client retries a dropped
// connection three times, 6 to 9 s in all, before the instance gives up). The vault stays down
// until that answer has come, if later.
const kvMinWindow = 10 * time.Second

// restarts reports whether a kind kills and restarts an instance (never 0).
func restarts(kind string) bool { return strings.HasPrefix(kind, "kill") || kind == fKeyVault }

// step is one fault window of the schedule.
type step struct {
	At     time.Duration // from the start of the load
	Kind   string
	Window time.Duration
	Inst   int // the instance a kill hits (never 0, whose growth is measured)
}

// schedule lays the faults out between 10% and 80% of the run, every kind once per cycle (one
// cycle per five minutes, at least one), in an order and on instances drawn from the seed.
// Each fault has a slot and acts for three quarters of it; a Key Vault outage acts for at least
// kvMinWindow.
func schedule(seed uint64, d time.Duration, instances int) []step {
	rng := rngFor(seed)
	cycles := max(1, int(d/(5*time.Minute)))
	span := d * 7 / 10
	n := time.Duration(cycles * len(faultKinds))
	slot := span / n
	if slot*3/4 < kvMinWindow {
		// A Key Vault outage lasts kvMinWindow (plus a quarter slot before the next fault);
		// the other kinds share the rest of the span.
		c := time.Duration(cycles)
		slot = 4 * (span - c*kvMinWindow) / (4*n - 3*c)
	}
	var out []step
	at := d / 10
	for c := 0; c < cycles; c++ {
		kinds := append([]string(nil), faultKinds...)
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		for _, k := range kinds {
			out = append(out, step{
				At: at, Kind: k, Window: slot * 3 / 4,
				Inst: 1 + rng.IntN(instances-1),
			})
			if k == fKeyVault && slot*3/4 < kvMinWindow {
				out[len(out)-1].Window = kvMinWindow
				at += kvMinWindow - slot*3/4
			}
			at += slot
		}
	}
	return out
}

func (s step) String() string {
	inst := ""
	if restarts(s.Kind) {
		inst = fmt.Sprintf(" on instance %d", s.Inst)
	}
	return fmt.Sprintf("%7s  %-32s for %s%s", s.At.Round(time.Second), s.Kind, s.Window.Round(100*time.Millisecond), inst)
}

// runFaults plays the schedule from t0; it returns when the last window has closed and
// everything is up again.
func (e *env) runFaults(t0 time.Time, steps []step) {
	for _, s := range steps {
		time.Sleep(time.Until(t0.Add(s.At)))
		e.inject(s)
		e.t.Logf("%s fault done: %s", time.Since(t0).Round(time.Second), s.Kind)
	}
	e.bg.Wait()
}

func (e *env) allAtl(r *faultproxy.Rule) {
	for _, p := range e.atlProxies {
		p.Set(r)
	}
}

func (e *env) atlInjected() int {
	n := 0
	for _, p := range e.atlProxies {
		n += p.Injected()
	}
	return n
}

// inject applies one fault for its window and undoes it.
func (e *env) inject(s step) {
	end := time.Now().Add(s.Window)
	switch s.Kind {
	case fAzurite:
		_ = e.azt.Stop()
		_ = e.azq.Stop()
		e.count.fault(s.Kind, 1)
		time.Sleep(time.Until(end))
		if err := e.azt.Restart(); err != nil {
			e.count.problem("azurite table did not restart: %v", err)
		}
		if err := e.azq.Restart(); err != nil {
			e.count.problem("azurite queue did not restart: %v", err)
		}
	case fEntra429, fEntra503:
		r := &faultproxy.Rule{Path: "/" + stack.TenantID + "/oauth2/", Status: http.StatusServiceUnavailable, Every: 2}
		if s.Kind == fEntra429 {
			r.Status, r.RetryAfter = http.StatusTooManyRequests, "1"
		}
		before := e.entraProxy.Injected()
		e.entraProxy.Set(r)
		time.Sleep(time.Until(end))
		e.entraProxy.Set(nil)
		e.count.fault(s.Kind, e.entraProxy.Injected()-before)
	case fTokenSvc500:
		before := e.tsProxy.Injected()
		e.tsProxy.Set(&faultproxy.Rule{Path: "/api/", Status: http.StatusInternalServerError, Every: 2})
		time.Sleep(time.Until(end))
		e.tsProxy.Set(nil)
		e.count.fault(s.Kind, e.tsProxy.Injected()-before)
	case fAtl429, fAtl5xx:
		before := e.atlInjected()
		if s.Kind == fAtl429 {
			e.allAtl(&faultproxy.Rule{Status: http.StatusTooManyRequests, RetryAfter: "2", Every: 2})
			time.Sleep(time.Until(end))
		} else {
			half := time.Now().Add(s.Window / 2)
			e.allAtl(&faultproxy.Rule{Status: http.StatusBadGateway, Every: 2})
			time.Sleep(time.Until(half))
			e.allAtl(&faultproxy.Rule{Status: http.StatusServiceUnavailable, Every: 2})
			time.Sleep(time.Until(end))
		}
		e.allAtl(nil)
		e.count.fault(s.Kind, e.atlInjected()-before)
	case fConnector429:
		n := 0
		for time.Now().Before(end) {
			e.st.Channel.FailNext(channel.Fault{Status: http.StatusTooManyRequests, RetryAfter: "1"})
			n++
			time.Sleep(400 * time.Millisecond)
		}
		e.count.fault(s.Kind, n)
	case fKillExchange, fKillRefresh:
		in := e.insts[s.Inst]
		// Slow the step down so that one is in flight when the process dies.
		var mid func() bool
		if s.Kind == fKillExchange {
			e.tsProxy.Set(&faultproxy.Rule{Path: "/api/usertoken/exchange", Delay: 1500 * time.Millisecond})
			mid = func() bool { return in.inFlight("exchange") > 0 }
		} else {
			e.atlProxies[s.Inst].Set(&faultproxy.Rule{Path: "/oauth/token", Delay: 1500 * time.Millisecond})
			mid = func() bool { return e.atlProxies[s.Inst].InFlight("refresh") > 0 }
		}
		caught := false
		for time.Now().Before(end.Add(-time.Second)) {
			if mid() {
				caught = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		e.kill(in)
		e.tsProxy.Set(nil)
		e.atlProxies[s.Inst].Set(nil)
		e.count.fault(s.Kind, 1)
		if !caught {
			e.count.add(s.Kind+": nothing was in flight, killed anyway", 1)
		}
		time.Sleep(2 * time.Second)
		if err := e.startInstance(in); err != nil {
			e.count.problem("instance %d did not start again: %v", in.idx, err)
		}
		time.Sleep(time.Until(end))
	case fKeyVault:
		e.keyVaultDown(s, end)
	}
}

// keyVaultDown takes the vault down, restarts instance s.Inst meanwhile and asks it a question
// that needs the token-store key, brings the vault back at end, and then asks again until the
// instance answers: a process that started without its key must fetch it once the vault is back.
func (e *env) keyVaultDown(s step, end time.Time) {
	in := e.insts[s.Inst]
	before := e.kv.Requests()
	e.kv.SetDown(true)
	e.count.fault(s.Kind, 1)
	e.kill(in)
	if err := e.startInstance(in); err != nil {
		e.count.problem("instance %d did not start while Key Vault was down: %v", in.idx, err)
		time.Sleep(time.Until(end))
		e.kv.SetDown(false)
		return
	}
	// A question for the new process while the vault is down; the vault comes back at the end
	// of the window or when the process has answered, whichever is later. The channel's resends
	// and the reply are awaited beside it.
	answeredByIt := make(chan struct{})
	if u := e.idleSSOUser(); u != nil {
		e.bg.Add(1)
		go func() {
			defer e.bg.Done()
			out, st := e.askAt(u, in, "whoami", u.marker, sync.OnceFunc(func() { close(answeredByIt) }))
			u.busy.Unlock()
			e.count.add(fmt.Sprintf("key vault down: a whoami sent first to the instance started meanwhile: HTTP %d from it; the user %s", st, out), 1)
		}()
		select {
		case <-answeredByIt:
		case <-time.After(30 * time.Second):
		}
	}
	time.Sleep(time.Until(end))
	e.kv.SetDown(false)
	e.count.add("key vault requests cut while down", int(e.kv.Requests()-before))
	// Recovery is checked beside the next faults, not in their way.
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		deadline := time.Now().Add(45 * time.Second)
		for time.Now().Before(deadline) {
			u := e.idleSSOUser()
			if u == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			out, st := e.askAt(u, in, "whoami", u.marker, nil)
			u.busy.Unlock()
			if st == http.StatusOK && out == answered {
				e.count.add("key vault back: the instance started during the outage answered", 1)
				return
			}
			time.Sleep(time.Second)
		}
		e.count.problem("instance %d, started while Key Vault was down, answered nobody within 45 s of the vault's return", in.idx)
	}()
}
