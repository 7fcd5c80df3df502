package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
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

// PurgeExpired deletes rows of every user whose expiry has passed: abandoned sign-in states,
// exchange records and parked requests that nobody reads again (rows that are read are
// deleted on that read anyway). It scans both tables, so run it from a timer, not per request.
// Rows changed since they were listed are left alone.
func (s *Store) PurgeExpired(ctx context.Context) (int, error) {
	f := fmt.Sprintf("Exp lt datetime'%s'", s.now().UTC().Format(edmTime))
	n := 0
	for _, t := range []table{s.users, s.signin} {
		pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return n, storageErr(ctx, "tokenstore: purge", err)
			}
			for _, e := range page.Entities {
				r, err := parseRow(e, "")
				if err != nil {
					return n, err
				}
				err = s.remove(ctx, t, r.pk, r.rk, r.etag)
				switch {
				case err == nil:
					n++
				case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict):
				default:
					return n, err
				}
			}
		}
	}
	return n, nil
}
