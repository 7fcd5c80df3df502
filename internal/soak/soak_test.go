package soak

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// check is one line of the summary.
type check struct {
	name   string
	ok     bool
	detail string
}

var markerRE = regexp.MustCompile(`mk[0-9]{4}x[0-9a-f]{4}`)

// TestSoak runs the soak: SOAK_DURATION of load from SOAK_USERS users over SOAK_INSTANCES
// handler processes while the seeded fault schedule runs, then a final pass with every fault
// lifted, then the checks. `go test` runs a short version (40 s of load, 30 users); `make soak` the
// long one.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("runs handler processes and Azurite for the soak's duration")
	}
	cfg := loadSettings(t)
	steps := schedule(cfg.Seed, cfg.Duration, cfg.Instances)
	var head strings.Builder
	fmt.Fprintf(&head, "soak: seed %d, %s of load, %d users, %d handler instances (instance %d's clock %+v), %d acting at once\n",
		cfg.Seed, cfg.Duration, cfg.Users, cfg.Instances, cfg.Instances-1, cfg.Skew, cfg.Workers)
	head.WriteString("fault schedule (from the start of the load):\n")
	for _, s := range steps {
		head.WriteString("  " + s.String() + "\n")
	}
	fmt.Print(head.String())

	e := start(t, cfg)
	t0 := time.Now()
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); e.runFaults(t0, steps) }()

	// The load: Workers users at a time, each turn a user chosen at random; a user who is busy
	// (still waiting for an answer) is skipped.
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(cfg.Seed+uint64(w)+1, uint64(w)))
			for time.Since(t0) < cfg.Duration {
				u := e.users[rng.IntN(len(e.users))]
				if !u.busy.TryLock() {
					continue
				}
				e.act(u, rng.IntN)
				u.busy.Unlock()
				time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	<-faultsDone
	loadTook := time.Since(t0)

	// Final pass, everything up: every linked user is answered without reconnecting.
	for _, in := range e.insts {
		if !in.alive.Load() {
			if err := e.startInstance(in); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(3 * time.Second)
	// Parked questions not answered in time get a last look, with everything up again.
	e.recheckLate()
	var lost, finalFail, linkedJira, linkedSSO, revoked int
	var fmu sync.Mutex
	queue := make(chan *user)
	var fw sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		fw.Add(1)
		go func() {
			defer fw.Done()
			for u := range queue {
				u.busy.Lock()
				if u.sso {
					fmu.Lock()
					linkedSSO++
					fmu.Unlock()
					if o, _ := e.ask(u, "whoami", u.marker); o != answered {
						fmu.Lock()
						finalFail++
						fmu.Unlock()
						e.count.problem("final pass: %s's whoami not answered (outcome %d):%s", u.name, o, e.story(u))
					}
				}
				if u.jira {
					fmu.Lock()
					linkedJira++
					fmu.Unlock()
					if o, _ := e.ask(u, "my jira issues", u.marker); o != answered {
						fmu.Lock()
						lost++
						fmu.Unlock()
						e.count.problem("final pass: %s's Jira not answered without reconnecting (outcome %d):%s", u.name, o, e.story(u))
					}
					if e.atl.Revoked(u.account) {
						fmu.Lock()
						revoked++
						fmu.Unlock()
						e.count.problem("%s's Atlassian grant was revoked (a refresh token was reused)", u.name)
					}
				}
				u.busy.Unlock()
			}
		}()
	}
	for _, u := range e.users {
		queue <- u
	}
	close(queue)
	fw.Wait()
	// Let the last replies and stats arrive.
	time.Sleep(2 * time.Second)

	checks := e.checks(lost, finalFail, revoked, linkedJira, linkedSSO)
	summary := e.summary(head.String(), loadTook, checks)
	fmt.Print(summary)
	if p := os.Getenv("SOAK_SUMMARY"); p != "" {
		_ = os.WriteFile(p, []byte(summary), 0o644)
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("check failed: %s: %s", c.name, c.detail)
		}
	}
}

