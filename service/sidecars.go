// Sidecars: what is written beside an archived file - every ACK, every
// record's fate, the rows to fix and drop again, and why a file failed.

package service

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

func (in *inbox) writeSidecars(ctx context.Context, f journal.File, c watcher.Claimed, target string, result archive.Result, fileErr string, counts map[string]int) error {
	j := in.s.journal
	opt := in.readOptions(c)
	var fileWarnings []archive.Issue
	if fileErr == "" {
		if r, err := transform.Open(c.Path, opt); err == nil {
			for _, p := range r.FileProblems() {
				fileWarnings = append(fileWarnings, archive.Issue{Source: "izdrop", Severity: string(p.Severity), Code: p.Rule, Text: p.Text})
			}
			r.Close()
		}
	}
	anyACK := false
	if err := j.ACKs(ctx, f.Claim, func(string, string) error { anyACK = true; return io.EOF }); err != nil && err != io.EOF {
		return err
	}
	if anyACK {
		if err := archive.WriteAtomic(target+archive.ACKHL7, func(w io.Writer) error {
			return archive.WriteACKHL7(w, func(yield func(string, string) error) error { return j.ACKs(ctx, f.Claim, yield) })
		}); err != nil {
			return err
		}
	}
	if fileErr == "" && total(counts) == 0 {
		fileWarnings = append(fileWarnings, archive.Issue{Source: "izdrop", Severity: "warning", Code: noRecords, Text: noRecordsText})
	}
	head := archive.Head{File: c.Name, Inbox: in.name, SHA256: f.SHA256, Claim: f.Claim, ClaimedAt: f.ClaimedAt,
		ArchivedAt: in.s.opt.Now().UTC(), Result: result, Error: fileErr, Counts: counts, Warnings: fileWarnings}
	if err := archive.WriteAtomic(target+archive.ACKJSON, func(w io.Writer) error {
		return archive.WriteACKJSON(w, head, func(yield func(archive.Record) error) error {
			return j.Records(ctx, f.Claim, func(r journal.Record) error {
				errs, warns := split(decodeIssues(r.Problems))
				return yield(archive.Record{Line: r.Line, PatientID: r.PatientID, VaccinationID: r.VaccinationID, Action: r.Action,
					MSH10: r.MSH10, Outcome: r.Outcome, Errors: errs, Warnings: warns})
			})
		})
	}); err != nil {
		return err
	}
	if fileErr != "" {
		handled := total(counts)
		return archive.WriteAtomic(target+archive.Error, func(w io.Writer) error {
			var err error
			if handled == 0 {
				_, err = fmt.Fprintf(w, "izdrop could not read this file, so none of its records was sent.\n\n%s\n\nFix the file (or its profile in config.toml) and drop it into the inbox again.\n", fileErr)
			} else {
				_, err = fmt.Fprintf(w, "izdrop could not finish this file: it no longer reads as it did when it was first taken up "+
					"(the file could not be read, or its profile or izdrop changed meanwhile).\n\n%s\n\n"+
					"%d of its records had been handled before; their outcomes are in %s. The others were not sent.\n\n"+
					"Fix the cause and drop the file into the inbox again: records the registry already holds are not sent twice.\n",
					fileErr, handled, filepath.Base(target)+archive.ACKJSON)
			}
			return err
		})
	}
	if counts[string(ack.Rejected)]+counts[string(ack.Invalid)] == 0 {
		return nil
	}
	header, err := transform.HeaderLine(c.Path, opt)
	if err != nil {
		return err
	}
	return archive.WriteAtomic(target+archive.Rejects, func(w io.Writer) error {
		return archive.WriteRejects(w, header, opt.Profile.Delimiter, func(yield func([]byte, string) error) error {
			// Records stream from the journal in line order, which is file
			// order; their bytes are copied from the file as they were.
			type row struct {
				start, end int64
				errs       string
			}
			rows := make(chan row)
			errc := make(chan error, 1)
			go func() {
				defer close(rows)
				errc <- j.RecordsWithOutcome(ctx, f.Claim, []string{string(ack.Rejected), string(ack.Invalid)}, func(r journal.Record) error {
					rows <- row{r.Start, r.End, rejectText(r)}
					return nil
				})
			}()
			var cur row
			err := transform.RawRows(c.Path, opt, func() (int64, int64, bool) {
				var ok bool
				cur, ok = <-rows
				return cur.start, cur.end, ok
			}, func(raw []byte) error { return yield(raw, cur.errs) })
			for range rows {
			}
			if err != nil {
				return err
			}
			return <-errc
		})
	})
}

// noRecords is the warning on a file that holds no record: an EHR export
// job that failed often writes just that.
const (
	noRecords     = "no-records"
	noRecordsText = "the file holds no records (empty, or a header only): an EHR export that failed often looks like this; check the export job"
)

func total(counts map[string]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}
