package doctor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

const usage = `usage:
  onbehalf doctor --app app.json --bot bot.json --connection connection.json --manifest manifest.json
                  [--settings settings.json] [--federated-credentials fic.json] [--identity identity.json]
                  [--role-assignments roles.json] [--grants grants.json] [--json] [--fix]
  onbehalf doctor --subscription ID --resource-group RG --bot-name BOT [--app-id ID] [--function-app NAME]
                  [--manifest manifest.json] [--graph-url URL] [--arm-url URL] [--json] [--fix [--yes]]

Offline mode reads the JSON az prints (az ad app show, az bot show, az bot authsetting show,
az functionapp config appsettings list or local.settings.json, ...); absent files skip their checks.
Live mode reads Microsoft Graph and Azure Resource Manager with your Azure CLI login (az login)
and probes the messaging endpoint. --subscription and --resource-group default to
AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP (as azd sets them).
Exit status: 0 nothing failed, 1 something failed, 2 bad usage or unreadable input.
`

// Main is the `onbehalf doctor` sub-command: it parses args (without the sub-command name),
// runs the diagnosis and returns the exit status. env supplies defaults (os.Getenv in main).
// Live mode authenticates with the Azure CLI login.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	o, err := parseArgs(args, stdout, stderr, env)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "doctor: %v\n\n%s", err, usage)
		return ExitUsage
	}
	o.Stdin = os.Stdin
	if o.Live != nil && o.Live.Credential == nil {
		cred, err := azidentity.NewAzureCLICredential(nil)
		if err != nil {
			fmt.Fprintf(stderr, "doctor: Azure CLI credential: %v (install the Azure CLI and run az login)\n", err)
			return ExitUsage
		}
		o.Live.Credential = cred
	}
	return Run(ctx, o)
}

// parseArgs turns the command line into Options (no credential yet).
func parseArgs(args []string, stdout, stderr io.Writer, env func(string) string) (Options, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		o                        = Options{Stdout: stdout, Stderr: stderr}
		f                        OfflineFiles
		sub, rg, bot, appID, fa  string
		graphURL, armURL, scopes string
		help                     bool
	)
	fs.StringVar(&f.App, "app", "", "")
	fs.StringVar(&f.Bot, "bot", "", "")
	fs.StringVar(&f.Connection, "connection", "", "")
	fs.StringVar(&f.Manifest, "manifest", "", "")
	fs.StringVar(&f.Settings, "settings", "", "")
	fs.StringVar(&f.FederatedCredentials, "federated-credentials", "", "")
	fs.StringVar(&f.Identity, "identity", "", "")
	fs.StringVar(&f.RoleAssignments, "role-assignments", "", "")
	fs.StringVar(&f.Grants, "grants", "", "")
	fs.BoolVar(&o.JSON, "json", false, "")
	fs.BoolVar(&o.Fix, "fix", false, "")
	fs.BoolVar(&o.Yes, "yes", false, "")
	fs.StringVar(&sub, "subscription", "", "")
	fs.StringVar(&rg, "resource-group", "", "")
	fs.StringVar(&bot, "bot-name", "", "")
	fs.StringVar(&appID, "app-id", "", "")
	fs.StringVar(&fa, "function-app", "", "")
	fs.StringVar(&graphURL, "graph-url", "", "")
	fs.StringVar(&armURL, "arm-url", "", "")
	fs.StringVar(&scopes, "obo-scopes", "", "")
	fs.BoolVar(&help, "help", false, "")
	fs.BoolVar(&help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if help {
		fmt.Fprint(stdout, usage)
		return o, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if scopes != "" {
		o.OBOScopes = strings.FieldsFunc(scopes, func(r rune) bool { return r == ',' || r == ' ' })
	}
	o.Offline = f
	liveMode := sub != "" || rg != "" || bot != ""
	if !liveMode {
		if appID != "" || fa != "" || graphURL != "" || armURL != "" {
			return o, errors.New("--app-id, --function-app, --graph-url and --arm-url are for live mode (--bot-name)")
		}
		if f == (OfflineFiles{}) {
			return o, errors.New("give offline files (--app, --bot, --connection, --manifest, ...) or live mode (--bot-name)")
		}
		return o, nil
	}
	if f.App != "" || f.Bot != "" || f.Connection != "" || f.Settings != "" || f.FederatedCredentials != "" ||
		f.Identity != "" || f.RoleAssignments != "" || f.Grants != "" {
		return o, errors.New("live mode reads the deployment itself: only --manifest may be given as a file")
	}
	if sub == "" {
		sub = env("AZURE_SUBSCRIPTION_ID")
	}
	if rg == "" {
		rg = env("AZURE_RESOURCE_GROUP")
	}
	if sub == "" || rg == "" || bot == "" {
		return o, errors.New("live mode needs --subscription, --resource-group and --bot-name")
	}
	o.Live = &LiveConfig{Subscription: sub, ResourceGroup: rg, BotName: bot, AppID: appID, FunctionApp: fa, GraphURL: graphURL, ARMURL: armURL}
	return o, nil
}
