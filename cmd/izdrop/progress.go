package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/izdrop/izdrop/service"
)

// showProgress draws one line of progress on a terminal while files are
// sent - records done, an estimate of the share done, the rate and the time
// left - and nothing when w is not a terminal (a script's log gets the
// summary at the end). The returned func stops it and clears the line.
func showProgress(s *service.Service, w io.Writer) func() {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last := 0
		for {
			select {
			case <-done:
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", last))
				return
			case <-t.C:
				line := progressLine(s.Progress(), time.Now())
				pad := max(last-len(line), 0)
				fmt.Fprintf(w, "\r%s%s", line, strings.Repeat(" ", pad))
				last = len(line)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// progressLine sums up the files being sent.
func progressLine(ps []service.Progress, now time.Time) string {
	if len(ps) == 0 {
		return "waiting for files to settle..."
	}
	var parts []string
	for _, p := range ps {
		s := fmt.Sprintf("%s/%s: %d records done", p.Inbox, p.File, p.Done)
		if f := p.Fraction(); f > 0 {
			s += fmt.Sprintf(" (%d%%)", int(100*f))
		}
		s += fmt.Sprintf(", %.0f/s", p.Rate(now))
		if eta := p.ETA(now); eta > 0 {
			s += ", about " + eta.Round(time.Second).String() + " left"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// writeSummary prints the run's outcome per inbox as a table.
func writeSummary(w io.Writer, sum service.Summary) {
	if len(sum.ByInbox) == 0 {
		return
	}
	cols := []string{"accepted", "accepted_with_warnings", "already_accepted", "rejected", "invalid", "unknown"}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "INBOX\tDONE\tFAILED\tWAITING")
	for _, c := range cols {
		fmt.Fprint(tw, "\t"+strings.ToUpper(c))
	}
	fmt.Fprintln(tw, "\t")
	names := make([]string, 0, len(sum.ByInbox))
	for n := range sum.ByInbox {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := sum.ByInbox[n]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d", n, s.Done, s.Failed, s.Pending)
		for _, c := range cols {
			fmt.Fprintf(tw, "\t%d", s.Records[c])
		}
		fmt.Fprintln(tw, "\t")
	}
	tw.Flush()
}

// validateProgress shows, on a terminal, how far izdrop validate is in a
// file: records read, the share of the file, the rate and the time left.
func validateProgress(w io.Writer, path string) (func(read int64, records int), func()) {
	f, ok := w.(*os.File)
	st, err := os.Stat(path)
	if !ok || err != nil || !term.IsTerminal(int(f.Fd())) {
		return nil, func() {}
	}
	size, start := st.Size(), time.Now()
	last := start // the first line after a quarter second, when a rate means something
	width := 0
	return func(read int64, records int) {
			now := time.Now()
			if now.Sub(last) < 250*time.Millisecond {
				return
			}
			last = now
			line := fmt.Sprintf("%s: %d records read", path, records)
			if size > 0 && read > 0 {
				share := float64(read) / float64(size)
				el := now.Sub(start)
				line += fmt.Sprintf(" (%d%%), %.0f/s", int(100*share), float64(records)/el.Seconds())
				if share > 0 && share < 1 {
					line += ", about " + time.Duration(float64(el)*(1-share)/share).Round(time.Second).String() + " left"
				}
			}
			fmt.Fprintf(w, "\r%s%s", line, strings.Repeat(" ", max(width-len(line), 0)))
			width = len(line)
		}, func() {
			if width > 0 {
				fmt.Fprintf(w, "\r%s\r", strings.Repeat(" ", width))
			}
		}
}
