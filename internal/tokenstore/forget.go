package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ForgetUser deletes every row of u in every table: tokens, sign-in states (through their
// index rows), parked requests, exchange records and the conversation reference. It returns
// how many rows it deleted. Safe to repeat; a partial failure returns an error and the call can
// simply be retried.
func (s *Store) ForgetUser(ctx context.Context, u UserKey) (int, error) {
	if err := u.Validate(); err != nil {
		return 0, err
	}
	pk := u.Partition()
	s.l1.dropPrefix(pk + "\x00")
	rows, err := s.list(ctx, s.users, pk, "", "")
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range rows {
		if h, ok := strings.CutPrefix(r.rk, "signin|"); ok {
			err := s.remove(ctx, s.signin, h, "s", "")
			if err == nil {
				n++
			} else if !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
				continue // keep the index so a retry finds the state
			}
		}
		err := s.remove(ctx, s.users, pk, r.rk, "")
		if err == nil {
			n++
		} else if !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("tokenstore: forget user: %w", errors.Join(errs...))
	}
	return n, nil
}
