// Package tokenstore keeps each user's sign-in state encrypted in Azure Table Storage:
// connector tokens, single-use sign-in states, parked requests, token-exchange
// de-duplication records and conversation references.
//
// Rows of one user live under a partition derived from the user's Entra tenant and object id
// (UserKey), which callers take only from authenticated input. Every secret part of a row is
// sealed with AES-256-GCM (package seal) under a key version from the keyring; the associated
// data binds the ciphertext to its table, partition, row and key version. Every row carries an
// expiry, also sealed; expired rows read as absent and are deleted.
//
// Writes are conditional on ETags. UpdateToken is a read-modify-write retried on conflict;
// FreshToken refreshes a rotating token at most once across all instances by taking a short
// lease on the row before calling the refresh function. A bounded in-memory L1 sits in front of
// Table Storage for reads that tolerate it; anything that decides whether to rotate reads the
// table.
//
// Errors callers act on: ErrNotFound, ErrConflict, ErrUnavailable, ErrSignInNeeded (with
// ErrTampered or keyring.ErrKeyUnavailable as the cause), ErrDuplicate.
package tokenstore
