package botframework_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/testenv"
	"github.com/onbehalf/onbehalf/internal/testenv/channel"
)

// The serviceUrls real channels send pass; anything that is not a plain origin and path is
// refused with a reason that does not repeat the URL.
func TestCheckServiceURL(t *testing.T) {
	ok := []struct {
		url          string
		loopbackHTTP bool
		normalizedTo string
	}{
		{"https://smba.trafficmanager.net/amer/", false, "https://smba.trafficmanager.net/amer"},
		{"https://smba.trafficmanager.net/amer/0b1c2d3e-0000-4000-8000-000000000000/", false, "https://smba.trafficmanager.net/amer/0b1c2d3e-0000-4000-8000-000000000000"},
		{"https://smba.infra.gcc.teams.microsoft.com/gcc/", false, "https://smba.infra.gcc.teams.microsoft.com/gcc"},
		{"https://webchat.botframework.com/", false, "https://webchat.botframework.com"},
		{"HTTPS://SMBA.TrafficManager.NET/amer", false, "https://smba.trafficmanager.net/amer"},
		{"https://smba.example:8443/amer/", false, "https://smba.example:8443/amer"},
		{"http://localhost:56150/_connector", true, "http://localhost:56150/_connector"},
		{"http://127.0.0.1:3978/", true, "http://127.0.0.1:3978"},
		{"http://[::1]:3978/", true, "http://[::1]:3978"},
	}
	for _, tc := range ok {
		if err := botframework.CheckServiceURL(tc.url, tc.loopbackHTTP); err != nil {
			t.Errorf("%q refused: %v", tc.url, err)
		}
		if got := botframework.NormalizeServiceURL(tc.url); got != tc.normalizedTo {
			t.Errorf("NormalizeServiceURL(%q) = %q, want %q", tc.url, got, tc.normalizedTo)
		}
	}

	bad := []struct {
		url          string
		loopbackHTTP bool
		reason       string
	}{
		{"", true, "empty"},
		{"https://smba.trafficmanager.net/amer/?x=1", true, "query"},
		{"https://smba.trafficmanager.net/amer/?", true, "query"},
		{"https://smba.trafficmanager.net/amer/#x", true, "fragment"},
		{"https://smba.trafficmanager.net/amer/#", true, "fragment"},
		{"https://user:secret@smba.trafficmanager.net/amer/", true, "userinfo"},
		{"https://smba.trafficmanager.net@evil.example/amer/", true, "userinfo"},
		{"https://smba.trafficmanager.net/amer/%2e%2e/", true, "percent-encoded"},
		{"https://smba.trafficmanager.net/amer/../emea/", true, "dot segments"},
		{"https://smba.trafficmanager.net/./amer/", true, "dot segments"},
		{"https://smba.trafficmanager.net/amer/ ", true, "whitespace"},
		{" https://smba.trafficmanager.net/amer/", true, "whitespace"},
		{"https://smba.trafficmanager.net/amer/\n", true, "control"},
		{"https://smba.trafficmanager.net\\evil.example/", true, "backslash"},
		{"https://smbä.example/", true, "non-ASCII"},
		{"https:///amer/", true, "no host"},
		{"https:smba.trafficmanager.net/amer/", true, "not a hierarchical URL"},
		{"//smba.trafficmanager.net/amer/", true, "not an https URL"},
		{"/amer/", true, "no host"},
		{"https://smba.trafficmanager.net:/amer/", true, "empty port"},
		{"https://smba.trafficmanager.net:0/amer/", true, "invalid port"},
		{"https://smba_trafficmanager.net/amer/", true, "invalid host name"},
		{"https://-smba.example/", true, "invalid host name"},
		{"https://smba..example/", true, "invalid host name"},
		{"ftp://smba.trafficmanager.net/amer/", true, "not an https URL"},
		{"javascript:alert(1)", true, "not a hierarchical URL"},
		{"http://smba.trafficmanager.net/amer/", false, "not https"},
		{"http://smba.trafficmanager.net/amer/", true, "not loopback"},
		{"http://localhost:56150/_connector", false, "not https"},
		{"http://127.0.0.1.evil.example/", true, "not loopback"},
	}
	for _, tc := range bad {
		err := botframework.CheckServiceURL(tc.url, tc.loopbackHTTP)
		if !errors.Is(err, botframework.ErrMalformedActivity) {
			t.Errorf("%q accepted (loopback http %v), want refused for %s", tc.url, tc.loopbackHTTP, tc.reason)
			continue
		}
		if !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%q: error %q does not say %q", tc.url, err, tc.reason)
		}
		if tc.url != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.url)) {
			t.Errorf("%q: the error repeats the URL", tc.url)
		}
		if tc.loopbackHTTP && botframework.NormalizeServiceURL(tc.url) != "" {
			t.Errorf("%q has a comparable form; a refused URL must equal nothing", tc.url)
		}
	}
}

// A serviceUrl that is not plain is never trusted, so nothing (and no bot token) is sent there
// even if something tried to trust it.
func TestConnectorNeverTrustsAServiceURLThatIsNotPlain(t *testing.T) {
	c := &botframework.Connector{}
	for _, u := range []string{"https://smba.example/amer/?x=1", "https://u:p@smba.example/amer/", "https://smba.example/amer/#f"} {
		c.Trust(u)
		if c.Trusted(u) {
			t.Errorf("%q became trusted", u)
		}
	}
	c.Trust("https://smba.example/amer/")
	for _, u := range []string{"https://smba.example/amer/?x=1", "https://smba.example/amer/#f", "https://u:p@smba.example/amer/"} {
		if c.Trusted(u) {
			t.Errorf("%q is trusted because its plain form is", u)
		}
	}
	if !c.Trusted("https://SMBA.example/amer") {
		t.Error("the trusted URL itself, up to case and trailing slash, is not trusted")
	}
}

// A token whose serviceurl claim is not a plain URL matches no activity, not even one carrying
// the same string: the comparison does not normalise the difference away, and two URLs
// without a comparable form are not equal.
func TestAuthenticatorRefusesAServiceURLClaimThatIsNotPlain(t *testing.T) {
	ch := channel.New()
	defer ch.Close()
	keys := &botframework.KeySet{MetadataURL: ch.MetadataURL, HTTPClient: testenv.SharedCA().Client()}
	auth := &botframework.Authenticator{AppID: appID, Channel: keys}
	ctx := context.Background()
	for _, u := range []string{ch.ServiceURL + "?x=1", ch.ServiceURL + "#f", strings.Replace(ch.ServiceURL, "https://", "https://u:p@", 1)} {
		tok := "Bearer " + ch.Mint(channel.TokenOptions{Audience: appID, ServiceURL: u})
		for _, actURL := range []string{u, ch.ServiceURL} {
			_, err := auth.Authenticate(ctx, tok, &botframework.Activity{ChannelID: "msteams", ServiceURL: actURL})
			if !errors.Is(err, botframework.ErrUnauthorized) {
				t.Errorf("claim %q, activity %q: %v, want refused", u, actURL, err)
			}
		}
	}
	// The plain claim still matches its activity.
	tok := "Bearer " + ch.Mint(channel.TokenOptions{Audience: appID})
	if _, err := auth.Authenticate(ctx, tok, &botframework.Activity{ChannelID: "msteams", ServiceURL: ch.ServiceURL}); err != nil {
		t.Fatal(err)
	}
}
