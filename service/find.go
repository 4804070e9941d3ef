package service

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/izdrop/izdrop/journal"
)

// Find writes what the journal knows of a file name, a vaccination id or an
// MSH-10: each file's state, result and archive path, and each record's
// outcome, MSH-10 and the ACK that answered it. It reports whether anything
// was found. It only reads, so it works while a service runs.
func Find(ctx context.Context, j journal.Store, term string, w io.Writer) (bool, error) {
	found := false
	files, err := j.FilesByName(ctx, term)
	if err != nil {
		return false, err
	}
	for _, f := range files {
		found = true
		counts, _ := j.Counts(ctx, f.Claim)
		fmt.Fprintf(w, "file %s (inbox %s), claimed %s as %s\n  state: %s", f.Name, f.Inbox, f.ClaimedAt.Format("2006-01-02 15:04:05Z07:00"), f.Claim, f.State)
		if f.Result != "" {
			fmt.Fprintf(w, ", result: %s", f.Result)
		}
		fmt.Fprintln(w)
		if f.ArchivePath != "" {
			fmt.Fprintf(w, "  archived as %s (sidecars: .ack.json, .ack.hl7)\n", f.ArchivePath)
		} else {
			fmt.Fprintf(w, "  in %s\n", f.WorkPath)
		}
		if f.Error != "" {
			fmt.Fprintf(w, "  could not be read: %s\n", f.Error)
		}
		if f.State != journal.Archived {
			if msgs, err := j.SendingMessages(ctx, f.Claim); err == nil {
				for _, m := range msgs {
					if m.LastError != "" {
						fmt.Fprintf(w, "  waiting: %s (%d message(s) unanswered)\n", m.LastError, len(msgs))
						break
					}
				}
			}
		}
		keys := make([]string, 0, len(counts))
		for k := range counts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			name := k
			if name == "" {
				name = "waiting"
			}
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], name))
		}
		fmt.Fprintf(w, "  records: %s\n", strings.Join(parts, ", "))
	}
	recs, err := j.RecordsByVaccination(ctx, term)
	if err != nil {
		return found, err
	}
	byMSH, err := j.RecordsByMSH10(ctx, term)
	if err != nil {
		return found, err
	}
	for _, r := range append(recs, byMSH...) {
		found = true
		f, _ := j.GetFile(ctx, r.Claim)
		outcome := r.Outcome
		m, merr := j.GetMessage(ctx, r.Claim, r.Seq)
		if outcome == "" {
			outcome = "waiting for the registry"
			if merr == nil && m.LastError != "" {
				outcome += ": " + m.LastError
			}
		}
		fmt.Fprintf(w, "record %s, line %d of %s (claim %s)\n  patient id %s, action %s, outcome: %s\n", r.VaccinationID, r.Line, f.Name, r.Claim, r.PatientID, r.Action, outcome)
		if r.MSH10 != "" {
			fmt.Fprintf(w, "  MSH-10 %s\n", r.MSH10)
		}
		// The message's ACK is this record's only if the message carried
		// it: an invalid or already accepted record of the same patient
		// was not sent, and the ACK says nothing about it.
		if merr == nil && m.ACK != "" && r.MSH10 != "" && r.MSH10 == m.MSH10 {
			if m.Registry != "" {
				fmt.Fprintf(w, "  answered by registry %s\n", m.Registry)
			}
			fmt.Fprintf(w, "  ACK (attempts: %d):\n", m.Attempts)
			for _, seg := range strings.FieldsFunc(m.ACK, func(c rune) bool { return c == '\r' || c == '\n' }) {
				fmt.Fprintf(w, "    %s\n", seg)
			}
		}
		for _, is := range decodeIssues(r.Problems) {
			fmt.Fprintf(w, "  %s (%s) %s %s: %s\n", is.Severity, is.Source, is.Field, is.Code, is.Text)
		}
	}
	return found, nil
}
