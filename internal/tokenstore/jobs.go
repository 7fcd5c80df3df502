package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/onbehalf/onbehalf/internal/seal"
)

// Jobs are units of slow work a queue worker does for a user. The job row holds the work's
// input sealed like every other row, so the queue message only names the row (JobRef) and
// carries no user data. The row is also the job's idempotency record: it is created once per
// key, claimed with a lease by the worker running it, and marked done when the user has seen
// its outcome, so a re-delivered message continues an interrupted job or skips a finished one.

const (
	kindJob     = "job"
	kindJobDone = "job-done"
)

var (
	// ErrJobDone reports a job that already finished: the message is a re-delivery.
	ErrJobDone = errors.New("tokenstore: job already done")
	// ErrJobBusy reports a job another worker holds a live lease on.
	ErrJobBusy = errors.New("tokenstore: job running elsewhere")
)

// JobRef names a job row. Both parts are hashes; a ref reveals neither the user nor the job.
type JobRef struct {
	Partition string `json:"p"`
	Row       string `json:"r"`
}

var (
	hex64RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	jobRKRE = regexp.MustCompile(`^job\|[0-9a-f]{64}$`)
)

// Validate checks a ref's form before it is used as a key.
func (r JobRef) Validate() error {
	if !hex64RE.MatchString(r.Partition) || !jobRKRE.MatchString(r.Row) {
		return fmt.Errorf("%w: malformed job reference", ErrInvalid)
	}
	return nil
}

func jobRK(key string) string { return "job|" + hashKey("job", key) }

// JobClaim is a claimed job: its input, and when the claim was made for the second time or
// later (Attempt > 1 means an earlier worker stopped mid-job).
type JobClaim struct {
	Ref     JobRef
	Attempt int
	owner   string
}

type jobState struct {
	Payload []byte `json:"d"`
	Attempt int    `json:"a"`
}

// CreateJob records a job for user u under an idempotency key (for example an activity id and
// a step), create-only, sealing payload. created is false when the key was recorded before
// (the caller may enqueue its ref again: a finished job is skipped by ClaimJob). The row lives
// for ttl.
func (s *Store) CreateJob(ctx context.Context, u UserKey, key string, payload []byte, ttl time.Duration) (ref JobRef, created bool, err error) {
	if err := u.Validate(); err != nil {
		return JobRef{}, false, err
	}
	if key == "" || ttl <= 0 {
		return JobRef{}, false, fmt.Errorf("%w: job key and ttl are required", ErrInvalid)
	}
	ref = JobRef{Partition: u.Partition(), Row: jobRK(key)}
	r, err := s.newRow(ctx, s.users, ref.Partition, ref.Row, kindJob, jobState{Payload: payload}, s.now().Add(ttl))
	if err != nil {
		return JobRef{}, false, err
	}
	_, err = s.insert(ctx, s.users, r)
	if errors.Is(err, ErrConflict) {
		return ref, false, nil
	}
	if err != nil {
		return JobRef{}, false, err
	}
	return ref, true, nil
}

