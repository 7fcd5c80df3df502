package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ExchangeState is the progress of a token exchange.
type ExchangeState string

// Exchange states.
const (
	ExchangePending   ExchangeState = "pending"
	ExchangeSucceeded ExchangeState = "succeeded"
	ExchangeFailed    ExchangeState = "failed"
)

// ExchangeOutcome is what the first handler of a token exchange decided; duplicates answer
// with the same. FailureDetail is a safe, user-facing reason (never a token).
type ExchangeOutcome struct {
	State         ExchangeState `json:"s"`
	FailureDetail string        `json:"d,omitempty"`
	// Status is the invoke status the first handler answered with (0: not recorded).
	Status int `json:"c,omitempty"`
}

const kindExchange = "exchange"

// ClockSkew is how far the clocks of two instances sharing the store may differ. A pending
// exchange claim is taken over only once it has expired by this much more, so that an instance
// whose clock runs ahead does not run a second exchange beside the first.
const ClockSkew = 5 * time.Minute

func exchangeRK(id string) string { return "xchg|" + hashKey("exchange", id) }

// ClaimExchange records, create-only, that this caller handles exchange id for user u (Teams
// sends one signin/tokenExchange per open client, all with the same id). It returns nil for the
// first caller; every later caller gets an error matching ErrDuplicate (and ErrConflict) and
// should answer with AwaitExchange's outcome. The record lives for ttl. Only successes are
// remembered: a record whose exchange failed is taken over by the next claim (Teams retries
// with the same id after the user consents), by exactly one claimant.
func (s *Store) ClaimExchange(ctx context.Context, u UserKey, id string, ttl time.Duration) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if id == "" || ttl <= 0 {
		return fmt.Errorf("%w: exchange id and ttl are required", ErrInvalid)
	}
	pk, rk := u.Partition(), exchangeRK(id)
	r, err := s.newRow(ctx, s.users, pk, rk, kindExchange, ExchangeOutcome{State: ExchangePending}, s.now().Add(ttl))
	if err != nil {
		return err
	}
	_, err = s.insert(ctx, s.users, r)
	if errors.Is(err, ErrConflict) {
		// The existing record may be an expired one from an earlier exchange with the same id.
		old, rerr := s.read(ctx, s.users, pk, rk)
		var prev ExchangeOutcome
		switch {
		case errors.Is(rerr, ErrNotFound):
			// Taken over and not yet re-created by another claimant, or just expired: one try.
			if _, err = s.insert(ctx, s.users, r); err == nil {
				return nil
			}
		case rerr == nil && (!s.now().Before(old.exp.Add(ClockSkew)) ||
			(s.open(ctx, s.users, old, kindExchange, &prev) == nil && prev.State == ExchangeFailed)):
			if derr := s.remove(ctx, s.users, pk, rk, old.etag); derr == nil {
				if _, err = s.insert(ctx, s.users, r); err == nil {
					return nil
				}
			}
		}
		return fmt.Errorf("tokenstore: claim exchange: %w: %w", ErrDuplicate, ErrConflict)
	}
	return err
}

// CompleteExchange records the outcome of a claimed exchange.
func (s *Store) CompleteExchange(ctx context.Context, u UserKey, id string, out ExchangeOutcome) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if out.State != ExchangeSucceeded && out.State != ExchangeFailed {
		return fmt.Errorf("%w: outcome must be succeeded or failed", ErrInvalid)
	}
	pk, rk := u.Partition(), exchangeRK(id)
	r, err := s.read(ctx, s.users, pk, rk)
	if err != nil {
		return err
	}
	if err := s.open(ctx, s.users, r, kindExchange, nil); err != nil {
		return err
	}
	nr, err := s.newRow(ctx, s.users, pk, rk, kindExchange, out, r.exp)
	if err != nil {
		return err
	}
	_, err = s.replace(ctx, s.users, nr, r.etag)
	return err
}

// ExchangeResult reads the current outcome (State is ExchangePending until completed).
func (s *Store) ExchangeResult(ctx context.Context, u UserKey, id string) (ExchangeOutcome, error) {
	if err := u.Validate(); err != nil {
		return ExchangeOutcome{}, err
	}
	pk, rk := u.Partition(), exchangeRK(id)
	r, err := s.read(ctx, s.users, pk, rk)
	if err != nil {
		return ExchangeOutcome{}, err
	}
	var out ExchangeOutcome
	err = s.open(ctx, s.users, r, kindExchange, &out)
	return out, err
}

// AwaitExchange polls until the exchange is completed, ctx ends, or the record disappears.
// Give ctx a deadline shorter than the invoke's time limit.
func (s *Store) AwaitExchange(ctx context.Context, u UserKey, id string, poll time.Duration) (ExchangeOutcome, error) {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	for {
		out, err := s.ExchangeResult(ctx, u, id)
		if err != nil || out.State != ExchangePending {
			return out, err
		}
		if err := sleepCtx(ctx, poll); err != nil {
			return out, fmt.Errorf("tokenstore: await exchange: %w", err)
		}
	}
}
