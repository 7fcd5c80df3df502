package deploycheck

import "testing"

// The name rules behave as the Bicep linter's: a secret-like name fails unless it only refers
// to a secret, is @secure(), or is not a string or object.
func TestLinterSecretNameRules(t *testing.T) {
	cases := []struct {
		decl string
		want Invariant // "" = allowed
	}{
		{"param secretsUserPrincipalId string", SecretParamNames},
		{"param adminPwd string = ''", SecretParamNames},
		{"param storageAccountKey string", SecretParamNames},
		{"param dbPassword object", SecretParamNames},
		{"param clientSecret string", SecretParamNames},
		{"param atlassianClientSecretName string = 'atlassian-client-secret'", ""},
		{"param tokenSecretVersion string", ""},
		{"param vaultSecretUri string", ""},
		{"param keyVaultSecretUrl string", ""},
		{"param secretPermissions string", ""},
		{"param readerPrincipalId string", ""},
		{"@secure()\nparam clientSecret string", ""},
		{"@description('x')\n@secure()\nparam adminPassword string", ""},
		{"param grantSecretAccess bool = true", ""},
		{"param secretCount int = 1", ""},
		{"param secretNames string[] = []", ""},
		{"output adminPassword string = 'x'", SecretOutputNames},
		{"output secretVersion string = 'x'", ""},
		{"@secure()\noutput adminPassword string = 'x'", ""},
	}
	for _, tc := range cases {
		t.Run(tc.decl, func(t *testing.T) {
			f, err := ParseBicep("m.bicep", tc.decl+"\n")
			if err != nil {
				t.Fatal(err)
			}
			c := &checker{in: NewInfra(map[string]*File{"m.bicep": f})}
			c.checkLinterSecretNames()
			switch {
			case tc.want == "" && len(c.out) > 0:
				t.Fatalf("flagged: %v", c.out)
			case tc.want != "" && !c.out.Has(tc.want):
				t.Fatalf("not flagged as %s: %v", tc.want, c.out)
			}
		})
	}
}
