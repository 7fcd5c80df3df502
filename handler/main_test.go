package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// Starting with missing or malformed settings prints one message naming each, and exits non-zero.
func TestStartRefusesBadSettings(t *testing.T) {
	env := map[string]string{
		"WEBSITE_SITE_NAME":            "func-onbehalf",
		"BOT_APP_ID":                   "not-a-guid",
		"FUNCTIONS_CUSTOMHANDLER_PORT": "http",
		"BOT_CLIENT_SECRET":            "local-secret-value",
	}
	logcheck.Issue("client secret setting", env["BOT_CLIENT_SECRET"])
	var out, errb bytes.Buffer
	logcheck.Watch(t, func() string { return out.String() + errb.String() })
	code := run([]string{"serve"}, func(k string) string { return env[k] }, &out, &errb)
	if code == 0 {
		t.Fatal("started with invalid settings")
	}
	msg := errb.String()
	if strings.Count(msg, "cannot start") != 1 {
		t.Fatalf("want one message, got:\n%s", msg)
	}
	for _, name := range []string{"BOT_APP_ID", "FUNCTIONS_CUSTOMHANDLER_PORT", "BOT_CLIENT_SECRET", "TOKENSTORE_TABLE_ENDPOINT", "TOKENSTORE_KEYVAULT_URL"} {
		if !strings.Contains(msg, name) {
			t.Errorf("message does not name %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, "local-secret-value") {
		t.Fatal("the message prints a secret")
	}
	if out.Len() != 0 {
		t.Fatalf("nothing should be served or logged: %s", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, func(string) string { return "" }, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
}
