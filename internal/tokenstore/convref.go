package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
)

const (
	kindConvRef = "convref"
	convRefRK   = "convref"
)

// PutConversationRef stores the user's conversation reference (opaque JSON from the bot, for
// proactive messages), sealed, for ConversationTTL after this write.
func (s *Store) PutConversationRef(ctx context.Context, u UserKey, ref json.RawMessage) error {
	if err := u.Validate(); err != nil {
		return err
	}
	if !json.Valid(ref) {
		return errors.Join(ErrInvalid, errors.New("conversation reference is not JSON"))
	}
	pk := u.Partition()
	r, err := s.newRow(ctx, s.users, pk, convRefRK, kindConvRef, ref, s.now().Add(s.convTTL))
	if err != nil {
		return err
	}
	if err := s.upsert(ctx, s.users, r); err != nil {
		return err
	}
	s.l1.put(l1Key(s.users, pk, convRefRK), ref, r.exp)
	return nil
}

// ConversationRef returns the user's conversation reference (L1 first).
func (s *Store) ConversationRef(ctx context.Context, u UserKey) (json.RawMessage, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	pk := u.Partition()
	key := l1Key(s.users, pk, convRefRK)
	if b, ok := s.l1.get(key); ok {
		return b, nil
	}
	r, err := s.read(ctx, s.users, pk, convRefRK)
	if err != nil {
		return nil, err
	}
	var ref json.RawMessage
	if err := s.open(ctx, s.users, r, kindConvRef, &ref); err != nil {
		return nil, err
	}
	s.l1.put(key, ref, r.exp)
	return ref, nil
}
