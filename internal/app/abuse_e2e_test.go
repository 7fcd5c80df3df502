package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/testenv/teamsclient"
)

// tableRows counts the token store's rows per table and partition ("table|partition").
func (h *ssoHarness) tableRows(t *testing.T) map[string]int {
	t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(h.cfg.TokenStore.ConnectionString, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	out := map[string]int{}
	tables := svc.NewListTablesPager(nil)
	for tables.More() {
		page, err := tables.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tb := range page.Tables {
			ents := svc.NewClient(*tb.Name).NewListEntitiesPager(nil)
			for ents.More() {
				p, err := ents.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range p.Entities {
					var row struct{ PartitionKey string }
					_ = json.Unmarshal(e, &row)
					out[*tb.Name+"|"+row.PartitionKey]++
				}
			}
		}
	}
	return out
}

func sum(rows map[string]int, partition string) int {
	n := 0
	for k, v := range rows {
		if partition == "" || strings.HasSuffix(k, "|"+partition) {
			n += v
		}
	}
	return n
}

// One user asking faster than the limit is told, calmly, when to try again, and their extra
// requests reach no back end; help still answers them; another user is not affected at all.
func TestRateLimitPacesOneUserAndSparesOthers(t *testing.T) {
	h := newSSOHarness(t, map[string]string{"USER_RATE_LIMIT": "6", "USER_RATE_BURST": "4"})
	a, b := h.client(alice), h.client(bob)
	h.signIn(t, a) // whoami (1) and its sign-in (2); the resumed whoami is not counted again
	ctx := ctxTimeout(t, 30*time.Second)
	for i := range 2 {
		if r, err := a.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
			t.Fatalf("whoami %d: %v %+v", i, err, r)
		}
	}
	before := h.graph.Calls(alice.ObjectID)
	n := len(a.Replies())
	if r, err := a.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("limited whoami: %v %+v", err, r)
	}
	rep, err := a.WaitReplies(ctx, n+1)
	if err != nil {
		t.Fatal(err)
	}
	last := texts(rep[len(rep)-1:])
	if !strings.Contains(last, "try again in 10 seconds") || strings.Contains(last, "Alice Example") {
		t.Fatalf("over the limit, want a calm reply naming when to try again, got %q", last)
	}
	if got := h.graph.Calls(alice.ObjectID); got != before {
		t.Fatalf("a limited request reached Graph (%d calls, want %d)", got, before)
	}
	if !strings.Contains(h.logs.String(), `"outcome":"rate-limited"`) {
		t.Fatal("the limited request is not in the activity log as rate-limited")
	}
	// help reaches no back end: never limited.
	if _, err := a.Say(ctx, "help"); err != nil {
		t.Fatal(err)
	}
	rep, err = a.WaitReplies(ctx, n+2)
	if err != nil || !strings.Contains(rep[len(rep)-1].Text(), "Here is what I can do") {
		t.Fatalf("help while limited: %v %q", err, rep[len(rep)-1].Text())
	}
	// A card button (Action.Execute) counts too, and says the same in its invoke answer.
	res, err := a.Execute(ctx, "command", map[string]any{"command": "whoami"}, nil)
	if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(res.Text(), "try again in") {
		t.Fatalf("limited card action: %v %+v", err, res)
	}
	// Bob signs in and is answered, four requests in a row (his own burst), while Alice is limited.
	h.signIn(t, b)
	for i := range 2 {
		if r, err := b.Say(ctx, "whoami"); err != nil || r.Status != http.StatusOK {
			t.Fatalf("bob whoami %d: %v %+v", i, err, r)
		}
	}
	rep, err = b.WaitReplies(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep[1:] {
		if got := texts([]channel.Recorded{r}); !strings.Contains(got, "Bob Example") {
			t.Fatalf("Bob was affected by Alice's limit: %q", got)
		}
	}
}

