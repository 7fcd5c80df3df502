package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/google/uuid"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
	standin "github.com/onbehalf/onbehalf/internal/testenv/atlassian"
	"github.com/onbehalf/onbehalf/internal/testenv/azurite"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
	"github.com/onbehalf/onbehalf/internal/testenv/funchost"
	"github.com/onbehalf/onbehalf/internal/testenv/stack"
	"github.com/onbehalf/onbehalf/internal/work"
)

// channelLimit is how long the channel waits for the bot's answer to a POST: "10 to 15
// seconds, depending on the channel", then Bot Service answers the client 504 (Learn "Manage a
// long-running operation", bot-builder-howto-long-operations-guidance); 15 s for a first
// answer in Teams (Learn "Implement asynchronous and proactive messaging in custom engine
// agents"). The test's POST must come back well inside the lower bound.
const channelLimit = 15 * time.Second

// queueEnv is the Atlassian world with a work queue on real Azurite queues and one
// Functions-host stand-in per handler instance.
type queueEnv struct {
	*atlEnv
	svc           *azqueue.ServiceClient
	queue, poison *azqueue.QueueClient
	dead          []atomic.Bool // an instance whose every outbound call fails: killed
	stops         []context.CancelFunc
	// target is where each instance's host sends invocations: its own handler, or after a
	// restart, the handler that replaced it on the same port.
	target []atomic.Pointer[url.URL]
}

type killable struct {
	rt   http.RoundTripper
	dead *atomic.Bool
}

func (k killable) RoundTrip(r *http.Request) (*http.Response, error) {
	if k.dead.Load() {
		return nil, errors.New("instance killed")
	}
	return k.rt.RoundTrip(r)
}

func newQueueEnv(t *testing.T, instances int) *queueEnv {
	t.Helper()
	azq := azurite.StartService(t, azurite.Queue)
	q := &queueEnv{dead: make([]atomic.Bool, instances), target: make([]atomic.Pointer[url.URL], instances)}
	q.atlEnv = newAtlEnvWith(t, instances, false, map[string]string{"WORK_QUEUE_CONNECTION_STRING": azq.QueueConnectionString()},
		func(i int, rt http.RoundTripper) http.RoundTripper { return killable{rt: rt, dead: &q.dead[i]} })
	svc, err := azqueue.NewServiceClientFromConnectionString(azq.QueueConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	q.svc = svc
	q.queue, q.poison = svc.NewQueueClient(config.WorkQueueName), svc.NewQueueClient(config.WorkQueueName+"-poison")
	for i := range instances {
		if q.apps[i].Jobs == nil {
			t.Fatal("the work queue is not configured")
		}
		u, _ := url.Parse(q.srvs[i].URL)
		q.target[i].Store(u)
		port := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(q.target[i].Load()) }})
		t.Cleanup(port.Close)
		ctx, stop := context.WithCancel(context.Background())
		q.stops = append(q.stops, stop)
		t.Cleanup(stop)
		h := &funchost.Host{HandlerURL: port.URL, PollInterval: 20 * time.Millisecond}
		// The deployed definitions: functions/work/function.json and host.json's queue
		// settings, except a failed message comes back at once instead of after 10 s.
		f, err := funchost.QueueFunctionFrom(svc, "../../host.json", "../../functions", "work")
		if err != nil {
			t.Fatal(err)
		}
		f.VisibilityTimeout = 0
		go h.Poll(ctx, f)
	}
	return q
}

