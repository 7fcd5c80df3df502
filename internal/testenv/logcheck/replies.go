package logcheck

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// userFacing are the kinds of issued value a reply exists to carry to its addressee: the
// sign-in link of an OAuthCard and the OAuth authorization URL (with its state) of a sign-in
// button. Every other issued value, and every secret shape, is a leak in a reply.
var userFacing = map[string]bool{"sign-in link": true, "OAuth sign-in state": true}

// FindInReplies returns the secrets in the replies the bot sent (each an activity as JSON or
// its text): issued values other than sign-in links, and secret shapes (Shapes).
func FindInReplies(replies ...string) []Secret {
	var secrets []Secret
	for _, s := range Issued() {
		if !userFacing[s.Kind] {
			secrets = append(secrets, s)
		}
	}
	return findWith(newIndex(secrets), strings.Join(replies, "\n"))
}

// WatchReplies makes t fail at its end when the replies the function then returns (activities
// as the channel received them) hold a secret (FindInReplies). The function is called once,
// when t's cleanups run.
func WatchReplies(t testing.TB, replies func() []map[string]any) {
	t.Helper()
	t.Cleanup(func() {
		var texts []string
		for _, a := range replies() {
			b, err := json.Marshal(a)
			if err != nil {
				t.Errorf("logcheck: reply not encodable: %v", err)
				continue
			}
			texts = append(texts, string(b))
		}
		for _, f := range FindInReplies(texts...) {
			t.Errorf("logcheck: found in a reply to a user: %s %s", f.Kind, redact(f.Value))
		}
	})
}

// Describe is a finding as a test reports it: its kind and enough of the value to find it in
// the test's own records, never enough to use it.
func Describe(s Secret) string { return fmt.Sprintf("%s %s", s.Kind, redact(s.Value)) }
