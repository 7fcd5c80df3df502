// Package azuretoken is a test credential (never imported by production code) that hands out
// bearer tokens the way Entra does for the Azure SDK: one token per resource scope, so a
// stand-in that accepts only the token for its own scope refuses a client that asked for the
// wrong audience.
package azuretoken

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Credential maps a scope ("https://host/.default") to the token issued for it.
type Credential struct {
	mu     sync.Mutex
	tokens map[string]string
	asked  []string
}

var _ azcore.TokenCredential = (*Credential)(nil)

// New returns a credential that issues tokens[scope] for each known scope and a useless
// token for any other.
func New(tokens map[string]string) *Credential {
	c := &Credential{tokens: map[string]string{}}
	for k, v := range tokens {
		c.tokens[k] = v
		logcheck.Issue("access token for "+k, v)
	}
	return c
}

// GetToken implements azcore.TokenCredential; like azidentity, it takes exactly one scope.
func (c *Credential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(o.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("azuretoken: want exactly one scope, got %v", o.Scopes)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, o.Scopes[0])
	tok, ok := c.tokens[o.Scopes[0]]
	if !ok {
		tok = "not-for-this-audience"
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Scopes lists the scopes asked for, in order.
func (c *Credential) Scopes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.asked...)
}
