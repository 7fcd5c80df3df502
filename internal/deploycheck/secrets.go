package deploycheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Finding is one place where deployable configuration holds, or asks for, a secret.
type Finding struct {
	File   string
	Line   int
	Reason string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Reason) }

// secretPatterns are what must never appear in infra/, azure.yaml or appPackage/: client
// secrets and password credentials, storage account keys and key-bearing connection strings,
// dev-only secret settings, and secure parameters (a secret as a deployment input).
var secretPatterns = []struct {
	re     *regexp.Regexp
	reason string
	// except, when set, excuses a line whose every match of re is part of a match of except.
	except *regexp.Regexp
}{
	// A client secret itself. Naming the Key Vault secret that holds one ("…ClientSecretName",
	// "…CLIENT_SECRET_NAME") is how the deployment refers to it without holding it.
	{regexp.MustCompile(`(?i)client_?secret`), "client secret", regexp.MustCompile(`(?i)client_?secret_?name`)},
	{regexp.MustCompile(`passwordCredentials|addPassword|az ad app credential reset`), "password credential", nil},
	{regexp.MustCompile(`listKeys\s*\(|listConnectionStrings\s*\(|primaryKey|secondaryKey`), "storage or service key read at deployment", nil},
	{regexp.MustCompile(`(?i)(AccountKey|SharedAccessKey|SharedAccessSignature)\s*=`), "connection string with a key", nil},
	{regexp.MustCompile(`(?i)InstrumentationKey\s*=`), "connection string with an instrumentation key (use the component's ConnectionString output)", nil},
	{regexp.MustCompile(`TOKENSTORE_DEV_KEY|TOKENSTORE_CONNECTION_STRING|BOT_ALLOW_ANONYMOUS|OAUTH2_DEV_SECRETS|ATLASSIAN_CLIENT_SECRET\b`), "dev-only setting", nil},
	{regexp.MustCompile(`@secure\(\)`), "secure parameter: a secret would be a deployment input", nil},
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`), "private key", nil},
}

// ScanSecrets scans the deployable configuration under root — infra/, azure.yaml and
// appPackage/ (text files) — and returns every line that holds or asks for a secret.
func ScanSecrets(root string) ([]Finding, error) {
	var findings []Finding
	scan := func(path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("scan secrets: %w", err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary (icons)
		}
		rel, _ := filepath.Rel(root, path)
		for i, line := range strings.Split(string(b), "\n") {
			for _, p := range secretPatterns {
				checked := line
				if p.except != nil {
					checked = p.except.ReplaceAllString(line, "")
				}
				if p.re.MatchString(checked) {
					findings = append(findings, Finding{File: filepath.ToSlash(rel), Line: i + 1, Reason: p.reason})
				}
			}
		}
		return nil
	}
	for _, d := range []string{"infra", "appPackage"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				if e.Name() == "build" {
					return filepath.SkipDir // generated packages
				}
				return nil
			}
			return scan(path)
		})
		if err != nil {
			return nil, fmt.Errorf("scan secrets: %w", err)
		}
	}
	if err := scan(filepath.Join(root, "azure.yaml")); err != nil {
		return nil, err
	}
	return findings, nil
}
