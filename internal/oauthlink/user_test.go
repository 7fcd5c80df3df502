package oauthlink

import (
	"testing"

	"github.com/onbehalf/onbehalf/internal/botframework"
	"github.com/onbehalf/onbehalf/internal/config"
)

func TestUserOf(t *testing.T) {
	const tenant = "72f988bf-0000-4000-8000-000000000001"
	act := func(channel, from, aad, tid string) *botframework.Activity {
		a := &botframework.Activity{ChannelID: channel}
		a.From.ID, a.From.AADObjectID, a.Conversation.TenantID = from, aad, tid
		return a
	}
	real := &Service{TenantID: tenant}
	u, err := real.UserOf(act("msteams", "29:x", "AAAAAAAA-0000-4000-8000-000000000001", ""))
	if err != nil || u.TenantID != tenant || u.ObjectID != "aaaaaaaa-0000-4000-8000-000000000001" {
		t.Fatalf("authenticated user: %+v, %v", u, err)
	}
	// With a bot identity, from.id alone never identifies anyone.
	if _, err := real.UserOf(act("msteams", "29:x", "", "")); err == nil {
		t.Fatal("a user without aadObjectId was keyed")
	}

	dev := &Service{Anonymous: true}
	a1, err := dev.UserOf(act("msteams", "user-1", "", ""))
	if err != nil || a1.TenantID != DevTenantID || !config.IsGUID(a1.ObjectID) {
		t.Fatalf("anonymous user: %+v, %v", a1, err)
	}
	again, _ := dev.UserOf(act("msteams", "user-1", "forged-or-not", "any"))
	other, _ := dev.UserOf(act("msteams", "user-2", "", ""))
	otherChannel, _ := dev.UserOf(act("webchat", "user-1", "", ""))
	if again != a1 || other == a1 || otherChannel == a1 {
		t.Fatalf("anonymous keys: same %v, other user %v, other channel %v", again == a1, other == a1, otherChannel == a1)
	}
	if _, err := dev.UserOf(act("msteams", "", "", "")); err == nil {
		t.Fatal("an activity without a sender was keyed")
	}
}

func TestNormalizeCode(t *testing.T) {
	for in, want := range map[string]string{"1234 5678": "12345678", " 1234-5678 ": "12345678", "12345678": "12345678"} {
		if got := normalizeCode(in); got != want || !codeRE.MatchString(got) {
			t.Errorf("%q → %q", in, got)
		}
	}
	for _, bad := range []string{"123456", "1234567a", "123456789", "CancelledByUser"} {
		if codeRE.MatchString(normalizeCode(bad)) {
			t.Errorf("%q accepted as a link code", bad)
		}
	}
}
