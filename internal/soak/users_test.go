package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/work"
)

// user is one simulated Teams user in a personal chat with the bot.
type user struct {
	idx     int
	marker  string // in every piece of the user's own data
	name    string
	entra   entra.User
	account string // Atlassian account id
	project string // Jira project only this user can browse
	acme    bool   // also links the generic OAuth connector
	conv    string

	busy sync.Mutex // one action at a time, as a person types
	// What the user has linked (under busy).
	sso, jira, acmeLinked bool
	asked, answered, told int
	// late: a parked question of this user was not answered in time; the user asks nothing
	// more until it is looked at again at the end, so what arrives meanwhile is its answer.
	late bool
}

// reply waiting times: a queued job may take WORK_JOB_TIMEOUT and retries.
const (
	replyTimeout = 60 * time.Second
	settle       = 2 * time.Second
)

var (
	httpc   = &http.Client{Timeout: 30 * time.Second}
	browser = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	startRE = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/api/oauth/start\?state=[A-Za-z0-9_-]+`)
	codeRE  = regexp.MustCompile(`link ([0-9]{8})`)
)

// activity builds an activity from u, as the Bot Framework channel delivers it.
func (e *env) activity(u *user, typ string) map[string]any {
	return map[string]any{
		"type": typ, "id": uuid.NewString(), "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"serviceUrl": e.st.Channel.ServiceURL, "channelId": "msteams",
		"from":         map[string]any{"id": "29:" + u.entra.ObjectID, "name": u.name, "aadObjectId": u.entra.ObjectID},
		"recipient":    map[string]any{"id": "28:" + stack.BotAppID, "name": "onbehalf"},
		"conversation": map[string]any{"id": u.conv, "conversationType": "personal", "tenantId": stack.TenantID},
		"channelData":  map[string]any{"tenant": map[string]any{"id": stack.TenantID}},
		"locale":       "en-US",
	}
}

// errCut is a request the instance never answered (it was killed, or is down).
var errCut = errors.New("no answer from the instance")

// postTo sends act to instance in with a fresh channel token, counting it in flight as kind.
func (e *env) postTo(ctx context.Context, in *instance, act map[string]any, kind string) (int, []byte, error) {
	body, _ := json.Marshal(act)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.url+"/api/messages", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID}))
	if kind != "" {
		in.track(kind, 1)
		defer in.track(kind, -1)
	}
	e.count.add("requests", 1)
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errCut, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, out, nil
}

// post sends act to a live instance as the channel does: when the bot's answer is a 5xx or
// none at all (the instance was killed, or is down), the channel sends the same activity
// again, here to whichever instance is alive, at most twice more (msteams-docs
// bots/bot-basics.md: Teams retries a timed-out request; MicrosoftDocs/msteams-docs#8998: and
// some failure statuses — which ones is unverified).
func (e *env) post(act map[string]any, kind string) (int, []byte, error) {
	st, body, _, err := e.postFrom(nil, nil, act, kind)
	return st, body, err
}

// postFrom is post with the first attempt sent to instance first (nil: a live one), calling
// firstDone (if not nil) when that attempt has ended; it also returns first's own status (0:
// no answer).
func (e *env) postFrom(first *instance, firstDone func(), act map[string]any, kind string) (int, []byte, int, error) {
	var err error
	firstStatus := 0
	for try := 0; try < 3; try++ {
		if try > 0 {
			e.count.add("activities the channel sent again after a 5xx or no answer", 1)
			time.Sleep(time.Second)
		}
		in := e.pick()
		if try == 0 && first != nil {
			in = first
		}
		var st int
		var body []byte
		st, body, err = e.postTo(context.Background(), in, act, kind)
		if try == 0 {
			firstStatus = st
			if firstDone != nil {
				firstDone()
			}
		}
		if err == nil && st < 500 {
			return st, body, firstStatus, nil
		}
		if err == nil {
			err = fmt.Errorf("HTTP %d", st)
		}
	}
	return 0, nil, firstStatus, err
}

// outcome is how one request ended for the user.
type outcome int

const (
	answered    outcome = iota // the reply carries what was asked (the user's own data)
	signin                     // a sign-in card
	told                       // another message: the user was told why
	silent                     // nothing within replyTimeout
	undelivered                // the endpoint never accepted it (Teams shows it as not sent)
)

func recJSON(r channel.Recorded) string {
	b, _ := json.Marshal(r.Activity)
	return string(b)
}

func isSignIn(js string) bool {
	return strings.Contains(js, "application/vnd.microsoft.card.oauth") || strings.Contains(js, "/api/oauth/start?state=")
}

// await waits for u's messages after from: until one contains want (answered), or a message
// arrived and settle passed without it, or the timeout.
func (e *env) await(u *user, from int, want string, timeout time.Duration) (outcome, []channel.Recorded) {
	return e.awaitMode(u, from, want, timeout, false)
}

// awaitOnly waits for a message containing want alone: other messages do not end the wait.
func (e *env) awaitOnly(u *user, from int, want string) bool {
	o, _ := e.awaitMode(u, from, want, replyTimeout, true)
	return o == answered
}

// awaitParked waits for the answer to a question parked behind a sign-in: a message with
// marker (answered), or another message that is neither skip nor a sign-in card (the user was
// told why, e.g. the back end is down). False when nothing came: the question was forgotten.
func (e *env) awaitParked(u *user, from int, marker, skip string) bool {
	return e.awaitParkedFor(u, from, marker, skip, replyTimeout)
}

// lateCheck is a parked question not answered within replyTimeout, looked at again at the end.
type lateCheck struct {
	u                   *user
	from                int
	marker, skip, about string
}

func (e *env) late(u *user, from int, marker, skip, about string) {
	u.late = true
	e.count.mu.Lock()
	e.lates = append(e.lates, lateCheck{u, from, marker, skip, about})
	e.count.mu.Unlock()
	e.count.add("parked, not answered within "+replyTimeout.String(), 1)
}

func (e *env) awaitParkedFor(u *user, from int, marker, skip string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		recs, wake := e.idx.since(u.conv, from)
		var toldText string
		for _, r := range recs {
			if r.Type() != "message" {
				continue
			}
			js := recJSON(r)
			switch {
			case strings.Contains(js, marker):
				e.count.add("parked and answered", 1)
				return true
			case (skip == "" || !strings.Contains(js, skip)) && !isSignIn(js) && toldText == "":
				toldText = r.Text()
			}
		}
		if toldText != "" {
			e.count.add("parked and told why", 1)
			e.tellWhy(toldText)
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-wake:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *env) awaitMode(u *user, from int, want string, timeout time.Duration, only bool) (outcome, []channel.Recorded) {
	deadline := time.Now().Add(timeout)
	var firstAt time.Time
	for {
		recs, wake := e.idx.since(u.conv, from)
		var msgs []channel.Recorded
		for _, r := range recs {
			if r.Type() == "message" || r.Method == http.MethodPut {
				msgs = append(msgs, r)
			}
		}
		for _, r := range msgs {
			if want == "" || strings.Contains(recJSON(r), want) {
				return answered, msgs
			}
		}
		if len(msgs) > 0 && firstAt.IsZero() {
			firstAt = time.Now()
		}
		if !only && !firstAt.IsZero() && time.Since(firstAt) > settle {
			for _, r := range msgs {
				if isSignIn(recJSON(r)) {
					return signin, msgs
				}
			}
			return told, msgs
		}
		if time.Now().After(deadline) {
			return silent, msgs
		}
		select {
		case <-wake:
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (o outcome) String() string {
	switch o {
	case answered:
		return "answered"
	case signin:
		return "sent a sign-in card"
	case told:
		return "told why"
	case silent:
		return "was silent"
	}
	return "did not take the message"
}

// ask sends text from u and waits for its outcome.
func (e *env) ask(u *user, text, want string) (outcome, []channel.Recorded) {
	return e.askVia(u, text, want, "after the channel's retries", func(act map[string]any) (int, []byte, error) {
		return e.post(act, "message")
	})
}

// askAt is ask with the activity sent to instance in first (the channel sends it again to
// another instance after a 5xx or no answer), calling firstDone (if not nil) when in has
// answered or failed; it also returns in's own status (0: none).
func (e *env) askAt(u *user, in *instance, text, want string, firstDone func()) (outcome, int) {
	first := 0
	out, _ := e.askVia(u, text, want, "after the channel's retries", func(act map[string]any) (int, []byte, error) {
		st, body, fs, err := e.postFrom(in, firstDone, act, "message")
		first = fs
		return st, body, err
	})
	return out, first
}

// idleSSOUser returns a user signed in with SSO who is not acting now, holding its busy
// lock, or nil.
func (e *env) idleSSOUser() *user {
	off := int(e.rr.Add(1))
	for i := range e.users {
		u := e.users[(off+i)%len(e.users)]
		if !u.busy.TryLock() {
			continue
		}
		if u.sso && !u.late {
			return u
		}
		u.busy.Unlock()
	}
	return nil
}

func (e *env) askVia(u *user, text, want, how string, send func(map[string]any) (int, []byte, error)) (outcome, []channel.Recorded) {
	from := e.idx.len(u.conv)
	act := e.activity(u, "message")
	act["text"] = text
	st, _, err := send(act)
	if err != nil {
		e.count.add("undelivered "+how+" ("+err.Error()+")", 1)
		return undelivered, nil
	}
	if st != http.StatusOK {
		e.count.add(fmt.Sprintf("message answered HTTP %d", st), 1)
		e.count.problem("%s: %q answered HTTP %d", u.name, text, st)
		return undelivered, nil
	}
	out, recs := e.await(u, from, want, replyTimeout)
	e.note(u, text, out, recs)
	return out, recs
}

func (e *env) note(u *user, text string, out outcome, recs []channel.Recorded) {
	u.asked++
	switch out {
	case answered:
		u.answered++
		e.count.add("answered", 1)
	case told, signin:
		u.told++
		e.count.add("told why", 1)
		if out == told && len(recs) > 0 {
			e.tellWhy(recs[len(recs)-1].Text())
		}
	case silent:
		e.count.add("silent", 1)
		e.count.problem("silence: %s asked %q and got nothing in %s", u.name, text, replyTimeout)
	}
}

// tellWhy records a told-why reply by its first words; the notice a queue worker sends when
// a job failed and will be tried again (work.DelayedText) is also counted on its own: the
// answer comes later, when the back end is back.
func (e *env) tellWhy(text string) {
	e.count.tell(text)
	if text == work.DelayedText {
		e.count.add("told the answer is delayed (its job failed and is retried)", 1)
	}
}

// toldDelayed reports whether u got the delay notice of a retried job after index from.
func (e *env) toldDelayed(u *user, from int) bool {
	recs, _ := e.idx.since(u.conv, from)
	for _, r := range recs {
		if r.Type() == "message" && r.Text() == work.DelayedText {
			return true
		}
	}
	return false
}

// oauthCard reads the exchange id and connection of the newest OAuthCard in recs.
func oauthCard(recs []channel.Recorded) (id, conn string, ok bool) {
	for i := len(recs) - 1; i >= 0; i-- {
		atts, _ := recs[i].Activity["attachments"].([]any)
		for _, a := range atts {
			m, _ := a.(map[string]any)
			if m["contentType"] != "application/vnd.microsoft.card.oauth" {
				continue
			}
			c, _ := m["content"].(map[string]any)
			ter, _ := c["tokenExchangeResource"].(map[string]any)
			id, _ = ter["id"].(string)
			conn, _ = c["connectionName"].(string)
			return id, conn, id != ""
		}
	}
	return "", "", false
}

// signInSSO: the user asks who they are; the bot parks the question behind an OAuthCard; two
// Teams clients answer it with signin/tokenExchange at two instances at once; the parked
// question must then be answered.
func (e *env) signInSSO(u *user) {
	from := e.idx.len(u.conv)
	out, recs := e.ask(u, "whoami", u.marker)
	if out == answered {
		u.sso = true
		return
	}
	if out != signin {
		return
	}
	id, conn, ok := oauthCard(recs)
	if !ok {
		e.count.add("sso: sign-in card without token exchange", 1)
		return
	}
	e.count.add("parked", 1)
	from = e.idx.len(u.conv)
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			act := e.activity(u, "invoke")
			act["name"] = "signin/tokenExchange"
			act["value"] = map[string]any{"id": id, "connectionName": conn, "token": e.st.Entra.MintSSOToken(u.entra, entra.SSOOptions{AppID: stack.BotAppID})}
			st, _, err := e.postTo(context.Background(), e.pick(), act, "exchange")
			if err == nil {
				statuses[c] = st
			}
		}()
	}
	wg.Wait()
	if statuses[0] != http.StatusOK && statuses[1] != http.StatusOK {
		e.count.add(fmt.Sprintf("sso: exchange refused (HTTP %d/%d), user retries later", statuses[0], statuses[1]), 1)
		e.count.add("parked then released by a failed sign-in", 1)
		return
	}
	e.count.add("sign-ins: Teams SSO", 1)
	if e.awaitParked(u, from, u.marker, "") {
		u.sso = true
		return
	}
	e.late(u, from, u.marker, "", "whoami after a successful SSO exchange")
	u.sso = true // signed in all the same
}

// signInOAuth links u to Atlassian ("jira") or the generic connector ("acme"): the card's
// link in the browser (through the public URL, so any instance may serve each step), consent
// at the provider, the callback page's code, and signin/verifyState from u's chat.
func (e *env) signInOAuth(u *user, service string) {
	// Without the account's name (Atlassian failing at that moment) the message is the
	// generic "Connected to Jira and Confluence.".
	text, want, connected := "my jira issues", u.marker, "Connected to Jira"
	if service == "acme" {
		text, want, connected = "connect acme", "Connected to Acme API.", "Connected to Acme API."
	}
	from := e.idx.len(u.conv)
	out, recs := e.ask(u, text, want)
	if out == answered {
		e.setLinked(u, service)
		return
	}
	if out != signin {
		return
	}
	var js strings.Builder
	for _, r := range recs {
		js.WriteString(recJSON(r))
	}
	start := startRE.FindString(js.String())
	if start == "" {
		e.count.add(service+": sign-in card without a link", 1)
		return
	}
	if service == "jira" {
		e.count.add("parked", 1)
	}
	fail := func(step string) {
		e.count.add(service+": sign-in interrupted at "+step+", user retries later", 1)
		if service == "jira" {
			e.count.add("parked then released by a failed sign-in", 1)
		}
	}
	var loc string
	for try := 0; try < 3 && loc == ""; try++ {
		resp, err := browser.Get(start)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusFound {
				loc = resp.Header.Get("Location")
			}
		}
		if loc == "" {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if loc == "" {
		fail("start")
		return
	}
	// The browser goes to the provider itself, not through an instance's fault proxy.
	lu, err := url.Parse(loc)
	if err != nil {
		fail("authorize")
		return
	}
	au, _ := url.Parse(e.atlURL)
	lu.Scheme, lu.Host = au.Scheme, au.Host
	cb, err := e.atl.AuthorizeAs(u.account, lu.String())
	if err != nil {
		fail("authorize")
		return
	}
	var code string
	for try := 0; try < 3 && code == ""; try++ {
		resp, err := browser.Get(cb)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := codeRE.FindSubmatch(b); m != nil {
				code = string(m[1])
				logcheck.Issue("link code", code)
			} else if resp.StatusCode != http.StatusBadGateway {
				break // the page answered without a code: the link is spent
			}
		}
		if code == "" {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if code == "" {
		fail("callback")
		return
	}
	from = e.idx.len(u.conv)
	act := e.activity(u, "invoke")
	act["name"] = "signin/verifyState"
	act["value"] = map[string]any{"state": code}
	st, _, err := e.post(act, "verify")
	if err != nil || st != http.StatusOK {
		fail(fmt.Sprintf("verifyState (HTTP %d)", st))
		return
	}
	e.count.add("sign-ins: "+service+" OAuth link", 1)
	e.setLinked(u, service)
	if !e.awaitOnly(u, from, connected) {
		if e.toldDelayed(u, from) {
			// The announcement's job failed (storage down) and waits for its next delivery;
			// the user was told that the answer will come.
			e.count.add("linked, the connected message delayed (its job failed and is retried)", 1)
		} else {
			e.count.add("linked without the connected message", 1)
			e.count.problem("%s linked %s but was never told it is connected", u.name, service)
		}
	}
	if service == "jira" {
		if !e.awaitParked(u, from, u.marker, "Connected to") {
			e.late(u, from, u.marker, "Connected to", fmt.Sprintf("%q after linking Jira", text))
		}
	}
}

// story is u's conversation as text, for a problem's detail.
func (e *env) story(u *user) string {
	recs, _ := e.idx.since(u.conv, 0)
	var b strings.Builder
	for _, r := range recs {
		if r.Type() != "message" {
			continue
		}
		t := r.Text()
		if t == "" && isSignIn(recJSON(r)) {
			t = "[sign-in card]"
		}
		if len(t) > 80 {
			t = t[:80]
		}
		fmt.Fprintf(&b, " [%s] %q", r.At.Format("15:04:05.000"), t)
	}
	return b.String()
}

func (e *env) setLinked(u *user, service string) {
	switch service {
	case "jira":
		u.jira = true
	case "acme":
		u.acmeLinked = true
	}
}

// act is one turn of u: sign in to what is missing, else one command of the mix.
func (e *env) act(u *user, pick func(int) int) {
	switch {
	case u.late:
	case !u.sso:
		e.signInSSO(u)
	case !u.jira:
		e.signInOAuth(u, "jira")
	case u.acme && !u.acmeLinked:
		e.signInOAuth(u, "acme")
	default:
		cmds := []struct{ text, want string }{
			{"whoami", u.marker}, {"mail report", u.marker}, {"files", u.marker}, {"my jira issues", u.marker},
			{"jira " + u.project + "-1", u.marker}, {"connections", "Jira"}, {"help", ""},
		}
		c := cmds[pick(len(cmds))]
		out, recs := e.ask(u, c.text, c.want)
		if out == signin {
			var js strings.Builder
			for _, r := range recs {
				js.WriteString(recJSON(r))
			}
			if strings.Contains(js.String(), "/api/oauth/start?state=") && strings.Contains(js.String(), "Jira") {
				e.count.add("asked to reconnect Jira while linked", 1)
				e.count.problem("%s was asked to reconnect Jira (%q) while linked", u.name, c.text)
				u.jira = false
			} else {
				e.count.add("asked to sign in again (SSO)", 1)
				u.sso = false
			}
		}
	}
}
