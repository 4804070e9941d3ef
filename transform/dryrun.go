package transform

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/izdrop/izdrop/hl7"
)

// Report is what a dry run found in one file (NAME.report.json).
type Report struct {
	File         string    `json:"file"`
	SHA256       string    `json:"sha256"`
	Profile      string    `json:"profile"`
	Error        string    `json:"error,omitempty"` // the file could not be read at all
	Records      int       `json:"records"`
	Valid        int       `json:"valid"`
	Invalid      int       `json:"invalid"`
	WithWarnings int       `json:"with_warnings"`
	Messages     int       `json:"messages"`
	FileProblems []Problem `json:"file_problems,omitempty"`
	// Items are the records, in the file; DryRun streams them to the
	// report file and leaves this empty, so that a file's size never sets
	// the memory it takes.
	Items []ReportItem `json:"records_detail"`
}

// ReportItem is one record of a Report.
type ReportItem struct {
	Line          int       `json:"line"`
	PatientID     string    `json:"patient_id,omitempty"`
	VaccinationID string    `json:"vaccination_id,omitempty"`
	Action        string    `json:"action,omitempty"`
	Message       int       `json:"message"`         // 1-based message number in the file
	MSH10         string    `json:"msh10,omitempty"` // empty when the record would not be sent
	Status        string    `json:"status"`          // valid or invalid
	Errors        []Problem `json:"errors,omitempty"`
	Warnings      []Problem `json:"warnings,omitempty"`
}

// maxShown bounds the problems DryRun prints; the report holds them all.
const maxShown = 1000

// DryRun reads path as the service would, without sending anything: it
// writes the VXUs it would send to NAME.vxu.hl7 and a per-record report to
// NAME.report.json beside the input, and a readable summary to out. The
// control ids are "DRY" plus the file's hash and the message number, and
// MSH-7 is opt.Now(), so a rerun on the same input gives the same output.
// It streams: the records go to the report as they are read (through a
// spool file beside it, the counts coming first), and at most maxShown
// problems are printed, so memory does not grow with the file.
func DryRun(path string, opt Options, out io.Writer) (*Report, error) {
	opt.withDefaults()
	rep := &Report{File: filepath.Base(path), Profile: opt.Profile.Name}
	if rep.Profile == "" {
		rep.Profile = "izdrop-csv"
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return nil, err
	}
	rep.SHA256 = sum
	vxuPath := path + ".vxu.hl7"
	if ext := filepath.Ext(path); ext != "" {
		vxuPath = strings.TrimSuffix(path, ext) + ".vxu.hl7"
	}
	reportPath := strings.TrimSuffix(vxuPath, ".vxu.hl7") + ".report.json"

	r, err := Open(path, opt)
	var fe *FileError
	if errors.As(err, &fe) {
		rep.Error = fe.Error()
		fmt.Fprintf(out, "%s: cannot be read: %s\n", rep.File, fe.Error())
		return rep, writeReport(reportPath, rep, nil)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep.FileProblems = r.FileProblems()
	vf, err := os.OpenFile(vxuPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) // patient data: private to the user
	if err != nil {
		return nil, err
	}
	defer vf.Close()
	spool, err := os.CreateTemp(filepath.Dir(reportPath), "."+filepath.Base(reportPath)+".*.tmp")
	if err != nil {
		return nil, err
	}
	defer func() { spool.Close(); os.Remove(spool.Name()) }()
	items := bufio.NewWriter(spool)
	w := bufio.NewWriter(vf)
	enc := hl7.NewEncoder(hl7.DefaultDelimiters)
	var shown []string
	hidden, sent, records := 0, 0, 0
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if opt.DryRunProgress != nil {
			records += len(m.Records)
			opt.DryRunProgress(m.Records[len(m.Records)-1].End, records)
		}
		ctrl := fmt.Sprintf("DRY%s-%d", sum[:8], m.Seq)
		send := m.Sendable()
		if len(send) > 0 {
			w.Write(m.Encode(enc, Header{ControlID: ctrl, Time: opt.Now()}, send))
			w.WriteString("\n")
			sent++
		}
		for _, rec := range m.Records {
			it := ReportItem{Line: rec.Line, PatientID: m.PatientID, VaccinationID: rec.VaccinationID, Action: rec.Action,
				Message: m.Seq, Status: "valid", Errors: rec.Errors(), Warnings: rec.Warnings()}
			if rec.Valid() {
				it.MSH10 = ctrl
			} else {
				it.Status = "invalid"
			}
			if len(it.Warnings) > 0 {
				rep.WithWarnings++
			}
			for _, p := range rec.Problems {
				if len(shown) < maxShown {
					shown = append(shown, fmt.Sprintf("  %-7s %s", p.Severity, p.Error()))
				} else {
					hidden++
				}
			}
			if err := writeItem(items, it); err != nil {
				return nil, err
			}
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := items.Flush(); err != nil {
		return nil, err
	}
	s := r.Summary()
	rep.Records, rep.Valid, rep.Invalid, rep.Messages = s.Records, s.Valid, s.Invalid, s.Messages
	fmt.Fprintf(out, "%s: %d record(s): %d valid (%d with warnings), %d invalid; %d message(s) would be sent\n",
		rep.File, rep.Records, rep.Valid, rep.WithWarnings, rep.Invalid, sent)
	for _, p := range rep.FileProblems {
		fmt.Fprintf(out, "  %-7s %s\n", p.Severity, p.Error())
	}
	for _, l := range shown {
		fmt.Fprintln(out, l)
	}
	if hidden > 0 {
		fmt.Fprintf(out, "  ... and %d more problem(s): see %s\n", hidden, filepath.Base(reportPath))
	}
	fmt.Fprintf(out, "  wrote %s and %s\n", filepath.Base(vxuPath), filepath.Base(reportPath))
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return rep, writeReport(reportPath, rep, spool)
}

// writeItem writes one record of records_detail, indented as it is in the
// report, each but the first preceded by a comma.
func writeItem(w *bufio.Writer, it ReportItem) error {
	b, err := json.MarshalIndent(it, "    ", "  ")
	if err != nil {
		return err
	}
	w.WriteString(",\n    ")
	_, err = w.Write(b)
	return err
}

// writeReport writes the report: its counts, then the records spooled in
// items (none when nil), as json.MarshalIndent would lay it out.
func writeReport(path string, rep *Report, items io.Reader) error {
	head := *rep
	head.Items = []ReportItem{}
	b, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	body := string(b)
	empty := "\"records_detail\": []\n}"
	if items == nil || !strings.HasSuffix(body, empty) {
		w.WriteString(body)
	} else {
		w.WriteString(strings.TrimSuffix(body, empty) + "\"records_detail\": [")
		br := bufio.NewReader(items)
		if _, err := br.Discard(1); err == nil { // the first item's comma
			if _, err := io.Copy(w, br); err != nil {
				return err
			}
			w.WriteString("\n  ]\n}")
		} else {
			w.WriteString("]\n}")
		}
	}
	w.WriteString("\n")
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
