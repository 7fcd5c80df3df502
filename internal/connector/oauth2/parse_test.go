package oauth2

import (
	"strings"
	"testing"
)

func TestParseConnectors(t *testing.T) {
	cs, err := ParseConnectors("["+githubExample+"]", "atlassian")
	if err != nil || len(cs) != 1 || cs[0].Name != "github" || cs[0].AuthParams["allow_signup"] != "false" {
		t.Fatalf("%+v %v", cs, err)
	}
	if cs, err := ParseConnectors("  "); err != nil || cs != nil {
		t.Errorf("empty: %v %v", cs, err)
	}
	for _, tc := range []struct{ text, want string }{
		{`{"name":"x"}`, "not a JSON array"},
		{`[{"name":"github","typo":1}]`, "unknown field"},
		{"[" + githubExample + "," + githubExample + "]", `"github" is already used`},
		{"[" + strings.Replace(githubExample, `"github"`, `"atlassian"`, 1) + "]", `"atlassian" is already used`},
		{`[{"name":"a","authURL":"https://a/x"},{"name":"b"}]`, "entry 1"},
	} {
		_, err := ParseConnectors(tc.text, "atlassian")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.text, err, tc.want)
		}
	}
}
