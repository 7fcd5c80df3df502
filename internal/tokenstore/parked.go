package tokenstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Parked is a request held while its user signs in. Payload (the user's message and whatever
// the bot needs to resume) is sealed.
type Parked struct {
	ID        string    `json:"id"`
	Connector string    `json:"c"`
	Payload   []byte    `json:"p"`
	Created   time.Time `json:"t"`
}

const kindParked = "parked"

func parkedPrefix(connector string) string { return "park|" + hashKey("parked", connector)[:32] + "|" }

// Park stores p for at most ttl and returns its id (p.ID, or a new random one).
func (s *Store) Park(ctx context.Context, u UserKey, p Parked, ttl time.Duration) (string, error) {
	if err := u.Validate(); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", fmt.Errorf("%w: park needs a positive ttl", ErrInvalid)
	}
	if p.ID == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		p.ID = base64.RawURLEncoding.EncodeToString(b)
	}
	if p.Created.IsZero() {
		p.Created = s.now()
	}
	rk := parkedPrefix(p.Connector) + hashKey("parked-id", p.ID)
	r, err := s.newRow(ctx, s.users, u.Partition(), rk, kindParked, p, s.now().Add(ttl))
	if err != nil {
		return "", err
	}
	if _, err := s.insert(ctx, s.users, r); err != nil {
		return "", err
	}
	return p.ID, nil
}

// TakeParked removes and returns the user's parked requests for connector, oldest first. Each
// is taken once even across instances (delete conditioned on ETag); expired ones are dropped.
// Rows that can no longer be opened are deleted and skipped.
func (s *Store) TakeParked(ctx context.Context, u UserKey, connector string) ([]Parked, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	pk := u.Partition()
	prefix := parkedPrefix(connector)
	// '}' is the character after '|': the range is every key starting with prefix.
	rows, err := s.list(ctx, s.users, pk, prefix, prefix[:len(prefix)-1]+"}")
	if err != nil {
		return nil, err
	}
	var out []Parked
	for _, r := range rows {
		var p Parked
		oerr := s.open(ctx, s.users, r, kindParked, &p)
		if errors.Is(oerr, ErrNotFound) {
			continue
		}
		if errors.Is(oerr, ErrUnavailable) {
			return out, oerr
		}
		err := s.remove(ctx, s.users, pk, r.rk, r.etag)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
			continue // another caller took it
		}
		if err != nil {
			return out, err
		}
		if oerr == nil {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
