package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

var (
	// ErrNotFound reports a row that does not exist, has expired, or was already consumed.
	ErrNotFound = errors.New("tokenstore: not found")
	// ErrConflict reports a write that lost a race: the row exists (create-only insert) or
	// changed since it was read (ETag mismatch).
	ErrConflict = errors.New("tokenstore: conflict")
	// ErrUnavailable reports that Table Storage (or Key Vault, with no cached key) could not be
	// reached: connection refused, time-outs, throttling or 5xx after the SDK's retries.
	// Nothing was changed that the caller can rely on; try again later.
	ErrUnavailable = errors.New("tokenstore: storage unavailable")
	// ErrSignInNeeded reports a row that exists but can no longer be used: its key version is
	// gone, or it fails to open. The user must sign in again; the caller should treat it like
	// ErrNotFound, and may tell the user why.
	ErrSignInNeeded = errors.New("tokenstore: sign-in needed")
	// ErrTampered is the cause (beside ErrSignInNeeded) when a sealed value does not open:
	// altered, truncated, copied from another row or user, or labelled with the wrong key version.
	ErrTampered = errors.New("tokenstore: sealed value does not open")
	// ErrDuplicate reports that another caller already claimed a token-exchange id (it also
	// matches ErrConflict). Read the first exchange's outcome with AwaitExchange.
	ErrDuplicate = errors.New("tokenstore: duplicate token exchange")
	// ErrInvalid reports bad input; nothing was changed.
	ErrInvalid = errors.New("tokenstore: invalid input")
)

// storageErr maps an aztables error to the package's sentinels, keeping the cause.
func storageErr(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s: %w: %w", op, ErrNotFound, err)
		case re.StatusCode == http.StatusConflict, re.StatusCode == http.StatusPreconditionFailed:
			return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
		case re.StatusCode >= 500, re.StatusCode == http.StatusRequestTimeout, re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	// The caller gave up: report that, not an outage.
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	// No response at all: connection refused or reset, or every try timed out.
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}
