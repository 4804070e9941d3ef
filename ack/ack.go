// Package ack reads registry acknowledgements (ACK^V04) and decides what
// happened to the message they answer: the one fact outbound, the journal
// and the archive all need. It knows the ACK styles registries actually
// answer with (../testdata/hl7-samples/): CAIR2's AE-with-warnings,
// AIRA-style informational ERRs on AA, NIST, Michigan's DQA front end.
//
// The rule, in order (docs/cair2.md, "What each answer means"):
//  1. rejected: any ERR with severity E, MSA-1 AR (or CR), MSA-1 AE with an
//     ERR whose severity is missing or not W/I, or a text that says the
//     record or message was rejected (MSA-3 or ERR-8, in any case, even
//     under AA: "Record Rejected") - an ACK that does not say the data was
//     stored is not taken to mean it was.
//  2. accepted with warnings: MSA-1 AE (or CE) and every ERR W or I (CAIR
//     stores these).
//  3. accepted: MSA-1 AA (or CA); W/I ERRs are kept as warnings.
//
// An ACK may hold several MSA segments (a batch answer), each followed by
// its ERRs: every one is classified, and the answer to a message is the
// worst of the MSAs that name it (For).
//
// Anything else (no MSA, an unknown MSA-1) is not an answer: Parse returns
// an error and the caller treats the call as failed in transit.
package ack

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/izdrop/izdrop/hl7"
)

// Outcome is what became of a record.
type Outcome string

// Outcomes. The first three come from ACKs; Invalid is a record refused
// before sending, AlreadyAccepted one not resent because the registry
// already has it.
const (
	Accepted             Outcome = "accepted"
	AcceptedWithWarnings Outcome = "accepted_with_warnings"
	Rejected             Outcome = "rejected"
	Invalid              Outcome = "invalid"
	AlreadyAccepted      Outcome = "already_accepted"
)

// Stored reports whether the registry holds the record after this outcome.
func (o Outcome) Stored() bool {
	return o == Accepted || o == AcceptedWithWarnings || o == AlreadyAccepted
}

// ERR is one ERR segment.
type ERR struct {
	Location string `json:"location,omitempty"` // ERR-2, as SEG^seq^field^rep^comp
	Code     string `json:"code,omitempty"`     // ERR-3.1, HL70357
	CodeText string `json:"code_text,omitempty"`
	Severity string `json:"severity,omitempty"` // ERR-4: E, W or I
	AppCode  string `json:"app_code,omitempty"` // ERR-5.1, HL70533
	AppText  string `json:"app_text,omitempty"`
	Text     string `json:"text,omitempty"` // ERR-8, the user message
}

// ACK is a parsed acknowledgement. Code, ControlID and Text are its first
// MSA's; Outcome is the worst over every MSA.
type ACK struct {
	Raw       string  `json:"-"`
	Code      string  `json:"msa1"`           // MSA-1
	ControlID string  `json:"msa2"`           // MSA-2: the MSH-10 it answers
	Text      string  `json:"msa3,omitempty"` // MSA-3 free text
	Errors    []ERR   `json:"errors,omitempty"`
	Outcome   Outcome `json:"outcome"`
	// MSAs are every MSA with its own ERRs, in order (one, as a rule).
	MSAs []MSA `json:"msas,omitempty"`
}

// MSA is one acknowledgement in an ACK, with the ERRs that follow it.
type MSA struct {
	Code, ControlID, Text string
	Errors                []ERR
	Outcome               Outcome
}

// For returns the outcome of the message with control id msh10, and
// whether the ACK answers it: the worst outcome of the MSAs naming it (an
// MSA with no MSA-2 is taken to name it).
func (a *ACK) For(msh10 string) (Outcome, bool) {
	var out Outcome
	found := false
	for _, m := range a.MSAs {
		if m.ControlID != "" && m.ControlID != msh10 {
			continue
		}
		found = true
		out = worse(out, m.Outcome)
	}
	return out, found
}

