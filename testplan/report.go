package testplan

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Run facts for the summary.
type Header struct {
	Endpoint, URL, Environment string
	Site, SendingFacility      string
	Region                     string
	Run                        string
	At                         time.Time
	Version                    string
}

// Passed reports whether every case passed.
func Passed(rs []Result) bool {
	for _, r := range rs {
		if !r.Passed {
			return false
		}
	}
	return len(rs) > 0
}

// Failed names the cases that did not pass.
func Failed(rs []Result) []string {
	var out []string
	for _, r := range rs {
		if !r.Passed {
			out = append(out, r.Case.Name)
		}
	}
	return out
}

// WriteTable writes the results as a table: case, expected, outcome,
// errors, pass or fail.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tCASE\tEXPECTED\tACK OUTCOME\tERRORS\tRESULT")
	for i, r := range rs {
		outcome := string(r.Outcome)
		if outcome == "" {
			outcome = "no answer"
		}
		errs := "-"
		if len(r.Errors) > 0 {
			errs = fmt.Sprintf("%d: %s", len(r.Errors), clip(r.Errors[0], 60))
		}
		res := "PASS"
		if !r.Passed {
			res = "FAIL"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s (%s)\n", i+1, r.Case.Name, r.Case.Expect, outcome, errs, res, r.Why)
	}
	return tw.Flush()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// WriteSummary writes summary.txt (the header and the table) and
// summary.json into dir.
func WriteSummary(dir string, h Header, rs []Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "izdrop %s - CAIR2 test plan, run %s, %s\n", h.Version, h.Run, h.At.Format("2006-01-02 15:04:05 -07:00"))
	fmt.Fprintf(&b, "Endpoint: %s (%s) %s\n", h.Endpoint, h.Environment, h.URL)
	fmt.Fprintf(&b, "Site ID (MSH-22, RXA-11.4): %s; sending facility (MSH-4): %s; region (MSH-6): %s\n\n", h.Site, h.SendingFacility, h.Region)
	WriteTable(&b, rs)
	verdict := "every case passed"
	if !Passed(rs) {
		verdict = "failed: " + strings.Join(Failed(rs), ", ")
	}
	fmt.Fprintf(&b, "\nResult: %s.\nEach case's message is NN-case.vxu.hl7 and the registry's answer NN-case.ack.hl7 in this folder;\nthe patients are fake (last name IZDROPTEST), their records are in input.csv.\n", verdict)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	type jr struct {
		Case     string   `json:"case"`
		Title    string   `json:"title"`
		Expected string   `json:"expected"`
		MSH10    string   `json:"msh10"`
		Outcome  string   `json:"outcome"`
		Errors   []string `json:"errors,omitempty"`
		Passed   bool     `json:"passed"`
		Why      string   `json:"why"`
	}
	out := struct {
		Header
		Passed bool `json:"passed"`
		Cases  []jr `json:"cases"`
	}{Header: h, Passed: Passed(rs)}
	for _, r := range rs {
		out.Cases = append(out.Cases, jr{r.Case.Name, r.Case.Title, r.Case.Expect.String(), r.MSH10, string(r.Outcome), r.Errors, r.Passed, r.Why})
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), append(js, '\n'), 0o600)
}
