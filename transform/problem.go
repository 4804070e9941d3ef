package transform

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"

	"github.com/izdrop/izdrop/codes"
)

// Severity of a problem: an error keeps the record from being sent, a
// warning travels with it.
type Severity = codes.Severity

// The two severities.
const (
	Error   = codes.Error
	Warning = codes.Warning
)

// Problem is one finding about one record (or about the file, Line 0). It is
// an error value a program can read field by field.
type Problem struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`             // 1-based line of the record's first line; 0 for the file
	Column   string   `json:"column,omitempty"` // the file's own header name
	Field    string   `json:"field,omitempty"`  // where the value goes in the VXU, e.g. PID-7
	Where    string   `json:"where,omitempty"`  // HL7 and FHIR input: where the value came from, e.g. "message 3, RXA-5"
	Rule     string   `json:"rule"`             // stable name, e.g. birth-date-future
	Severity Severity `json:"severity"`
	Text     string   `json:"text"` // never contains patient data
}

func (p Problem) Error() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Column != "" {
		return fmt.Sprintf("%s: column %s (%s): %s: %s", loc, p.Column, p.Field, p.Rule, p.Text)
	}
	if p.Where != "" {
		return fmt.Sprintf("%s: %s: %s: %s", loc, p.Where, p.Rule, p.Text)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Rule, p.Text)
}

// FileError is returned by Open when a file cannot be read at all: not the
// declared encoding, not a CSV, no usable header; for HL7, a batch whose
// BTS/FTS counts do not match; for FHIR, a missing partner file. Nothing of
// such a file is sent.
type FileError struct {
	File   string
	Offset int64 // byte offset of the problem, -1 when not about a place
	Line   int   // line, 0 when not known
	Reason string
	Err    error
}

func (e *FileError) Error() string {
	s := e.File
	if e.Line > 0 {
		s = fmt.Sprintf("%s:%d", s, e.Line)
	}
	if e.Offset >= 0 {
		s = fmt.Sprintf("%s (byte %d)", s, e.Offset)
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }

// Transient reports whether the file could not be read for a reason of the
// moment (an I/O error, too many open files) rather than for what it holds
// or its permissions: reading it again later may work.
func (e *FileError) Transient() bool {
	var pe *csv.ParseError
	return e.Err != nil && !errors.As(e.Err, &pe) && !errors.Is(e.Err, fs.ErrPermission) && !errors.Is(e.Err, fs.ErrNotExist)
}
