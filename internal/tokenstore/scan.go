package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Holder names, opaquely, the user whose partition holds a row found by a scan across users
// (TokensOf). It reveals neither id; it addresses only that user's rows.
type Holder struct{ pk string }

// String is log-safe, like UserKey.String.
func (h Holder) String() string { return "user:" + h.pk[:min(12, len(h.pk))] }

// HeldToken is one user's token found by TokensOf.
type HeldToken struct {
	Holder Holder
	Token  Token
}

// TokensOf returns every user's token k (for jobs that look after all connections, such as
// warning before a connection lapses). Rows that no longer open or have expired are skipped.
func (s *Store) TokensOf(ctx context.Context, k TokenKey) ([]HeldToken, error) {
	if err := k.validate(); err != nil {
		return nil, err
	}
	rk := k.rowKey()
	f := fmt.Sprintf("RowKey eq '%s'", odataQuote(rk))
	pager := s.users.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
	var out []HeldToken
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return out, storageErr(ctx, "tokenstore: scan tokens", err)
		}
		for _, e := range page.Entities {
			r, err := parseRow(e, "")
			if err != nil {
				return out, err
			}
			var t Token
			err = s.open(ctx, s.users, r, kindToken, &t)
			if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSignInNeeded) {
				continue
			}
			if err != nil {
				return out, err
			}
			out = append(out, HeldToken{Holder: Holder{pk: r.pk}, Token: t})
		}
	}
	return out, nil
}

// TokenAt reads token k of the user h names.
func (s *Store) TokenAt(ctx context.Context, h Holder, k TokenKey) (Token, error) {
	if h.pk == "" {
		return Token{}, fmt.Errorf("%w: empty holder", ErrInvalid)
	}
	t, _, err := s.readToken(ctx, h.pk, k.rowKey())
	return t, err
}

// ConversationRefAt returns the conversation reference of the user h names.
func (s *Store) ConversationRefAt(ctx context.Context, h Holder) (json.RawMessage, error) {
	if h.pk == "" {
		return nil, fmt.Errorf("%w: empty holder", ErrInvalid)
	}
	r, err := s.read(ctx, s.users, h.pk, convRefRK)
	if err != nil {
		return nil, err
	}
	var ref json.RawMessage
	if err := s.open(ctx, s.users, r, kindConvRef, &ref); err != nil {
		return nil, err
	}
	return ref, nil
}

const kindOnce = "once"

// ClaimOnce records, create-only, that event id happened for the user h names and reports
// whether this caller is the first: of any number of callers on any number of instances,
// exactly one gets true while the record lives (ttl). Use it so that a job run by every
// instance acts once.
func (s *Store) ClaimOnce(ctx context.Context, h Holder, id string, ttl time.Duration) (bool, error) {
	if h.pk == "" || id == "" || ttl <= 0 {
		return false, fmt.Errorf("%w: claim needs a holder, an id and a positive ttl", ErrInvalid)
	}
	rk := "once|" + hashKey("once", id)
	// An expired claim of the same id is removed first, so the event can happen again.
	if old, err := s.read(ctx, s.users, h.pk, rk); err == nil && !s.now().Before(old.exp) {
		_ = s.remove(ctx, s.users, h.pk, rk, old.etag)
	}
	r, err := s.newRow(ctx, s.users, h.pk, rk, kindOnce, nil, s.now().Add(ttl))
	if err != nil {
		return false, err
	}
	if _, err := s.insert(ctx, s.users, r); err != nil {
		if errors.Is(err, ErrConflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// ReleaseOnce removes the claim of event id for the user h names, so that a later caller can
// claim it again (the claimer could not complete the event).
func (s *Store) ReleaseOnce(ctx context.Context, h Holder, id string) error {
	if h.pk == "" || id == "" {
		return fmt.Errorf("%w: release needs a holder and an id", ErrInvalid)
	}
	err := s.remove(ctx, s.users, h.pk, "once|"+hashKey("once", id), "")
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
