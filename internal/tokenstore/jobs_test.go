package tokenstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/tokenstore"
)

// A job key is recorded once; the first claim gets the input, a second worker is told the job
// is busy while the lease lives, takes it over once it lapses (the first worker died), and a
// finished job is skipped by every later delivery.
func TestJobRunsOnceAcrossDeliveries(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := e.store(func(o *tokenstore.Options) { o.Now = c.Now })
	ref, created, err := s.CreateJob(ctx, alice, "activity-1|resume", []byte(`{"text":"jira PROJ-1"}`), time.Hour)
	if err != nil || !created {
		t.Fatalf("CreateJob = %v, %v", created, err)
	}
	if again, created, err := s.CreateJob(ctx, alice, "activity-1|resume", []byte(`other`), time.Hour); err != nil || created || again != ref {
		t.Fatalf("second CreateJob = %v, %v, %v; want the same ref, not created", again, created, err)
	}
	claim, payload, _, err := s.ClaimJob(ctx, ref, "worker-a", time.Minute)
	if err != nil || string(payload) != `{"text":"jira PROJ-1"}` || claim.Attempt != 1 {
		t.Fatalf("claim = %+v, %q, %v", claim, payload, err)
	}
	if _, _, until, err := s.ClaimJob(ctx, ref, "worker-b", time.Minute); !errors.Is(err, tokenstore.ErrJobBusy) || until.IsZero() {
		t.Fatalf("second worker while the lease lives: %v (until %v), want ErrJobBusy", err, until)
	}
	c.Advance(2 * time.Minute)
	claimB, payload, _, err := s.ClaimJob(ctx, ref, "worker-b", time.Minute)
	if err != nil || claimB.Attempt != 2 || string(payload) != `{"text":"jira PROJ-1"}` {
		t.Fatalf("take-over after the lease lapsed = %+v, %v", claimB, err)
	}
	if err := s.FinishJob(ctx, claim); !errors.Is(err, tokenstore.ErrConflict) {
		t.Fatalf("the worker that lost its lease finished the job: %v", err)
	}
	if err := s.FinishJob(ctx, claimB); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.ClaimJob(ctx, ref, "worker-c", time.Minute); !errors.Is(err, tokenstore.ErrJobDone) {
		t.Fatalf("claim after finish: %v, want ErrJobDone", err)
	}
	// The finished row keeps no input.
	row := e.rawGet("users", ref.Partition, ref.Row)
	if _, has := row["Data"]; has {
		t.Fatal("a finished job still holds its input")
	}
}

// The job's input is sealed in the table, and a reference that is not a job row's is refused
// before anything is read.
func TestJobInputIsSealedAndRefsAreChecked(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	ref, _, err := s.CreateJob(ctx, bob, "activity-2|resume", []byte(`secret question about PROJ-9`), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	row := e.rawGet("users", ref.Partition, ref.Row)
	if d, _ := row["Data"].(string); d == "" || strings.Contains(d, "PROJ-9") {
		t.Fatalf("job input not sealed: %v", row)
	}
	for _, bad := range []tokenstore.JobRef{
		{Partition: ref.Partition, Row: "convref"},
		{Partition: "x' or PartitionKey ne '", Row: ref.Row},
		{},
	} {
		if _, _, _, err := s.ClaimJob(ctx, bad, "w", time.Minute); !errors.Is(err, tokenstore.ErrInvalid) {
			t.Fatalf("ClaimJob(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, _, err := s.ClaimJob(ctx, tokenstore.JobRef{Partition: ref.Partition, Row: "job|" + strings.Repeat("0", 64)}, "w", time.Minute); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("unknown job: %v, want ErrNotFound", err)
	}
}

// The purge removes expired rows of every kind and keeps live ones: a token row with a
// refresh token whose access token has long expired is live and stays.
func TestPurgeRemovesOnlyExpiredRowsNeverALiveRefreshToken(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	s := e.store(func(o *tokenstore.Options) { o.Now = c.Now; o.TokenTTL = 48 * time.Hour })
	stale := sampleToken("stale-access")
	stale.Expiry = c.Now().Add(-time.Hour) // access token expired, refresh token still good
	if err := s.PutToken(ctx, alice, jira, stale); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSignIn(ctx, tokenstore.SignInState{User: alice, Connector: "atlassian"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateJob(ctx, bob, "old|resume", []byte(`x`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateJob(ctx, bob, "new|resume", []byte(`y`), 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	if err := s.PutToken(ctx, bob, wiki, sampleToken("fresh")); err != nil {
		t.Fatal(err)
	}
	n, err := s.PurgeExpired(ctx)
	if err != nil || n != 3 { // sign-in state, its index, the old job
		t.Fatalf("purged %d, %v; want 3", n, err)
	}
	for _, u := range []struct {
		u tokenstore.UserKey
		k tokenstore.TokenKey
	}{{alice, jira}, {bob, wiki}} {
		got, err := s.GetToken(ctx, u.u, u.k)
		if err != nil || got.RefreshToken == "" {
			t.Fatalf("live refresh token of %v purged: %+v, %v", u.u, got, err)
		}
	}
	c.Advance(47*time.Hour + 30*time.Minute)                 // alice's token row is now past its 48 h; bob's is not
	if n, err := s.PurgeExpired(ctx); err != nil || n != 2 { // alice's token row, bob's second job
		t.Fatalf("second purge removed %d, %v; want 2", n, err)
	}
	if _, err := s.GetToken(ctx, bob, wiki); err != nil {
		t.Fatalf("bob's live refresh token purged: %v", err)
	}
}

// A job note opens only beside the job it was sealed for, unaltered; it needs no table read.
func TestJobNoteOpensOnlyForItsJob(t *testing.T) {
	e := newEnv(t)
	s := e.store()
	ref, _, err := s.CreateJob(ctx, alice, "activity-n|turn", []byte(`{}`), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.CreateJob(ctx, alice, "activity-m|turn", []byte(`{}`), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.SealJobNote(ctx, ref, []byte(`{"conversation":{"id":"c1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := s.OpenJobNote(ctx, ref, n); err != nil || string(p) != `{"conversation":{"id":"c1"}}` {
		t.Fatalf("OpenJobNote = %q, %v", p, err)
	}
	if _, err := s.OpenJobNote(ctx, other, n); !errors.Is(err, tokenstore.ErrTampered) {
		t.Fatalf("a note beside another job's ref opened: %v", err)
	}
	bad := n
	bad.Data = append([]byte(nil), n.Data...)
	bad.Data[len(bad.Data)-1] ^= 1
	if _, err := s.OpenJobNote(ctx, ref, bad); !errors.Is(err, tokenstore.ErrTampered) {
		t.Fatalf("an altered note opened: %v", err)
	}
	if _, err := s.OpenJobNote(ctx, ref, tokenstore.JobNote{}); !errors.Is(err, tokenstore.ErrTampered) {
		t.Fatalf("an empty note opened: %v", err)
	}
}
