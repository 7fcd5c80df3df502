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
}{
	{regexp.MustCompile(`(?i)client_?secret`), "client secret"},
	{regexp.MustCompile(`passwordCredentials|addPassword|az ad app credential reset`), "password credential"},
	{regexp.MustCompile(`listKeys\s*\(|listConnectionStrings\s*\(|primaryKey|secondaryKey`), "storage or service key read at deployment"},
	{regexp.MustCompile(`(?i)(AccountKey|SharedAccessKey|SharedAccessSignature)\s*=`), "connection string with a key"},
	{regexp.MustCompile(`(?i)InstrumentationKey\s*=`), "connection string with an instrumentation key (use the component's ConnectionString output)"},
	{regexp.MustCompile(`TOKENSTORE_DEV_KEY|TOKENSTORE_CONNECTION_STRING|BOT_ALLOW_ANONYMOUS`), "dev-only setting"},
	{regexp.MustCompile(`@secure\(\)`), "secure parameter: a secret would be a deployment input"},
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`), "private key"},
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
				if p.re.MatchString(line) {
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
