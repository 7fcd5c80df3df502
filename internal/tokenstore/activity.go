package tokenstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// Activity rows hold the audit records of calls made for a user, in the user's own partition,
// sealed like every other row, newest first by row key.

const kindActivity = "activity"

const activityPrefix = "act|"

// activityKey orders rows newest first: the row key holds the time counted down from the end
// of the int64 range, zero-padded.
func activityKey(at time.Time) string {
	return fmt.Sprintf("%s%019d", activityPrefix, math.MaxInt64-at.UnixNano())
}

type activityPayload struct {
	Record []byte `json:"r"`
}

// AddActivity keeps one audit record (opaque bytes) for u for ttl.
func (s *Store) AddActivity(ctx context.Context, u UserKey, at time.Time, record []byte, ttl time.Duration) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: activity needs a positive ttl", ErrInvalid)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	rk := activityKey(at) + "|" + hex.EncodeToString(b)
	r, err := s.newRow(ctx, s.users, u.Partition(), rk, kindActivity, activityPayload{Record: record}, s.now().Add(ttl))
	if err != nil {
		return err
	}
	_, err = s.insert(ctx, s.users, r)
	return err
}

// Activity returns u's records made at or after since, newest first, at most max (0: all).
// Only u's partition is read; expired rows are skipped (and deleted).
func (s *Store) Activity(ctx context.Context, u UserKey, since time.Time, max int) ([][]byte, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	// Newest first: from the prefix up to the key of since (inclusive).
	rows, err := s.list(ctx, s.users, u.Partition(), activityPrefix, activityKey(since)+"}")
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, r := range rows {
		var p activityPayload
		err := s.open(ctx, s.users, r, kindActivity, &p)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSignInNeeded) {
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, p.Record)
		if max > 0 && len(out) == max {
			break
		}
	}
	return out, nil
}
