package atlassian

import (
	"errors"
	"fmt"
	"github.com/onbehalf/onbehalf/internal/policy"
	"time"

	"github.com/onbehalf/onbehalf/internal/connector/oauth2"
)

// ErrNotPermitted matches every *NotPermittedError.
var ErrNotPermitted = errors.New("does not exist or not permitted")

// ErrBadInput means the user's request cannot be sent as is (malformed issue key, page
// reference, empty search). Its message is safe to show.
var ErrBadInput = errors.New("bad input")

// NotPermittedError is Atlassian's 404/403 for an item: it does not exist or the user may not
// see it. Atlassian does not say which, and neither do we.
type NotPermittedError struct {
	// Kind is "issue" or "page".
	Kind string
	// Ref is what the user asked for (issue key, page id).
	Ref string
}

func (e *NotPermittedError) Error() string {
	return fmt.Sprintf("%s %s does not exist or is not visible to the user", e.Kind, e.Ref)
}

// Is makes errors.Is(err, ErrNotPermitted) true.
func (e *NotPermittedError) Is(target error) bool { return target == ErrNotPermitted }

// QueryError is a 400 from Jira or Confluence: the query was refused. Messages are
// Atlassian's explanations; they may quote the query, and so the user's words, which is why
// Error (what reaches logs) only counts them.
type QueryError struct {
	Messages []string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query refused (%d messages from Atlassian)", len(e.Messages))
}

type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrBadInput }

func badInput(format string, a ...any) error { return &inputError{msg: fmt.Sprintf(format, a...)} }

// UserMessage turns an error from this package (or the oauth2 connector underneath) into a
// sentence for the user that says what to do. It never reveals more than Atlassian did.
func UserMessage(err error) string {
	var np *NotPermittedError
	var in *inputError
	var th *oauth2.ThrottledError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &np):
		if np.Kind == "issue" {
			return fmt.Sprintf("Jira issue %s does not exist, or you do not have permission to see it.", np.Ref)
		}
		return fmt.Sprintf("Confluence page %s does not exist, or you do not have permission to see it.", np.Ref)
	case errors.As(err, &in):
		return in.msg
	case errors.Is(err, policy.ErrWriteDenied):
		return "Your organisation's policy lets me only read Atlassian for you, so I did not send this. Your administrator sets it (CONNECTOR_POLICY)."
	case errors.Is(err, policy.ErrUnconfirmed):
		return "Your organisation's policy lets me write to Atlassian only after you confirm exactly what I send, so I did not send this."
	case errors.Is(err, policy.ErrRefused):
		return "Your organisation's policy does not let me use Atlassian for this, so I did not send it."
	case errors.Is(err, oauth2.ErrNotConnected):
		return "You have not connected your Atlassian account yet. Say \"connect jira\" to connect it."
	case errors.Is(err, oauth2.ErrReconnect):
		return "Your Atlassian connection has expired or was revoked. Say \"connect jira\" to connect again."
	case errors.Is(err, oauth2.ErrRefusedAfterRefresh):
		return "Atlassian refused this request although your sign-in works: your connection does not include this product or site. " +
			"Say \"connect jira\" to grant access again if you need it."
	case errors.As(err, &th):
		if th.RetryAfter > 0 {
			return fmt.Sprintf("Atlassian is limiting requests right now. Try again in %s.", th.RetryAfter.Round(time.Second))
		}
		return "Atlassian is limiting requests right now. Try again in a minute."
	case errors.Is(err, oauth2.ErrUnavailable):
		return "Atlassian is not answering right now. Try again in a few minutes."
	case errors.Is(err, oauth2.ErrMisconfigured):
		return "The Atlassian connection is not set up correctly. Please tell your administrator."
	default:
		var qe *QueryError
		if errors.As(err, &qe) {
			return "Atlassian could not run that search. Try different words."
		}
		return "Something went wrong talking to Atlassian. Try again later."
	}
}