// recheckLate looks again at the parked questions not answered within replyTimeout: answered
// late, still waiting as a job in the work queue (a job whose release failed while storage was
// down stays invisible until the host's running visibility, 10 minutes, ends), or forgotten.
func (e *env) recheckLate() {
	e.count.mu.Lock()
	lates := e.lates
	e.count.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	var missing []lateCheck
	for _, l := range lates {
		if e.awaitParkedFor(l.u, l.from, l.marker, l.skip, time.Until(deadline)) {
			e.count.add("parked, answered late", 1)
			continue
		}
		missing = append(missing, l)
	}
	queued := 0
	if p, err := e.queue.GetProperties(context.Background(), nil); err == nil && p.ApproximateMessagesCount != nil {
		queued = int(*p.ApproximateMessagesCount)
	}
	e.count.add("work queue messages left at the end (visible or not)", queued)
	for i, l := range missing {
		if i < queued {
			e.count.add("parked, still queued at the end (the host retries it later)", 1)
			continue
		}
		e.count.add("parked and forgotten", 1)
		e.count.problem("parked and forgotten: %s's %s:%s", l.u.name, l.about, e.story(l.u))
	}
}

// checks evaluates the run.
func (e *env) checks(lost, finalFail, revoked, linkedJira, linkedSSO int) []check {
	var out []check

	// Replies to the wrong user: every marker in a conversation must be its owner's.
	wrong, contentChecked := 0, 0
	all := e.st.Channel.Recorded()
	var replies strings.Builder
	for _, r := range all {
		js := recJSON(r)
		replies.WriteString(js)
		replies.WriteByte('\n')
		owner := e.byConv[r.ConversationID]
		ms := markerRE.FindAllString(js, -1)
		if len(ms) > 0 {
			contentChecked++
		}
		for _, m := range ms {
			if owner == nil || m != owner.marker {
				wrong++
				if wrong <= 5 {
					who := "unknown conversation"
					if owner != nil {
						who = owner.name
					}
					e.count.problem("reply to %s carries %s", who, m)
				}
				break
			}
		}
	}
	out = append(out, check{"no reply went to the wrong user", wrong == 0,
		fmt.Sprintf("%d replies, %d carrying user data, content-checked; %d wrong", len(all), contentChecked, wrong)})

	out = append(out, check{"no rotating refresh token lost", lost == 0 && revoked == 0 && e.count.get("asked to reconnect Jira while linked") == 0,
		fmt.Sprintf("%d Jira-linked users answered in the final pass without reconnecting, %d not; %d grants revoked; %d reconnect prompts during the run; %d Atlassian refreshes",
			linkedJira-lost, lost, revoked, e.count.get("asked to reconnect Jira while linked"), e.refreshes())})

	hl, _ := os.ReadFile(e.hostLog)
	poisoned := strings.Count(string(hl), "moved to the poison queue")
	e.count.add("queued jobs moved to the poison queue", poisoned)
	out = append(out, check{"no request parked and forgotten", e.count.get("parked and forgotten") == 0 && poisoned == 0,
		fmt.Sprintf("%d parked behind a sign-in; after it %d answered, %d told why; %d answered late, %d still queued at the end (after a failed release); %d still parked after a failed sign-in (asked again later); %d forgotten; %d queued jobs poisoned",
			e.count.get("parked"), e.count.get("parked and answered"), e.count.get("parked and told why"), e.count.get("parked, answered late"), e.count.get("parked, still queued at the end (the host retries it later)"), e.count.get("parked then released by a failed sign-in"), e.count.get("parked and forgotten"), poisoned)})

	silentUsers := 0
	for _, u := range e.users {
		if u.asked > 0 && u.answered+u.told == 0 {
			silentUsers++
		}
	}
	out = append(out, check{"every user answered or told why (no silence)", e.count.get("silent") == 0 && silentUsers == 0 && finalFail == 0,
		fmt.Sprintf("%d answered, %d told why, %d silent requests; %d users who asked never heard back; final pass: %d of %d SSO users answered",
			e.count.get("answered"), e.count.get("told why"), e.count.get("silent"), silentUsers, linkedSSO-finalFail, linkedSSO)})

	growthOK, gdetail := true, []string{}
	for _, in := range e.insts {
		in.mu.Lock()
		var run []sample
		for _, s := range in.samples {
			if s.gen == in.gen {
				run = append(run, s)
			}
		}
		in.mu.Unlock()
		r0, r1, g0, g1, ok := growth(run)
		if !ok {
			gdetail = append(gdetail, fmt.Sprintf("#%d: too few samples", in.idx))
			if in.idx == 0 {
				growthOK = false
			}
			continue
		}
		// Growth: the last third's median over the first third's by more than half again
		// (plus a floor for small numbers).
		bad := g1 > g0*3/2+20 || r1 > r0*3/2+30*1024
		if bad && in.gen == 1 {
			growthOK = false
		}
		gdetail = append(gdetail, fmt.Sprintf("#%d (started %d×, %d samples): RSS %d→%d MiB, goroutines %d→%d", in.idx, in.gen, len(run), r0/1024, r1/1024, g0, g1))
	}
	out = append(out, check{"no goroutine or memory growth (first vs last third)", growthOK, strings.Join(gdetail, "; ")})

	var logs strings.Builder
	for _, in := range e.insts {
		b, _ := os.ReadFile(in.logPath)
		logs.Write(b)
	}
	// The token service's sign-in link is meant for the user: it is the OAuthCard's button.
	inLogs := logcheck.Find(logs.String())
	var inReplies []logcheck.Secret
	for _, f := range logcheck.Find(replies.String()) {
		if f.Kind != "sign-in link" {
			inReplies = append(inReplies, f)
		}
	}
	var kinds []string
	for _, f := range append(inLogs, inReplies...) {
		kinds = append(kinds, f.Kind)
	}
	out = append(out, check{"no issued secret in a handler log or a reply (logcheck)", len(inLogs) == 0 && len(inReplies) == 0,
		fmt.Sprintf("%d secrets issued, %d KiB of logs and %d KiB of replies scanned; found: %d in logs, %d in replies %v",
			len(logcheck.Issued()), logs.Len()/1024, replies.Len()/1024, len(inLogs), len(inReplies), kinds)})

	// Only the vault's host may go through the handlers' HTTPS_PROXY: anything else refused
	// there is a back end this soak does not stand in for.
	if r := e.kvTunnel.Refused(); len(r) > 0 {
		e.count.problem("a handler asked the Key Vault tunnel for other targets: %v", r)
	}
	e.count.add("key vault: tunnels the handlers opened", e.kvTunnel.Tunnels())
	e.count.add("key vault: requests (incl. challenges and cut ones)", int(e.kv.Requests()))

	e.count.mu.Lock()
	np := len(e.count.problems)
	e.count.mu.Unlock()
	out = append(out, check{"no other problem recorded", np == 0, fmt.Sprintf("%d", np)})
	return out
}