// Input larger than Teams allows is refused with a clear answer before anything runs: no
// sign-in card, nothing parked or stored, no back end reached. The HTTP edge caps bodies
// whether or not they announce their length.
func TestOversizedInputChangesNothing(t *testing.T) {
	h := newSSOHarness(t)
	a := h.client(alice)
	ctx := ctxTimeout(t, 30*time.Second)
	if r, err := a.Say(ctx, "help"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("help: %v %+v", err, r)
	}
	if _, err := a.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	rows := h.tableRows(t)
	big := strings.Repeat("x", 15<<10) // 30 KB as UTF-16: over Teams' 28 KB per post

	if r, err := a.Say(ctx, "whoami "+big); err != nil || r.Status != http.StatusOK {
		t.Fatalf("long message: %v %+v", err, r)
	}
	rep, err := a.WaitReplies(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep[1].Text(); !strings.Contains(got, "too long") || strings.Contains(got, "xxxx") {
		t.Fatalf("want a short refusal that does not echo the input, got %q", got)
	}
	if _, err := a.LastOAuthCard(); err == nil {
		t.Fatal("an oversized whoami started a sign-in")
	}
	// Just under the limit is an ordinary message (a command with junk arguments).
	if r, err := a.Say(ctx, "help "+strings.Repeat("y", 13<<10)); err != nil || r.Status != http.StatusOK {
		t.Fatalf("message under the limit: %v %+v", err, r)
	}
	rep, err = a.WaitReplies(ctx, 3)
	if err != nil || !strings.Contains(rep[2].Text(), "Here is what I can do") {
		t.Fatalf("a message under the limit was refused: %v", err)
	}

	// A card submission (Action.Submit → message with a value) over the limit.
	act := a.Activity("message")
	act["value"] = map[string]any{"command": "whoami", "comment": strings.Repeat("z", 30<<10)}
	if r, err := a.Post(ctx, act); err != nil || r.Status != http.StatusOK {
		t.Fatalf("big submit: %v %+v", err, r)
	}
	rep, err = a.WaitReplies(ctx, 4)
	if err != nil || !strings.Contains(rep[3].Text(), "too long") {
		t.Fatalf("big submit: want the refusal: %v", err)
	}
	// Action.Execute over the limit: the universal-action error in a 200.
	res, err := a.Execute(ctx, "command", map[string]any{"command": "whoami", "comment": strings.Repeat("z", 30<<10)}, nil)
	if err != nil || res.HTTPStatus != http.StatusOK || res.StatusCode != http.StatusRequestEntityTooLarge || res.Type != "application/vnd.microsoft.error" {
		t.Fatalf("big Action.Execute: %v %+v", err, res)
	}
	// A token exchange whose value is over the limit: 400 with a failureDetail.
	r, err := a.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": uuid.NewString(), "connectionName": "sso", "token": strings.Repeat("t", 30<<10)})
	if err != nil || r.Status != http.StatusBadRequest || r.Body["failureDetail"] == nil {
		t.Fatalf("big token exchange: %v %+v", err, r)
	}
	// Bodies over the edge's cap, announced or streamed without a length: 413, nothing runs.
	for _, chunked := range []bool{false, true} {
		body := a.Activity("message")
		body["text"] = strings.Repeat("w", 300<<10)
		data, _ := json.Marshal(body)
		var rd io.Reader = bytes.NewReader(data)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.Endpoint, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+h.st.Channel.Mint(channel.TokenOptions{Audience: stack.BotAppID}))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("body of 300 KB (chunked=%v): status %d, want 413", chunked, resp.StatusCode)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(a.Replies()); n != 4 {
		t.Fatalf("%d replies, want 4:\n%s", n, texts(a.Replies()))
	}
	if got := h.tableRows(t); sum(got, userKey(alice).Partition()) != sum(rows, userKey(alice).Partition()) {
		t.Fatalf("oversized input changed the user's rows: before %v after %v", rows, got)
	}
	if h.graph.Calls(alice.ObjectID) != 0 || h.ts.Count("exchange") != 0 {
		t.Fatal("oversized input reached a back end")
	}
}

// A flood of sign-in invokes with random exchange ids and codes: every one gets the protocol's
// answer (400 with a failureDetail for an exchange, 404 or 429 for a code), nothing is stored
// for a bogus id, memory does not grow with the flood, and another user's real sign-in
// completes during it.
func TestInvokeFloodWithRandomIds(t *testing.T) {
	// The defaults of USER_RATE_LIMIT and USER_RATE_BURST.
	h := newSSOHarness(t, map[string]string{"USER_RATE_LIMIT": "20", "USER_RATE_BURST": "10"})
	attacker, b := h.client(alice), h.client(bob)
	ctx := ctxTimeout(t, 90*time.Second)
	rows := h.tableRows(t)
	forged := func(i int) string {
		switch i % 4 {
		case 0:
			return "not-a-token-" + uuid.NewString()
		case 1: // Alice's token for another app
			return h.st.Entra.MintSSOToken(alice, entra.SSOOptions{AppID: "c0ffee00-0000-4000-8000-00000000beef"})
		case 2: // Bob's token, sent by Alice
			return h.st.Entra.MintSSOToken(bob, withApp(entra.SSOOptions{}))
		default: // expired
			return h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{Expiry: time.Now().Add(-time.Hour)}))
		}
	}
	const flood = 400
	var mu sync.Mutex
	bad := map[string]int{}
	run := func(from, to int) *sync.WaitGroup {
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					var r teamsclient.Result
					var err error
					var ok bool
					if i%2 == 0 {
						id := uuid.NewString()
						r, err = attacker.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": id, "connectionName": "sso", "token": forged(i / 2)})
						ok = err == nil && r.Status == http.StatusBadRequest && r.Body["id"] == id && r.Body["failureDetail"] != nil
					} else {
						r, err = attacker.Invoke(ctx, "signin/verifyState", map[string]any{"state": fmt.Sprintf("%06d", i*7919%1000000)})
						ok = err == nil && (r.Status == http.StatusNotFound || r.Status == http.StatusTooManyRequests)
					}
					if !ok {
						mu.Lock()
						bad[fmt.Sprintf("%d %v", r.Status, err)]++
						mu.Unlock()
					}
				}
			}()
		}
		go func() {
			for i := from; i < to; i++ {
				jobs <- i
			}
			close(jobs)
		}()
		return &wg
	}
	// A first wave opens the connections; memory and goroutines are measured from there.
	run(0, 40).Wait()
	var ms0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	wg := run(40, 40+flood)

	// Bob signs in while the flood runs.
	signedIn := make(chan error, 1)
	go func() {
		if _, err := b.Say(ctx, "whoami"); err != nil {
			signedIn <- err
			return
		}
		if _, err := b.WaitReplies(ctx, 1); err != nil {
			signedIn <- err
			return
		}
		res, err := b.ExchangeSSO(ctx, 2, entra.SSOOptions{})
		if err == nil && (res[0].Status != http.StatusOK || res[1].Status != http.StatusOK) {
			err = fmt.Errorf("exchange answered %d/%d", res[0].Status, res[1].Status)
		}
		if err == nil {
			var rep []any
			recs, werr := b.WaitReplies(ctx, 2)
			for _, r := range recs {
				rep = append(rep, r.Text())
			}
			if werr == nil && !strings.Contains(texts(recs[1:]), "Bob Example") {
				werr = fmt.Errorf("bob's whoami answered %v %s", rep, texts(recs))
			}
			err = werr
		}
		signedIn <- err
	}()
	wg.Wait()
	if err := <-signedIn; err != nil {
		t.Fatalf("the real user's sign-in during the flood: %v\n", err)
	}
	if len(bad) > 0 {
		t.Fatalf("flood invokes without the protocol's answer: %v", bad)
	}
	after := h.tableRows(t)
	if a0, a1 := sum(rows, userKey(alice).Partition()), sum(after, userKey(alice).Partition()); a1 != a0 {
		t.Fatalf("the flood stored %d rows in the attacker's partition", a1-a0)
	}
	if grew := sum(after, "") - sum(rows, "") - sum(after, userKey(bob).Partition()) + sum(rows, userKey(bob).Partition()); grew > 0 {
		t.Fatalf("the flood stored %d rows outside the users' partitions: before %v after %v", grew, rows, after)
	}
	if n := h.ts.Count("exchange"); n != 1 {
		t.Fatalf("%d token-service exchanges, want Bob's one: forged tokens must never reach it", n)
	}
	// Chat messages for the guessed codes are bounded by the rate limit, not by the flood.
	if n := len(attacker.Replies()); n > 15 {
		t.Fatalf("the flood made the bot send %d chat messages: %s", n, texts(attacker.Replies()[:3]))
	}
	var ms1 runtime.MemStats
	time.Sleep(300 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	if grew := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes over %d invokes", grew, flood)
	}
	if g := runtime.NumGoroutine(); g > g0+20 {
		t.Fatalf("goroutines grew from %d to %d", g0, g)
	}
	t.Logf("flood of %d invokes: heap %d → %d bytes, goroutines %d → %d, attacker replies %d",
		flood, ms0.HeapAlloc, ms1.HeapAlloc, g0, runtime.NumGoroutine(), len(attacker.Replies()))
}

