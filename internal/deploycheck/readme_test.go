package deploycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's deployment section tells an operator what the template cannot do for them.
// Each entry is a fact from the public sources named beside it; removing one from the README
// fails this test.
func TestReadmeDocumentsDeploymentLimits(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## Deploy to Azure")
	end := strings.Index(text, "## `onbehalf doctor`")
	if start < 0 || end < start {
		t.Fatal("README has no deployment section before the doctor section")
	}
	deploy := text[start:end]
	for _, c := range []struct{ why, want string }{
		// learn.microsoft.com graph/templates/limitations
		{"Graph Bicep is public-cloud only", "Microsoft Graph Bicep deploys to the public cloud only"},
		{"what a sovereign-cloud operator does instead", "az ad app create --display-name onbehalf --sign-in-audience AzureADMyOrg"},
		// Graph Bicep types: uniqueName "Immutable."; known-issues-graph-bicep
		{"uniqueName is immutable", "immutable"},
		{"a deleted app keeps its uniqueName taken", "the\n`uniqueName` stays taken"},
		{"how to restore a deleted app", "/directory/deletedItems/<object-id>/restore"},
		// Azure/bicep issues 14325, 17093; MicrosoftDocs/azure-docs issue 119179
		{"the deployment script needs shared-key storage", "reaches that storage account with its **shared key**"},
		{"what to do when policy denies shared keys", "policy exemption"},
		// infra/main.bicep: the first-provision flag
		{"the first-provision flag and how to reset it", "azd env set BOT_ENTRA_SCOPE_PROVISIONED false"},
	} {
		if !strings.Contains(deploy, c.want) {
			t.Errorf("README deployment section lacks %s (%q)", c.why, c.want)
		}
	}
}
