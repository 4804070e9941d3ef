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
	File         string       `json:"file"`
	SHA256       string       `json:"sha256"`
	Profile      string       `json:"profile"`
	Error        string       `json:"error,omitempty"` // the file could not be read at all
	Records      int          `json:"records"`
	Valid        int          `json:"valid"`
	Invalid      int          `json:"invalid"`
	WithWarnings int          `json:"with_warnings"`
	Messages     int          `json:"messages"`
	FileProblems []Problem    `json:"file_problems,omitempty"`
	Items        []ReportItem `json:"records_detail"`
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

// DryRun reads path as the service would, without sending anything: it
// writes the VXUs it would send to NAME.vxu.hl7 and a per-record report to
// NAME.report.json beside the input, and a readable summary to out. The
// control ids are "DRY" plus the file's hash and the message number, and
// MSH-7 is opt.Now(), so a rerun on the same input gives the same output.
func DryRun(path string, opt Options, out io.Writer) (*Report, error) {
	opt.withDefaults()
	rep := &Report{File: filepath.Base(path), Profile: opt.Profile.Name, Items: []ReportItem{}}
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
		return rep, writeJSON(reportPath, rep)
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
	w := bufio.NewWriter(vf)
	enc := hl7.NewEncoder(hl7.DefaultDelimiters)
	var lines []string
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		ctrl := fmt.Sprintf("DRY%s-%d", sum[:8], m.Seq)
		send := m.Sendable()
		if len(send) > 0 {
			w.Write(m.Encode(enc, Header{ControlID: ctrl, Time: opt.Now()}, send))
			w.WriteString("\n")
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
				lines = append(lines, fmt.Sprintf("  %-7s %s", p.Severity, p.Error()))
			}
			rep.Items = append(rep.Items, it)
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	s := r.Summary()
	rep.Records, rep.Valid, rep.Invalid, rep.Messages = s.Records, s.Valid, s.Invalid, s.Messages
	fmt.Fprintf(out, "%s: %d record(s): %d valid (%d with warnings), %d invalid; %d message(s) would be sent\n",
		rep.File, rep.Records, rep.Valid, rep.WithWarnings, rep.Invalid, countSent(rep))
	for _, p := range rep.FileProblems {
		fmt.Fprintf(out, "  %-7s %s\n", p.Severity, p.Error())
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	fmt.Fprintf(out, "  wrote %s and %s\n", filepath.Base(vxuPath), filepath.Base(reportPath))
	return rep, writeJSON(reportPath, rep)
}

func countSent(rep *Report) int {
	seen := map[int]bool{}
	for _, it := range rep.Items {
		if it.MSH10 != "" {
			seen[it.Message] = true
		}
	}
	return len(seen)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
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