// removal is what Teams sends when a user uninstalls the bot from their personal scope: an
// installationUpdate with action "remove" and a conversationUpdate naming the bot in
// membersRemoved; adding it back sends action "add" and membersAdded.
func removal(c *teamsclient.Client, added bool) []map[string]any {
	inst := c.Activity("installationUpdate")
	upd := c.Activity("conversationUpdate")
	bot := []map[string]any{{"id": "28:" + c.AppID}}
	if added {
		inst["action"] = "add"
		upd["membersAdded"] = bot
	} else {
		inst["action"] = "remove"
		upd["membersRemoved"] = bot
	}
	return []map[string]any{inst, upd}
}

// A user who removes the bot while a sign-in is pending and adds it back: the removal sends
// nothing and drops the request that waited in that conversation (one waiting in another
// conversation is kept); the re-added bot welcomes them; the old card's
// sign-in, completed afterwards, signs them in (200) and answers nothing from before; their
// next question is answered at once.
func TestRemoveAndReAddMidSignIn(t *testing.T) {
	h := newSSOHarness(t)
	a := h.client(alice)
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := a.Say(ctx, "whoami"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	oldCard, err := a.LastOAuthCard()
	if err != nil {
		t.Fatal(err)
	}
	// The same user waits for a sign-in in another conversation, which keeps the bot.
	other := h.client(alice)
	if _, err := other.Say(ctx, "whoami"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	part := userKey(alice).Partition()
	parked := sum(h.tableRows(t), part)

	h.st.Channel.RemoveBot(a.ConversationID)
	for _, act := range removal(a, false) {
		if r, err := a.Post(ctx, act); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s remove: %v %+v", act["type"], err, r)
		}
	}
	if got := sum(h.tableRows(t), part); got != parked-1 {
		t.Fatalf("removal left the waiting request: %d rows, want %d", got, parked-1)
	}
	if n := strings.Count(h.logs.String(), `"outcome":"removed"`); n != 2 {
		t.Fatalf("want both removal activities handled (outcome removed), got %d:\n%s", n, h.logs.String())
	}

	h.st.Channel.AddBot(a.ConversationID)
	for _, act := range removal(a, true) {
		if r, err := a.Post(ctx, act); err != nil || r.Status != http.StatusOK {
			t.Fatalf("%s add: %v %+v", act["type"], err, r)
		}
	}
	rep, err := a.WaitReplies(ctx, 2)
	if err != nil || !strings.Contains(rep[1].Text(), "Type **help**") {
		t.Fatalf("the re-added bot did not welcome the user: %v\n%s", err, texts(rep))
	}

	// The old card's silent sign-in arrives late.
	r, err := a.Invoke(ctx, "signin/tokenExchange", map[string]any{
		"id": oldCard.ExchangeID, "connectionName": "sso", "token": h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{})),
	})
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("late exchange from the old card: %v %+v", err, r)
	}
	// The request in the other conversation was kept and is answered now.
	if rep, err := other.WaitReplies(ctx, 2); err != nil || !strings.Contains(texts(rep[1:]), "Alice Example") {
		t.Fatalf("the request waiting in another conversation was not kept: %v\n%s", err, texts(other.Replies()))
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(a.Replies()); n != 2 {
		t.Fatalf("the request from before the removal was answered after all:\n%s", texts(a.Replies()))
	}
	if _, err := a.Say(ctx, "whoami"); err != nil {
		t.Fatal(err)
	}
	rep, err = a.WaitReplies(ctx, 3)
	if err != nil || !strings.Contains(texts(rep[2:]), "Alice Example") {
		t.Fatalf("after re-adding, whoami is answered without another sign-in: %v\n%s", err, texts(rep))
	}
}

