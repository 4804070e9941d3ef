// Issues: a record's errors and warnings, from izdrop's checks and from
// the registry's ACK, as the journal keeps them and the sidecars show them.

package service

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/transform"
)

func rules(rec *transform.Record) string {
	var rs []string
	for _, p := range rec.Errors() {
		rs = append(rs, p.Rule)
	}
	return strings.Join(rs, ",")
}

// validationIssues converts a record's problems; errors only when
// withErrors (an invalid record), warnings always.
func validationIssues(rec *transform.Record, withErrors bool) []archive.Issue {
	var out []archive.Issue
	for _, p := range rec.Problems {
		if p.Severity == transform.Error && !withErrors {
			continue
		}
		col := p.Column
		if col == "" {
			col = p.Where // HL7 or FHIR input: the message or resource the value came from
		}
		out = append(out, archive.Issue{Source: "izdrop", Severity: string(p.Severity), Field: p.Field, Column: col, Code: p.Rule, Text: p.Text})
	}
	return out
}

// attribute gives each record of a message the registry's errors and
// warnings about it: an ERR located in the n-th ORC, RXA or RXR group goes to
// the n-th record, any other to all of them.
func attribute(d outbound.Delivery, n int) [][]archive.Issue {
	out := make([][]archive.Issue, n)
	add := func(i int, is archive.Issue) {
		if i >= 0 && i < n {
			out[i] = append(out[i], is)
			return
		}
		for k := range out {
			out[k] = append(out[k], is)
		}
	}
	if d.ACK == nil {
		if d.Fault != nil {
			// A fault's detail can echo the request: it is redacted before
			// it is kept anywhere.
			add(-1, archive.Issue{Source: "registry", Severity: "error", Code: "fault", Text: ack.Redact(d.Fault.Error())})
		}
		return out
	}
	for _, e := range d.Errors() {
		sev := "error"
		if e.Severity == "W" || e.Severity == "I" {
			sev = "warning"
		}
		code := e.Code
		if e.AppCode != "" {
			code += "/" + e.AppCode
		}
		is := archive.Issue{Source: "registry", Severity: sev, Field: e.Location, Code: code, Text: e.Text}
		parts := strings.Split(e.Location, "^")
		idx := -1
		if len(parts) > 1 && (parts[0] == "RXA" || parts[0] == "ORC" || parts[0] == "RXR") {
			if k, err := strconv.Atoi(parts[1]); err == nil {
				idx = k - 1
			}
		}
		add(idx, is)
	}
	if d.Outcome == ack.Rejected && len(d.Errors()) == 0 {
		add(-1, archive.Issue{Source: "registry", Severity: "error", Code: "MSA-1 " + d.ACK.Code, Text: "rejected: " + d.ACK.Text})
	}
	return out
}

func encodeIssues(is []archive.Issue) string {
	if len(is) == 0 {
		return ""
	}
	b, _ := json.Marshal(is)
	return string(b)
}

func decodeIssues(s string) []archive.Issue {
	if s == "" {
		return nil
	}
	var is []archive.Issue
	json.Unmarshal([]byte(s), &is)
	return is
}

func split(is []archive.Issue) (errs, warns []archive.Issue) {
	for _, i := range is {
		if i.Severity == "error" {
			errs = append(errs, i)
		} else {
			warns = append(warns, i)
		}
	}
	return errs, warns
}

// rejectText is the izdrop_errors column: why the row was not stored.
func rejectText(r journal.Record) string {
	var parts []string
	for _, i := range decodeIssues(r.Problems) {
		if i.Severity != "error" {
			continue
		}
		where := i.Field
		if i.Column != "" {
			where = i.Column + " (" + i.Field + ")"
		}
		src := ""
		if i.Source == "registry" {
			src = "registry: "
		}
		head := strings.Join(strings.Fields(where+" "+i.Code), " ")
		if head == "" {
			parts = append(parts, src+i.Text)
			continue
		}
		parts = append(parts, fmt.Sprintf("%s%s: %s", src, head, i.Text))
	}
	if len(parts) == 0 {
		return r.Outcome
	}
	return strings.Join(parts, "; ")
}