func worse(a, b Outcome) Outcome {
	rank := map[Outcome]int{"": 0, Accepted: 1, AcceptedWithWarnings: 2, Rejected: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// ErrNotAnACK is wrapped by Parse when the text is not an acknowledgement.
var ErrNotAnACK = errors.New("not an HL7 acknowledgement")

// Parse reads and classifies an ACK.
func Parse(raw []byte) (*ACK, error) {
	m, err := hl7.Parse(essentials(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotAnACK, err)
	}
	if m.Count("MSA") == 0 {
		return nil, fmt.Errorf("%w: no MSA segment", ErrNotAnACK)
	}
	a := &ACK{Raw: string(raw)}
	var pending []ERR
	for _, s := range m.Segments {
		switch s.ID {
		case "MSA":
			a.MSAs = append(a.MSAs, MSA{Code: strings.ToUpper(strings.TrimSpace(s.Get(1, 1))), ControlID: s.Get(2, 1), Text: s.Get(3, 1)})
		case "ERR":
			e := parseERR(s)
			a.Errors = append(a.Errors, e)
			if n := len(a.MSAs); n > 0 {
				a.MSAs[n-1].Errors = append(a.MSAs[n-1].Errors, e)
			} else {
				pending = append(pending, e)
			}
		}
	}
	// ERRs written before the first MSA belong to it.
	a.MSAs[0].Errors = append(pending, a.MSAs[0].Errors...)
	a.Code, a.ControlID, a.Text = a.MSAs[0].Code, a.MSAs[0].ControlID, a.MSAs[0].Text
	for i := range a.MSAs {
		o, err := classify(&a.MSAs[i])
		if err != nil {
			return nil, err
		}
		a.MSAs[i].Outcome = o
		a.Outcome = worse(a.Outcome, o)
	}
	return a, nil
}

// essentials returns what Parse reads of an ACK: the header's delimiters
// (MSH-1 and MSH-2) and the MSA and ERR segments. Parsing the rest - the
// header's twenty-odd fields, above all - was most of the work of reading
// an ACK, on the way of every message sent.
func essentials(raw []byte) []byte {
	data := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, " \t\r\n")
	line := func(b []byte) []byte {
		if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
			return b[:i]
		}
		return b
	}
	first := line(data)
	if len(first) < 4 {
		return raw // hl7.Parse says what is wrong with it
	}
	sep := first[3]
	head := first
	if j := bytes.IndexByte(first[4:], sep); j >= 0 {
		head = first[:4+j]
	}
	out := make([]byte, 0, len(data))
	out = append(out, head...)
	for rest := data[len(first):]; len(rest) > 0; {
		if rest[0] == '\r' || rest[0] == '\n' {
			rest = rest[1:]
			continue
		}
		l := line(rest)
		rest = rest[len(l):]
		id := l
		if i := bytes.IndexByte(l, sep); i >= 0 {
			id = l[:i]
		}
		if string(id) == "MSA" || string(id) == "ERR" {
			out = append(out, '\r')
			out = append(out, l...)
		}
	}
	return out
}

func parseERR(s hl7.Segment) ERR {
	e := ERR{
		Code: s.Get(3, 1), CodeText: s.Get(3, 2),
		Severity: strings.ToUpper(strings.TrimSpace(s.Get(4, 1))),
		AppCode:  s.Get(5, 1), AppText: s.Get(5, 2),
		Text: s.Get(8, 1),
	}
	if r := s.Field(2).Rep(1); len(r) > 0 {
		var parts []string
		for _, c := range r {
			parts = append(parts, c.String())
		}
		e.Location = strings.TrimRight(strings.Join(parts, "^"), "^")
	}
	// ERR-1 (2.3-style location) when ERR-2 is empty.
	if e.Location == "" && !s.Field(1).Empty() {
		var parts []string
		for _, c := range s.Field(1).Rep(1) {
			parts = append(parts, c.String())
		}
		e.Location = strings.TrimRight(strings.Join(parts, "^"), "^")
	}
	return e
}

// saysRejected reports whether a registry's text says the record or message
// was not stored: "Record Rejected", "MESSAGE REJECTED - ...", "rejected:
// ...", "was not accepted". "0 records rejected" and "not rejected" do not.
func saysRejected(text string) bool {
	t := " " + strings.Join(strings.Fields(strings.ToUpper(text)), " ") + " "
	for _, no := range []string{" NOT REJECTED", " NO RECORDS REJECTED", " NO RECORD REJECTED", " 0 RECORDS REJECTED", " 0 RECORD REJECTED", " NONE REJECTED", " ZERO RECORDS REJECTED"} {
		t = strings.ReplaceAll(t, no, " ")
	}
	return strings.Contains(t, "REJECTED") || strings.Contains(t, "NOT ACCEPTED")
}

func classify(a *MSA) (Outcome, error) {
	rejected := saysRejected(a.Text)
	onlyWarnings := true
	for _, e := range a.Errors {
		if e.Severity == "E" || saysRejected(e.Text) {
			rejected = true
		}
		if e.Severity != "W" && e.Severity != "I" {
			onlyWarnings = false
		}
	}
	switch a.Code {
	case "AR", "CR":
		return Rejected, nil
	case "AE", "CE":
		if rejected || !onlyWarnings {
			return Rejected, nil
		}
		return AcceptedWithWarnings, nil
	case "AA", "CA":
		if rejected {
			return Rejected, nil
		}
		return Accepted, nil
	case "":
		return "", fmt.Errorf("%w: MSA-1 is empty", ErrNotAnACK)
	}
	return "", fmt.Errorf("%w: MSA-1 %q is not AA, AE or AR", ErrNotAnACK, a.Code)
}

// Problems returns the ACK's errors (severity E, or any ERR of a rejection
// that gives none) and warnings (W and I) apart.
func (a *ACK) Problems() (errs, warnings []ERR) {
	for _, e := range a.Errors {
		if e.Severity == "W" || e.Severity == "I" {
			warnings = append(warnings, e)
		} else {
			errs = append(errs, e)
		}
	}
	return errs, warnings
}