// The bot removed while a sign-in completes (the removal not yet delivered): the resumed
// answer is refused by the channel (403 BotNotInConversationRoster) and only logged; an
// activity still arriving from that conversation is answered 200, so the channel does not
// retry it; nothing crashes and other users are served.
func TestRepliesToARemovedConversationCrashNothing(t *testing.T) {
	h := newSSOHarness(t)
	a, b := h.client(alice), h.client(bob)
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := a.Say(ctx, "whoami"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitReplies(ctx, 1); err != nil {
		t.Fatal(err)
	}
	h.st.Channel.RemoveBot(a.ConversationID)
	res, err := a.ExchangeSSO(ctx, 2, entra.SSOOptions{})
	if err != nil || res[0].Status != http.StatusOK || res[1].Status != http.StatusOK {
		t.Fatalf("exchange: %v %+v", err, res)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(h.logs.String(), "resuming a parked request failed") {
		if time.Now().After(deadline) {
			t.Fatalf("the refused resumed answer was not logged:\n%s", h.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r, err := a.Say(ctx, "help"); err != nil || r.Status != http.StatusOK {
		t.Fatalf("a message from the removed conversation: %v %+v (want 200: a retry cannot succeed)", err, r)
	}
	if !strings.Contains(h.logs.String(), `"outcome":"bot-not-in-conversation"`) {
		t.Fatal("the refused reply is not in the activity log")
	}
	if n := len(a.Replies()); n != 1 {
		t.Fatalf("%d messages recorded in the removed conversation, want only the card from before", n)
	}
	h.signIn(t, b)
	if got := texts(b.Replies()); !strings.Contains(got, "Bob Example") {
		t.Fatalf("another user was not served: %s", got)
	}
}

// A client replaying the user's own valid SSO token under fresh exchange ids is paced by the
// user's rate limit: past the burst, each new id is answered 400 without reaching the token
// service, and the duplicates of one id (one per open Teams client) count once.
func TestTokenReplayUnderFreshIdsIsPaced(t *testing.T) {
	h := newSSOHarness(t, map[string]string{"USER_RATE_LIMIT": "6", "USER_RATE_BURST": "3"})
	a := h.client(alice)
	ctx := ctxTimeout(t, 30*time.Second)
	tok := h.st.Entra.MintSSOToken(alice, withApp(entra.SSOOptions{}))
	exchange := func(id string) teamsclient.Result {
		r, err := a.Invoke(ctx, "signin/tokenExchange", map[string]any{"id": id, "connectionName": "sso", "token": tok})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := uuid.NewString()
	for range 3 { // three Teams clients, one id: one request of the burst
		if r := exchange(first); r.Status != http.StatusOK {
			t.Fatalf("first exchange: %+v", r)
		}
	}
	for i := range 2 {
		if r := exchange(uuid.NewString()); r.Status != http.StatusOK {
			t.Fatalf("fresh id %d within the burst: %+v", i, r)
		}
	}
	for i := range 5 {
		r := exchange(uuid.NewString())
		detail, _ := r.Body["failureDetail"].(string)
		if r.Status != http.StatusBadRequest || !strings.Contains(detail, "try again in") {
			t.Fatalf("fresh id %d past the burst: %+v, want 400 naming when to try again", i, r)
		}
	}
	if n := h.ts.Count("exchange"); n != 3 {
		t.Fatalf("%d token-service exchanges, want 3 (the burst)", n)
	}
}
