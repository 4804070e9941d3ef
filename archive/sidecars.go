package archive

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Issue is one error or warning about a record, from izdrop's checks or
// from the registry's ACK.
type Issue struct {
	Source   string `json:"source"`           // "izdrop" (checked before sending) or "registry" (from the ACK)
	Severity string `json:"severity"`         // error or warning
	Field    string `json:"field,omitempty"`  // HL7 field or ERR-2 location
	Column   string `json:"column,omitempty"` // the file's column
	Code     string `json:"code,omitempty"`   // izdrop rule, or HL70357^HL70533 codes
	Text     string `json:"text"`
}

// Record is one record's entry in NAME.ack.json.
type Record struct {
	Line          int     `json:"line"`
	PatientID     string  `json:"patient_id"`
	VaccinationID string  `json:"vaccination_id"`
	Action        string  `json:"action,omitempty"`
	MSH10         string  `json:"msh10,omitempty"`
	Outcome       string  `json:"outcome"`
	Errors        []Issue `json:"errors,omitempty"`
	Warnings      []Issue `json:"warnings,omitempty"`
}

// Head is the file-level part of NAME.ack.json.
type Head struct {
	File       string         `json:"file"`
	Inbox      string         `json:"inbox"`
	SHA256     string         `json:"sha256,omitempty"`
	Claim      string         `json:"claim"`
	ClaimedAt  time.Time      `json:"claimed_at"`
	ArchivedAt time.Time      `json:"archived_at"`
	Result     Result         `json:"result"`
	Error      string         `json:"error,omitempty"`
	Counts     map[string]int `json:"counts"`
	Warnings   []Issue        `json:"warnings,omitempty"` // about the file as a whole
}

// WriteACKJSON writes NAME.ack.json, streaming the records (a file of any
// size is written in constant memory).
func WriteACKJSON(w io.Writer, h Head, records func(yield func(Record) error) error) error {
	bw := bufio.NewWriter(w)
	head, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	// The head's fields, then a "records" array built one entry at a time.
	bw.Write(head[:len(head)-2])
	bw.WriteString(",\n  \"records\": [")
	first := true
	err = records(func(r Record) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if !first {
			bw.WriteString(",")
		}
		first = false
		bw.WriteString("\n    ")
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if first {
		bw.WriteString("]\n}\n")
	} else {
		bw.WriteString("\n  ]\n}\n")
	}
	return bw.Flush()
}

// WriteACKHL7 writes NAME.ack.hl7: each ACK as received, its segments one
// per line, a blank line between ACKs.
func WriteACKHL7(w io.Writer, acks func(yield func(msh10, ack string) error) error) error {
	bw := bufio.NewWriter(w)
	first := true
	err := acks(func(_, a string) error {
		if !first {
			bw.WriteString("\n")
		}
		first = false
		a = strings.ReplaceAll(strings.ReplaceAll(a, "\r\n", "\n"), "\r", "\n")
		bw.WriteString(strings.TrimRight(a, "\n"))
		_, err := bw.WriteString("\n")
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// WriteRejects writes NAME.rejects.csv: the header and each rejected or
// invalid row as they were read, each with one more field, izdrop_errors.
func WriteRejects(w io.Writer, header []byte, delim rune, rows func(yield func(raw []byte, errs string) error) error) error {
	if delim == 0 || delim == '"' || delim == '\r' || delim == '\n' {
		return fmt.Errorf("archive: invalid delimiter %q for the rejects file", delim)
	}
	bw := bufio.NewWriter(w)
	bw.Write(header)
	bw.WriteRune(delim)
	bw.WriteString("izdrop_errors\n")
	err := rows(func(raw []byte, errs string) error {
		bw.Write(raw)
		bw.WriteRune(delim)
		bw.WriteString(quote(errs, delim))
		_, err := bw.WriteString("\n")
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// quote writes one CSV field as encoding/csv would.
func quote(s string, delim rune) string {
	var b strings.Builder
	cw := csv.NewWriter(&b)
	cw.Comma = delim
	cw.Write([]string{s})
	cw.Flush()
	return strings.TrimRight(b.String(), "\n")
}