// replies waits until n messages (not typing) reached u's conversation after index from, or
// the timeout, and returns them.
func (q *queueEnv) replies(u chatUser, from int, n int, timeout time.Duration) []channel.Recorded {
	deadline := time.Now().Add(timeout)
	for {
		var out []channel.Recorded
		for _, r := range q.ch.Recorded()[from:] {
			if r.ConversationID == u.conv && r.Activity["type"] == "message" {
				out = append(out, r)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A Jira search slower than the channel waits: the POST is answered at once (with the typing
// indicator), the result reaches the user from the queue worker, once.
func TestSlowJiraSearchIsAnsweredFromTheQueueOnce(t *testing.T) {
	q := newQueueEnv(t, 1)
	bo := newChatUser("bo")
	q.link(t, bo, standin.Bob, true)

	q.atl.Inject(standin.Fault{Delay: channelLimit + 2*time.Second})
	from := len(q.ch.Recorded())
	start := time.Now()
	q.say(t, 0, bo, "my jira issues")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the POST took %s; the channel gives up after %s", took, channelLimit)
	}
	typing := false
	for _, r := range q.ch.Recorded()[from:] {
		typing = typing || (r.ConversationID == bo.conv && r.Activity["type"] == "typing")
	}
	if !typing {
		t.Fatal("the user saw nothing while the search ran (no typing indicator)")
	}
	got := q.replies(bo, from, 1, 60*time.Second)
	if len(got) != 1 || !strings.Contains(dump(got), "Disk alert on build agents") {
		t.Fatalf("want the result once, got:\n%s\nlog:\n%s", dump(got), q.logs.String())
	}
	time.Sleep(time.Second) // nothing more arrives
	if again := q.replies(bo, from, 2, 0); len(again) != 1 {
		t.Fatalf("answered %d times:\n%s", len(again), dump(again))
	}
}

// The handler running a job dies mid-job (its connections cut, nothing it does reaches
// anything any more); the host sees the invocation fail and releases the message; the
// restarted handler gets it again, waits for the dead one's lease, runs the job and answers
// once.
func TestJobOfAKilledHandlerCompletesOnceAfterRestart(t *testing.T) {
	q := newQueueEnv(t, 2)
	q.stops[1]() // instance 1 is the restarted handler of instance 0's host
	bo := newChatUser("bo")
	q.link(t, bo, standin.Bob, true)

	q.atl.Inject(standin.Fault{Delay: 3 * time.Second})
	from := len(q.ch.Recorded())
	q.say(t, 0, bo, "my jira issues")
	time.Sleep(time.Second) // the job is running on instance 0, waiting for Jira
	q.dead[0].Store(true)
	restarted, _ := url.Parse(q.srvs[1].URL)
	q.target[0].Store(restarted)
	q.srvs[0].CloseClientConnections()
	// The dead instance's lease must lapse before anyone else runs the job.
	time.Sleep(3 * time.Second)
	// Meanwhile the user is told, once, that the answer is delayed.
	if early := q.replies(bo, from, 2, 0); len(early) > 1 || len(early) == 1 && early[0].Text() != work.DelayedText {
		t.Fatalf("answered while the dead instance's lease lived:\n%s", dump(early))
	}
	q.clk.Advance(3 * time.Minute)
	got := q.replies(bo, from, 2, 30*time.Second)
	time.Sleep(2 * time.Second)
	got = q.replies(bo, from, 3, 0)
	if len(got) != 2 || got[0].Text() != work.DelayedText || !strings.Contains(dump(got[1:]), "Disk alert on build agents") {
		t.Fatalf("want the result once, got %d:\n%s\nlog:\n%s", len(got), dump(got), q.logs.String())
	}
	if p, _ := q.poison.PeekMessages(context.Background(), nil); p.Messages != nil && len(p.Messages) > 0 {
		t.Fatal("the job ended in the poison queue")
	}
}

// A job that fails on every delivery ends, at the host's last delivery (maxDequeueCount),
// with a clear message to the user and an error line for the operator — not silently in the
// poison queue.
func TestJobFailingEveryDeliveryTellsTheUser(t *testing.T) {
	q := newQueueEnv(t, 1)
	bo := newChatUser("bo")
	var runs atomic.Int32
	q.apps[0].Worker.Handle("always-fails", func(context.Context, work.Job) error {
		runs.Add(1)
		return errors.New("back end down")
	})
	act := &botframework.Activity{Type: botframework.TypeMessage, ID: uuid.NewString(), ChannelID: "msteams", ServiceURL: q.ch.ServiceURL,
		From: botframework.ChannelAccount{ID: bo.fromID, AADObjectID: bo.aad}, Recipient: botframework.ChannelAccount{ID: "28:bot"},
		Conversation: botframework.ConversationAccount{ID: bo.conv, ConversationType: "personal", TenantID: stack.TenantID}}
	from := len(q.ch.Recorded())
	if err := q.apps[0].Jobs.Enqueue(context.Background(), act.ID+"|x", work.Job{Kind: "always-fails", User: bo.key(), Ref: act.Reference()}); err != nil {
		t.Fatal(err)
	}
	got := q.replies(bo, from, 2, 30*time.Second)
	if len(got) != 2 || got[0].Text() != work.DelayedText || !strings.Contains(got[1].Text(), "could not finish your earlier request") {
		t.Fatalf("the user was not told of the delay, then that the request was given up:\n%s", dump(got))
	}
	if n := runs.Load(); n != funchost.DefaultMaxDequeueCount {
		t.Fatalf("the job ran %d times, want maxDequeueCount = %d", n, funchost.DefaultMaxDequeueCount)
	}
	if !strings.Contains(q.logs.String(), "job failed on its last delivery") {
		t.Fatal("no operator log line")
	}
	time.Sleep(500 * time.Millisecond)
	if p, _ := q.poison.PeekMessages(context.Background(), nil); len(p.Messages) > 0 {
		t.Fatal("the message still ended in the poison queue")
	}
	if again := q.replies(bo, from, 3, 0); len(again) != 2 {
		t.Fatalf("told %d times, want the delay notice and the give-up once each", len(again))
	}
}

// Table Storage goes down after a slow command was queued: the worker cannot read the job,
// yet the user is told at once, in their conversation, that the answer is delayed (through
// the conversation sealed into the queue message); the host delivers the message again, and
// once storage is back the user gets the answer. The notice comes once, however many
// deliveries fail.
func TestJobFailingWhileStorageIsDownTellsTheUserThenAnswers(t *testing.T) {
	q := newQueueEnv(t, 1)
	bo := newChatUser("bo")
	q.link(t, bo, standin.Bob, true)
	// The host stops polling while the command is queued, so the job is recorded (storage
	// up) and first delivered with storage down.
	q.stops[0]()
	from := len(q.ch.Recorded())
	q.say(t, 0, bo, "my jira issues")
	if err := q.az.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = q.az.Restart()
		}
	}()
	h := &funchost.Host{HandlerURL: q.srvs[0].URL, PollInterval: 20 * time.Millisecond}
	f, err := funchost.QueueFunctionFrom(q.svc, "../../host.json", "../../functions", "work")
	if err != nil {
		t.Fatal(err)
	}
	f.VisibilityTimeout = time.Second
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go h.Poll(ctx, f)

	got := q.replies(bo, from, 1, 30*time.Second)
	if len(got) != 1 || got[0].Text() != work.DelayedText {
		t.Fatalf("while storage is down the user heard:\n%s", dump(got))
	}
	// Let the host deliver it again (and fail again) at least once with storage still down.
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(q.logs.String(), "work: claiming the job failed") < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(q.logs.String(), "work: claiming the job failed"); n < 2 {
		t.Fatalf("%d failed deliveries while storage was down, want at least 2", n)
	}
	if err := q.az.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	got = q.replies(bo, from, 2, 60*time.Second)
	if len(got) != 2 || got[0].Text() != work.DelayedText || !strings.Contains(dump(got[1:]), "Disk alert on build agents") {
		t.Fatalf("after storage came back the user did not get the answer:\n%s\nlog:\n%s", dump(got), q.logs.String())
	}
	time.Sleep(time.Second)
	if again := q.replies(bo, from, 3, 0); len(again) != 2 {
		t.Fatalf("the user got %d messages, want the notice and the answer once each:\n%s", len(again), dump(again))
	}
}

// 1,000 jobs from 100 users through two handler instances: every job is answered once, in
// its own user's conversation. Reports jobs/s and the p99 from enqueue to reply.
func TestThousandJobsHundredUsersTwoInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	q := newQueueEnv(t, 2)
	const users, perUser = 100, 10
	type sent struct {
		conv string
		at   time.Time
	}
	var mu sync.Mutex
	jobs := map[string]sent{}
	var us []chatUser
	for i := range users {
		us = append(us, newChatUser(fmt.Sprintf("u%03d", i)))
	}
	from := len(q.ch.Recorded())
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, u := range us {
		for range perUser {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				id := uuid.NewString()
				act := &botframework.Activity{
					Type: botframework.TypeMessage, ID: id, Text: "help", ChannelID: "msteams", ServiceURL: q.ch.ServiceURL,
					From:         botframework.ChannelAccount{ID: u.fromID, AADObjectID: u.aad},
					Recipient:    botframework.ChannelAccount{ID: "28:bot"},
					Conversation: botframework.ConversationAccount{ID: u.conv, ConversationType: "personal", TenantID: stack.TenantID},
				}
				b, _ := json.Marshal(act)
				mu.Lock()
				jobs[id] = sent{conv: u.conv, at: time.Now()}
				mu.Unlock()
				if err := q.apps[0].Jobs.Enqueue(context.Background(), id+"|turn", work.Job{Kind: "turn", User: u.key(), Ref: act.Reference(), Data: b}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Minute)
	var recs []channel.Recorded
	for time.Now().Before(deadline) {
		recs = nil
		for _, r := range q.ch.Recorded()[from:] {
			if r.Activity["type"] == "message" {
				recs = append(recs, r)
			}
		}
		if len(recs) >= users*perUser {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	answered := map[string]int{}
	var lat []time.Duration
	var last time.Time
	for _, r := range q.ch.Recorded()[from:] {
		if r.Activity["type"] != "message" {
			continue
		}
		answered[r.ActivityID]++
		s, ok := jobs[r.ActivityID]
		if !ok || s.conv != r.ConversationID {
			t.Fatalf("a reply to %q went to %q, not its user's conversation", r.ActivityID, r.ConversationID)
		}
		lat = append(lat, r.At.Sub(s.at))
		if r.At.After(last) {
			last = r.At
		}
	}
	for id := range jobs {
		if answered[id] != 1 {
			t.Fatalf("job %s answered %d times (of %d jobs, %d replies)", id, answered[id], len(jobs), len(lat))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[len(lat)*99/100-1]
	t.Logf("%d jobs from %d users through 2 instances: %.1f jobs/s; enqueue-to-reply p50 %s, p99 %s",
		len(jobs), users, float64(len(jobs))/last.Sub(start).Seconds(), lat[len(lat)/2].Round(time.Millisecond), p99.Round(time.Millisecond))
}

// A question asked before linking waits; once the link is confirmed, the announcement and the
// answer both come from the queue worker, each once.
func TestParkedQuestionIsAnsweredOnceFromTheQueueAfterLinking(t *testing.T) {
	q := newQueueEnv(t, 2)
	bo := newChatUser("bo")
	recs := q.say(t, 1, bo, "jira OPS-7")
	if !strings.Contains(dump(recs), "application/vnd.microsoft.card.signin") {
		t.Fatalf("want a sign-in card:\n%s", dump(recs))
	}
	from := len(q.ch.Recorded())
	q.link(t, bo, standin.Bob, true)
	got := q.replies(bo, from, 3, 30*time.Second)
	time.Sleep(time.Second)
	got = q.replies(bo, from, 10, 0)
	d := dump(got)
	if strings.Count(d, "Connected to Jira as Bob Example.") != 1 || strings.Count(d, "Disk alert on build agents") != 1 {
		t.Fatalf("want the announcement and the answer once each:\n%s", d)
	}
	if !strings.Contains(q.logs.String(), `"kind":"announce"`) || !strings.Contains(q.logs.String(), `"kind":"resume"`) {
		t.Fatal("the announcement and the answer did not come from the work queue")
	}
}
