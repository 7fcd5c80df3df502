// Package doctor diagnoses an onbehalf deployment: every SSO and identity misconfiguration
// that would stop a user's question from being answered as them (the Azure Bot, its Teams
// channel and OAuth connection, the Entra app registration and its federated credentials,
// Graph delegated grants, the Teams manifest, the Function App's settings, identity and Key
// Vault access, the messaging endpoint). Each finding carries the exact az command or Graph
// request that repairs it, and --fix repairs the app registration through Graph.
//
// It reads either files (offline: the JSON az prints) or the live deployment (Graph and
// Resource Manager with the developer's Azure CLI login). Both produce one Snapshot, and the
// checks are small functions over it.
package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of Run and Main.
const (
	ExitOK     = 0 // nothing failed
	ExitFailed = 1 // at least one check failed
	ExitUsage  = 2 // bad flags or unreadable input: nothing was diagnosed
)

// Options configures one doctor run.
//
// Example (offline, JSON output):
//
//	doctor.Options{
//		Offline: doctor.OfflineFiles{App: "app.json", Bot: "bot.json", Connection: "connection.json", Manifest: "manifest.json"},
//		JSON:    true,
//		Stdout:  os.Stdout, Stderr: os.Stderr,
//	}
type Options struct {
	// Offline names the files to read; in live mode only Manifest is used.
	Offline OfflineFiles
	// Live, when set, reads the deployment through Graph and Resource Manager.
	Live *LiveConfig
	// JSON writes the report as JSON instead of text.
	JSON bool
	// Fix repairs app-registration failures through Graph (live mode), after confirmation.
	Fix bool
	// Yes confirms --fix without asking.
	Yes bool
	// OBOScopes are the Graph delegated permissions that must be granted (default DefaultOBOScopes).
	OBOScopes []string
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
}

// Run diagnoses, prints the report, optionally fixes, and returns the exit status.
func Run(ctx context.Context, o Options) int {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	var lv *live
	if o.Live != nil {
		var err error
		if lv, err = newLive(*o.Live); err != nil {
			fmt.Fprintln(o.Stderr, err)
			return ExitUsage
		}
	}
	load := func() (*Snapshot, error) {
		var s *Snapshot
		var err error
		if lv != nil {
			s, err = lv.load(ctx, o.Offline)
		} else {
			s, err = LoadOffline(o.Offline)
		}
		if err == nil {
			s.OBOScopes = o.OBOScopes
		}
		return s, err
	}
	s, err := load()
	if err != nil {
		fmt.Fprintln(o.Stderr, err)
		return ExitUsage
	}
	report := RunChecks(s)
	// In JSON mode stdout holds exactly one JSON document: the final report.
	msg := o.Stdout
	if o.JSON {
		msg = o.Stderr
	}
	if !o.JSON || !o.Fix {
		if err := write(o, report); err != nil {
			return ExitUsage
		}
	}
	if !o.Fix {
		return exitFor(report)
	}

	fixable := fixableFailures(report)
	if len(fixable) == 0 {
		fmt.Fprintln(msg, "\nNothing to fix in the app registration.")
		return finish(o, report, !o.JSON)
	}
	plan := PlanAppFixFor(s.App, s.redirectURI())
	if lv == nil || s.App == nil || len(plan) == 0 {
		fmt.Fprintf(msg, "\n%s need repairs, but fixing the app registration needs live mode "+
			"(--subscription, --resource-group, --bot-name) so the doctor can read and write it through Graph; "+
			"or apply the Graph requests shown under each failure yourself (az rest --method PATCH --url … --body …).\n",
			strings.Join(fixable, ", "))
		return finish(o, report, !o.JSON)
	}
	fmt.Fprintf(msg, "\nPlanned change to the app registration %s (%s):\n", s.App.AppID, strings.Join(fixable, ", "))
	for _, r := range plan {
		fmt.Fprintf(msg, "\n%s\n", r.Text(s.GraphURL))
	}
	if !o.Yes && !confirm(o.Stdin, msg) {
		fmt.Fprintln(msg, "Nothing changed.")
		return finish(o, report, !o.JSON)
	}
	if err := lv.apply(ctx, plan); err != nil {
		fmt.Fprintln(o.Stderr, err)
		return ExitFailed
	}
	fmt.Fprintln(msg, "Applied. Checking again:")
	s, err = load()
	if err != nil {
		fmt.Fprintln(o.Stderr, err)
		return ExitUsage
	}
	report = RunChecks(s)
	if !o.JSON {
		fmt.Fprintln(msg)
	}
	return finish(o, report, false)
}

// finish prints the report unless it was printed already, and returns the exit status.
func finish(o Options, r Report, printed bool) int {
	if !printed {
		if err := write(o, r); err != nil {
			return ExitUsage
		}
	}
	return exitFor(r)
}

func write(o Options, r Report) error {
	var err error
	if o.JSON {
		err = r.WriteJSON(o.Stdout)
	} else {
		err = r.WriteText(o.Stdout)
	}
	if err != nil {
		fmt.Fprintln(o.Stderr, err)
	}
	return err
}

func exitFor(r Report) int {
	if r.Failed() {
		return ExitFailed
	}
	return ExitOK
}

// fixableFailures are the failed checks --fix repairs.
func fixableFailures(r Report) []string {
	fixable := map[string]bool{}
	for _, c := range allChecks {
		fixable[c.id] = c.appFix
	}
	var out []string
	for _, c := range r.Checks {
		if c.Status == StatusFail && fixable[c.ID] {
			out = append(out, c.Label)
		}
	}
	return out
}

func confirm(in io.Reader, out io.Writer) bool {
	fmt.Fprint(out, "\nApply these changes through Microsoft Graph? [y/N] ")
	if in == nil {
		fmt.Fprintln(out)
		return false
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
