package deploycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeployableConfigurationHoldsNoSecrets(t *testing.T) {
	findings, err := ScanSecrets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Errorf("%s", f)
	}
}

// Each kind of secret, written into a copy of the configuration, is found.
func TestScanSecretsFindsEachKind(t *testing.T) {
	cases := []struct {
		name, file, line, reason string
	}{
		{"client secret in bicep", "infra/modules/bot.bicep", "      clientSecret: 'x'", "client secret"},
		{"password credential", "infra/modules/entra-app.bicep", "  passwordCredentials: []", "password credential"},
		{"storage key read", "infra/main.bicep", "var k = st.listKeys().keys[0].value", "storage or service key"},
		{"connection string with key", "infra/main.bicep", "var cs = 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${k}'", "connection string with a key"},
		{"secure parameter", "infra/main.bicep", "@secure()\nparam botPassword string", "secure parameter"},
		{"dev key in azure.yaml", "azure.yaml", "# TOKENSTORE_DEV_KEY: AAAA", "dev-only setting"},
		{"instrumentation key in manifest", "appPackage/manifest.template.json", `"x": "InstrumentationKey=0000;IngestionEndpoint=https://x"`, "instrumentation key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, "infra", "appPackage")
			yaml, err := os.ReadFile(filepath.Join(repoRoot, "azure.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(root, "azure.yaml"), yaml, 0o644)
			p := filepath.Join(root, c.file)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(p, append(b, []byte("\n"+c.line+"\n")...), 0o644)
			findings, err := ScanSecrets(root)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range findings {
				if f.File == c.file && strings.Contains(f.Reason, c.reason) {
					return
				}
			}
			t.Fatalf("not found: %v", findings)
		})
	}
}

// Naming the Key Vault secret that holds a client secret is not holding one.
func TestSecretNamesAreNotSecrets(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"infra", "appPackage"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lines := "param atlassianClientSecretName string = 'atlassian-client-secret'\n  ATLASSIAN_CLIENT_SECRET_NAME: atlassianClientSecretName\n"
	if err := os.WriteFile(filepath.Join(root, "infra", "main.bicep"), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "azure.yaml"), []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := ScanSecrets(root)
	if err != nil || len(f) != 0 {
		t.Fatalf("secret names flagged: %v %v", f, err)
	}
	if err := os.WriteFile(filepath.Join(root, "infra", "main.bicep"), []byte(lines+"  ATLASSIAN_CLIENT_SECRET: 'abc'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, _ := ScanSecrets(root); len(f) == 0 {
		t.Fatal("a client secret next to a secret name was not found")
	}
}
