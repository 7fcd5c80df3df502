package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status is the outcome of one check.
type Status string

// The statuses, from best to worst for the reader: only StatusFail makes the doctor exit 1.
const (
	StatusPass Status = "pass"
	StatusInfo Status = "info"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Result is one check's finding.
type Result struct {
	// ID names the check in code and tests (for example "app.identifier-uri"); not printed.
	ID       string `json:"-"`
	Category string `json:"category"`
	Label    string `json:"label"`
	Status   Status `json:"status"`
	Detail   string `json:"detail"`
	// Fix is the exact az command or Graph request that repairs a failure or warning.
	Fix string `json:"fix"`
}

// Summary counts results per status.
type Summary struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Warn int `json:"warn"`
	Info int `json:"info"`
	Skip int `json:"skip"`
}

// Report is the doctor's whole finding.
type Report struct {
	Checks  []Result `json:"checks"`
	Summary Summary  `json:"summary"`
}

// NewReport counts the results.
func NewReport(results []Result) Report {
	r := Report{Checks: results}
	for _, c := range results {
		switch c.Status {
		case StatusPass:
			r.Summary.Pass++
		case StatusFail:
			r.Summary.Fail++
		case StatusWarn:
			r.Summary.Warn++
		case StatusInfo:
			r.Summary.Info++
		case StatusSkip:
			r.Summary.Skip++
		}
	}
	return r
}

// Failed reports whether any check failed.
func (r Report) Failed() bool { return r.Summary.Fail > 0 }

// Find returns the result of the check with the given id.
func (r Report) Find(id string) (Result, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Result{}, false
}

// WriteJSON writes the report as {"checks": [...], "summary": {...}}.
func (r Report) WriteJSON(w io.Writer) error {
	if r.Checks == nil {
		r.Checks = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("doctor: write JSON report: %w", err)
	}
	return nil
}

var symbols = map[Status]string{
	StatusPass: "✓",
	StatusFail: "✗",
	StatusWarn: "!",
	StatusInfo: "i",
	StatusSkip: "-",
}

// WriteText writes the report grouped by category, in check order, with each fix indented
// under its failure or warning, and a summary line.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	var order []string
	groups := map[string][]Result{}
	for _, c := range r.Checks {
		if _, ok := groups[c.Category]; !ok {
			order = append(order, c.Category)
		}
		groups[c.Category] = append(groups[c.Category], c)
	}
	for i, cat := range order {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(cat + "\n")
		for _, c := range groups[cat] {
			fmt.Fprintf(&b, "  %s %s", symbols[c.Status], c.Label)
			if c.Detail != "" {
				fmt.Fprintf(&b, ": %s", c.Detail)
			}
			b.WriteString("\n")
			if c.Fix != "" && (c.Status == StatusFail || c.Status == StatusWarn) {
				lines := strings.Split(c.Fix, "\n")
				fmt.Fprintf(&b, "      fix: %s\n", lines[0])
				for _, l := range lines[1:] {
					fmt.Fprintf(&b, "           %s\n", l)
				}
			}
		}
	}
	s := r.Summary
	fmt.Fprintf(&b, "\n%d passed, %d failed, %d warnings, %d info, %d skipped\n", s.Pass, s.Fail, s.Warn, s.Info, s.Skip)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("doctor: write report: %w", err)
	}
	return nil
}