// ClaimJob takes job ref for owner for lease, and returns its input. It fails with ErrJobDone
// when the job finished, ErrNotFound when it expired or never existed, and ErrJobBusy (with
// the lease's end in busyUntil) while another owner's lease is live; a lapsed lease is taken
// over. The claim is conditional on the row's ETag, so exactly one owner wins a race.
func (s *Store) ClaimJob(ctx context.Context, ref JobRef, owner string, lease time.Duration) (claim JobClaim, payload []byte, busyUntil time.Time, err error) {
	if err := ref.Validate(); err != nil {
		return JobClaim{}, nil, time.Time{}, err
	}
	if owner == "" || lease <= 0 {
		return JobClaim{}, nil, time.Time{}, fmt.Errorf("%w: owner and lease are required", ErrInvalid)
	}
	r, err := s.read(ctx, s.users, ref.Partition, ref.Row)
	if err != nil {
		return JobClaim{}, nil, time.Time{}, fmt.Errorf("tokenstore: claim job: %w", err)
	}
	now := s.now()
	switch {
	case r.kind == kindJobDone:
		return JobClaim{}, nil, time.Time{}, ErrJobDone
	case r.kind != kindJob || !now.Before(r.exp):
		return JobClaim{}, nil, time.Time{}, fmt.Errorf("tokenstore: claim job: %w", ErrNotFound)
	case r.leaseOwner != "" && r.leaseOwner != owner && now.Before(r.leaseUntil):
		return JobClaim{}, nil, r.leaseUntil, ErrJobBusy
	}
	var st jobState
	if err := s.open(ctx, s.users, r, kindJob, &st); err != nil {
		return JobClaim{}, nil, time.Time{}, fmt.Errorf("tokenstore: claim job: %w", err)
	}
	st.Attempt++
	nr, err := s.newRow(ctx, s.users, ref.Partition, ref.Row, kindJob, st, r.exp)
	if err != nil {
		return JobClaim{}, nil, time.Time{}, err
	}
	nr.leaseUntil, nr.leaseOwner = now.Add(lease), owner
	if _, err := s.replace(ctx, s.users, nr, r.etag); err != nil {
		if errors.Is(err, ErrConflict) {
			return JobClaim{}, nil, now.Add(lease), ErrJobBusy
		}
		return JobClaim{}, nil, time.Time{}, err
	}
	return JobClaim{Ref: ref, Attempt: st.Attempt, owner: owner}, st.Payload, time.Time{}, nil
}

// FinishJob marks a claimed job done: its input is dropped and the row stays, without data,
// until it expires, so re-deliveries are skipped.
func (s *Store) FinishJob(ctx context.Context, c JobClaim) error {
	if err := c.Ref.Validate(); err != nil {
		return err
	}
	r, err := s.read(ctx, s.users, c.Ref.Partition, c.Ref.Row)
	if err != nil {
		return fmt.Errorf("tokenstore: finish job: %w", err)
	}
	if r.kind == kindJobDone {
		return nil
	}
	if r.leaseOwner != c.owner {
		return fmt.Errorf("tokenstore: finish job: %w: lease taken over", ErrConflict)
	}
	done := &row{pk: r.pk, rk: r.rk, kind: kindJobDone, exp: r.exp}
	if _, err := s.replace(ctx, s.users, done, r.etag); err != nil {
		return fmt.Errorf("tokenstore: finish job: %w", err)
	}
	return nil
}

// JobNote is a small value sealed for one job's queue message rather than for a row: what a
// worker needs to reach the user when the job's row cannot be read (Table Storage down). It is
// bound to the job's ref, so it opens only beside that ref, and needs only the sealing key.
type JobNote struct {
	Version string `json:"v"`
	Data    []byte `json:"d"`
}

// jobNoteTable is the logical name sealed into a note's associated data; no table has it, so
// a note never opens as a row's value nor a row's value as a note.
const jobNoteTable = "jobnote"

// SealJobNote seals payload for the message of job ref under the current key.
func (s *Store) SealJobNote(ctx context.Context, ref JobRef, payload []byte) (JobNote, error) {
	if err := ref.Validate(); err != nil {
		return JobNote{}, err
	}
	k, err := s.keys.Current(ctx)
	if err != nil {
		return JobNote{}, keyErr("tokenstore: job note key", err)
	}
	b, err := seal.Seal(k, seal.Binding{Table: jobNoteTable, Partition: ref.Partition, Row: ref.Row}, payload)
	if err != nil {
		return JobNote{}, fmt.Errorf("tokenstore: seal job note: %w", err)
	}
	return JobNote{Version: k.Version(), Data: b}, nil
}

// OpenJobNote opens a note sealed by SealJobNote for the same ref. A note that was altered,
// or copied beside another job's ref, fails with ErrTampered.
func (s *Store) OpenJobNote(ctx context.Context, ref JobRef, n JobNote) ([]byte, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	if n.Version == "" || len(n.Data) == 0 {
		return nil, fmt.Errorf("tokenstore: job note: %w: empty", ErrTampered)
	}
	k, err := s.keys.Version(ctx, n.Version)
	if err != nil {
		return nil, keyErr("tokenstore: job note key", err)
	}
	p, err := seal.Open(k, seal.Binding{Table: jobNoteTable, Partition: ref.Partition, Row: ref.Row}, n.Data)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: job note: %w", ErrTampered)
	}
	return p, nil
}
