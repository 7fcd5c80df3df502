package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// TokenCredential is what the doctor needs from azidentity: a bearer token for a scope.
type TokenCredential interface {
	GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error)
}

var _ TokenCredential = (azcore.TokenCredential)(nil)

// APIError is a non-2xx answer from Graph or Resource Manager.
type APIError struct {
	Method string
	// Path is the request path without its query string.
	Path    string
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrUnauthorized is returned (wrapped) when Graph or ARM refuses the developer's credential.
var ErrUnauthorized = errors.New("doctor: the Azure CLI login was refused (run `az login`, with a role that can read the resources)")

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// restClient calls one JSON REST API (Graph or ARM) with bearer tokens for base + "/.default".
type restClient struct {
	base string
	cred TokenCredential
	hc   *http.Client
}

func (c *restClient) do(ctx context.Context, method, path string, body, out any) error {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{strings.TrimRight(c.base, "/") + "/.default"}})
	if err != nil {
		return fmt.Errorf("doctor: get a token for %s: %w", c.base, err)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("doctor: encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("doctor: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("doctor: %s %s: %w", method, pathOnly(path), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("doctor: %s %s: read answer: %w", method, pathOnly(path), err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: method, Path: pathOnly(path), Status: resp.StatusCode}
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			ae.Code, ae.Message = e.Error.Code, e.Error.Message
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return fmt.Errorf("%w: %w", ErrUnauthorized, ae)
		}
		return ae
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("doctor: %s %s: decode answer: %w", method, pathOnly(path), err)
		}
	}
	return nil
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
