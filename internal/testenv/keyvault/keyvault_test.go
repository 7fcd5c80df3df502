package keyvault_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/onbehalf/onbehalf/internal/testenv/keyvault"
)

func newClient(t *testing.T, kv *keyvault.Server) *azsecrets.Client {
	t.Helper()
	c, err := azsecrets.NewClient(kv.URL(), kv.Credential(), &azsecrets.ClientOptions{
		ClientOptions: policy.ClientOptions{Transport: kv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSDKChallengeFlowAndSecretVersions(t *testing.T) {
	kv := keyvault.Start(t, keyvault.Options{})
	c := newClient(t, kv)
	ctx := context.Background()

	set, err := c.SetSecret(ctx, "k", azsecrets.SetSecretParameters{Value: to.Ptr("one")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The SDK's first request goes out without a token, is challenged, then retried with one.
	if kv.Requests() != 2 || kv.Grants() != 1 {
		t.Fatalf("requests=%d grants=%d, want 2 and 1 (challenge then bearer)", kv.Requests(), kv.Grants())
	}
	v1 := set.ID.Version()
	v2 := kv.SetSecret("k", "two")

	got, err := c.GetSecret(ctx, "k", "", nil)
	if err != nil || *got.Value != "two" {
		t.Fatalf("current = %v, %v; want two", got.Value, err)
	}
	got, err = c.GetSecret(ctx, "k", v1, nil)
	if err != nil || *got.Value != "one" || got.ID.Version() != v1 {
		t.Fatalf("v1 = %v, %v", got.Value, err)
	}

	if _, err := c.UpdateSecretProperties(ctx, "k", v1, azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: to.Ptr(false)},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSecret(ctx, "k", v1, nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("disabled version: err = %v, want 403", err)
	}

	for i := 0; i < 30; i++ {
		kv.SetSecret("k", "more")
	}
	var ids []string
	enabled := map[string]bool{}
	pager := c.NewListSecretPropertiesVersionsPager("k", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Value {
			ids = append(ids, p.ID.Version())
			enabled[p.ID.Version()] = *p.Attributes.Enabled
		}
	}
	if len(ids) != 32 || enabled[v1] || !enabled[v2] {
		t.Fatalf("listed %d versions (want 32), v1 enabled=%v v2 enabled=%v", len(ids), enabled[v1], enabled[v2])
	}

	_, err = c.GetSecret(ctx, "k", "00000000000000000000000000000000", nil)
	if !errors.As(err, &re) || re.StatusCode != http.StatusNotFound || re.ErrorCode != "SecretNotFound" {
		t.Fatalf("unknown version: err = %v, want 404 SecretNotFound", err)
	}

	kv.DeleteSecret("k")
	if _, err = c.GetSecret(ctx, "k", "", nil); !errors.As(err, &re) || re.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted secret: err = %v, want 404", err)
	}
}

func TestRejectsMissingOrForeignToken(t *testing.T) {
	kv := keyvault.Start(t, keyvault.Options{})
	kv.SetSecret("k", "v")
	hc := kv.Client()
	for _, auth := range []string{"", "Bearer not-issued-here", "Basic Zm9vOmJhcg=="} {
		req, _ := http.NewRequest(http.MethodGet, kv.URL()+"secrets/k/?api-version=2026-04-01", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		ch := res.Header.Get("WWW-Authenticate")
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(ch, `resource="https://vault.azure.net"`) ||
			!strings.Contains(ch, kv.TenantID()) {
			t.Errorf("auth %q: status %d challenge %q", auth, res.StatusCode, ch)
		}
	}
	_, err := kv.Credential().GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	if err == nil {
		t.Error("credential issued a token for another resource")
	}
}

func TestDownDropsConnections(t *testing.T) {
	kv := keyvault.Start(t, keyvault.Options{})
	kv.SetSecret("k", "v")
	c := newClient(t, kv)
	kv.SetDown(true)
	_, err := c.GetSecret(context.Background(), "k", "", nil)
	var re *azcore.ResponseError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("while down: err = %v, want a transport error", err)
	}
	kv.SetDown(false)
	if _, err := c.GetSecret(context.Background(), "k", "", nil); err != nil {
		t.Fatalf("after outage: %v", err)
	}
}
