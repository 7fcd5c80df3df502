package keyvault_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/google/uuid"
	"golang.org/x/net/http/httpproxy"

	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/entra"
	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
	"github.com/onbehalf/onbehalf/internal/testenv/tunnel"
)

const tenant = "72f988bf-0000-4000-8000-0000000000aa"

type entraVault struct {
	e         *entra.Server
	kv        *keyvault.Server
	principal string
	proxy     *tunnel.Proxy
	hc        *http.Client // another process's view: HTTPS_PROXY, loopback direct, a trust bundle
}

func startEntraVault(t *testing.T) *entraVault {
	t.Helper()
	e := entra.New(tenant)
	t.Cleanup(e.Close)
	f := &entraVault{e: e, principal: uuid.NewString()}
	f.kv = keyvault.Start(t, keyvault.Options{TenantID: tenant, Entra: &keyvault.EntraTrust{
		Issuer: e.Issuer(), Keys: e.PublicKeys, Principals: []string{f.principal},
	}})
	p, err := tunnel.Start(map[string]string{f.kv.Host() + ":443": f.kv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	f.proxy = p
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(testenv.SharedCA().PEM())
	pool.AppendCertsFromPEM(f.kv.CertificatePEM())
	proxy := (&httpproxy.Config{HTTPSProxy: p.URL}).ProxyFunc()
	f.hc = &http.Client{Transport: &http.Transport{
		Proxy:           func(r *http.Request) (*url.URL, error) { return proxy(r.URL) },
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	return f
}

// A managed identity's token from the Entra stand-in, sent through the CONNECT tunnel under
// the vault's real host name, is accepted; the tunnel refuses any other host.
func TestManagedIdentityTokenThroughTunnel(t *testing.T) {
	f := startEntraVault(t)
	mi := entra.ManagedIdentity{ClientID: uuid.NewString(), PrincipalID: f.principal}
	f.e.AddManagedIdentity(mi)
	t.Setenv("IDENTITY_ENDPOINT", f.e.IdentityEndpoint)
	t.Setenv("IDENTITY_HEADER", f.e.IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(mi.ClientID), ClientOptions: azcore.ClientOptions{Transport: f.hc},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := azsecrets.NewClient(f.kv.URL(), cred, &azsecrets.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: f.hc, Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.kv.SetSecret("k", "value-of-the-secret-k")
	got, err := c.GetSecret(context.Background(), "k", "", nil)
	if err != nil || got.Value == nil || *got.Value != "value-of-the-secret-k" {
		t.Fatalf("GetSecret = %v, %v", got.Value, err)
	}
	if f.e.Count("managed_identity") != 1 || f.proxy.Tunnels() < 1 {
		t.Fatalf("managed-identity tokens %d, tunnels %d", f.e.Count("managed_identity"), f.proxy.Tunnels())
	}

	res, err := f.hc.Get("https://example.com/")
	if err == nil {
		res.Body.Close()
		t.Fatal("the tunnel reached a host it has no route for")
	}
	if r := f.proxy.Refused(); len(r) != 1 || r[0] != "example.com:443" {
		t.Fatalf("refused = %v", r)
	}
}

// Each rule on an Entra token, broken once, gets the request refused.
func TestEntraTokenRules(t *testing.T) {
	f := startEntraVault(t)
	other := entra.New(tenant) // same tenant id and issuer path, different signing key
	t.Cleanup(other.Close)
	f.kv.SetSecret("k", "value-of-the-secret-k")
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{
			"iss": f.e.Issuer(), "aud": keyvault.Resource, "tid": tenant, "oid": f.principal, "sub": f.principal,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
	}
	with := func(k string, v any) string {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return f.e.Sign(c)
	}
	otherClaims := good()
	otherClaims["iss"] = other.Issuer()
	cases := []struct {
		name   string
		token  string
		status int
	}{
		{"valid", f.e.Sign(good()), http.StatusOK},
		{"audience with a trailing slash", with("aud", keyvault.Resource+"/"), http.StatusUnauthorized},
		{"audience of another resource", with("aud", "https://management.azure.com/"), http.StatusUnauthorized},
		{"two audiences", with("aud", []string{keyvault.Resource, "https://storage.azure.com"}), http.StatusUnauthorized},
		{"other tenant", with("tid", uuid.NewString()), http.StatusUnauthorized},
		{"other issuer", with("iss", "https://sts.windows.net/"+uuid.NewString()+"/"), http.StatusUnauthorized},
		{"expired", with("exp", now.Add(-time.Second).Unix()), http.StatusUnauthorized},
		{"no expiry", with("exp", nil), http.StatusUnauthorized},
		{"not yet valid", with("nbf", now.Add(time.Minute).Unix()), http.StatusUnauthorized},
		{"signed by another key", other.Sign(good()), http.StatusUnauthorized},
		{"other key, claimed issuer", other.Sign(otherClaims), http.StatusUnauthorized},
		{"unsigned", strings.Join(strings.Split(f.e.Sign(good()), ".")[:2], ".") + ".", http.StatusUnauthorized},
		{"principal without a role", with("oid", uuid.NewString()), http.StatusForbidden},
		{"no object id", with("oid", nil), http.StatusForbidden},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(http.MethodGet, f.kv.URL()+"secrets/k/?api-version=7.6", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		res, err := f.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, res.StatusCode, tc.status)
		}
		if tc.status == http.StatusUnauthorized && !strings.Contains(res.Header.Get("WWW-Authenticate"), tenant) {
			t.Errorf("%s: no challenge", tc.name)
		}
	}
	// The stand-in's own Credential still works beside Entra's tokens.
	c := newClient(t, f.kv)
	if _, err := c.GetSecret(context.Background(), "k", "", nil); err != nil {
		t.Fatalf("in-process credential: %v", err)
	}
}