func (e *env) refreshes() int {
	n := 0
	for _, u := range e.users {
		n += e.atl.Refreshes(u.account)
	}
	return n
}

// summary renders the table printed at the end.
func (e *env) summary(head string, took time.Duration, checks []check) string {
	var b strings.Builder
	b.WriteString("\n==== soak summary ====\n")
	b.WriteString(head)
	fmt.Fprintf(&b, "load ran %s\n\n| check | result | detail |\n| --- | --- | --- |\n", took.Round(time.Second))
	for _, c := range checks {
		r := "PASS"
		if !c.ok {
			r = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.name, r, c.detail)
	}
	e.count.mu.Lock()
	defer e.count.mu.Unlock()
	b.WriteString("\n| figure | count |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| users | %d |\n", len(e.users))
	keys := make([]string, 0, len(e.count.n))
	for k := range e.count.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "| %s | %d |\n", k, e.count.n[k])
	}
	fmt.Fprintf(&b, "| replies and other activities the bot sent | %d |\n", len(e.st.Channel.Recorded()))
	b.WriteString("\n| fault injected | count |\n| --- | --- |\n")
	fk := make([]string, 0, len(e.count.faults))
	for k := range e.count.faults {
		fk = append(fk, k)
	}
	sort.Strings(fk)
	for _, k := range fk {
		fmt.Fprintf(&b, "| %s | %d |\n", k, e.count.faults[k])
	}
	fmt.Fprintf(&b, "| clock skew on instance %d | %s, whole run |\n", len(e.insts)-1, e.cfg.Skew)
	if len(e.count.told) > 0 {
		b.WriteString("\n| told why (first words) | count |\n| --- | --- |\n")
		tk := make([]string, 0, len(e.count.told))
		for k := range e.count.told {
			tk = append(tk, k)
		}
		sort.Slice(tk, func(i, j int) bool { return e.count.told[tk[i]] > e.count.told[tk[j]] })
		for i, k := range tk {
			if i == 12 {
				break
			}
			fmt.Fprintf(&b, "| %s | %d |\n", strings.ReplaceAll(k, "|", "/"), e.count.told[k])
		}
	}
	if len(e.count.problems) > 0 {
		b.WriteString("\nproblems:\n")
		for i, p := range e.count.problems {
			if i == 20 {
				fmt.Fprintf(&b, "  … and %d more\n", len(e.count.problems)-20)
				break
			}
			b.WriteString("  - " + p + "\n")
		}
	}
	return b.String()
}
