package status

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// outcomes in the order they are shown.
var outcomes = []string{"accepted", "accepted_with_warnings", "already_accepted", "rejected", "invalid", "unknown", "pending"}

// WriteText writes a report for a person at a terminal.
func WriteText(w io.Writer, r Report) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("izdrop status at %s (done/failed since %s)", r.At.Format("2006-01-02 15:04:05 -07:00"), r.Since.Format("2006-01-02 15:04"))
	if len(r.Running) == 0 {
		p("no izdrop process is running (no heartbeat in the last 3 minutes)")
	}
	for _, h := range r.Running {
		p("running: pid %d on %s, since %s", h.PID, h.Host, h.StartedAt.In(r.At.Location()).Format("2006-01-02 15:04:05"))
	}
	p("")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tENVIRONMENT\tSTATE\tSINCE\tWHY")
	for _, e := range r.Endpoints {
		since := ""
		if !e.Since.IsZero() {
			since = e.Since.In(r.At.Location()).Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Environment, e.State, since, e.Reason)
	}
	tw.Flush()
	for _, in := range r.Inboxes {
		p("")
		waiting := fmt.Sprint(in.Waiting)
		if in.Waiting < 0 {
			waiting = "?"
		}
		p("inbox %s (%s -> %s)", in.Name, in.Path, in.Endpoint)
		p("  files: %s waiting in the inbox, %d in work, %d done, %d failed", waiting, in.InWork, in.Done, in.Failed)
		p("  records: %s", countLine(in.Records))
		if len(in.TopErrors) > 0 {
			p("  most frequent errors:")
			for _, e := range in.TopErrors {
				where := strings.TrimSpace(e.Field + " " + e.Code)
				p("    %5d  %s %s: %s", e.Count, e.Source, where, e.Text)
			}
		}
	}
	return nil
}

func countLine(m map[string]int) string {
	var parts []string
	seen := map[string]bool{}
	for _, k := range outcomes {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
		seen[k] = true
	}
	var rest []string
	for k := range m {
		if !seen[k] && m[k] > 0 {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// WriteFileText writes one file's report.
func WriteFileText(w io.Writer, r FileReport, loc *time.Location) error {
	f := r.File
	fmt.Fprintf(w, "file %s (inbox %s), claim %s\n", f.Name, r.Inbox, f.Claim)
	fmt.Fprintf(w, "  claimed %s; state %s", f.ClaimedAt.In(loc).Format("2006-01-02 15:04:05"), f.State)
	if f.Result != "" {
		fmt.Fprintf(w, ", result %s", f.Result)
	}
	fmt.Fprintln(w)
	if f.Archive != "" {
		fmt.Fprintf(w, "  archived as %s\n", f.Archive)
	}
	if f.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", f.Error)
	}
	if r.Waiting != "" {
		fmt.Fprintf(w, "  waiting: %s\n", r.Waiting)
	}
	if r.Rejects != "" {
		fmt.Fprintf(w, "  rows to fix and drop again: %s\n", r.Rejects)
	}
	fmt.Fprintf(w, "  records: %s\n\n", countLine(f.Counts))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tVACCINATION ID\tACTION\tMSH-10\tOUTCOME\tERRORS")
	for _, rec := range r.Records {
		var errs []string
		for _, e := range rec.Errors {
			errs = append(errs, strings.TrimSpace(e.Field+" "+e.Code)+": "+e.Text)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", rec.Line, rec.VaccinationID, rec.Action, rec.MSH10, rec.Outcome, strings.Join(errs, "; "))
	}
	return tw.Flush()
}
