// Package testplan is CAIR2's onboarding test set, run by `izdrop
// testplan` against a staging endpoint before a site goes live: messages
// for built-in, clearly fake patients (last name IZDROPTEST, ids starting
// "TP"), built by the same transform the service uses and stamped with the
// site's own Site ID, facility and region, sent in order, each answer
// checked against what the registry should say.
//
// The positive cases cover what a clinic sends (a new patient with an
// administered dose and its VFC eligibility and funding, a historical
// dose, several vaccines in one visit, a refusal, an update and a delete of
// an earlier dose, a locked record with a guardian, evidence of immunity);
// the negative ones are messages CAIR must refuse (a training processing
// id, a missing identifier type, an unknown CVX, a CVX/MVX pair that no
// product has), built by altering a valid message after izdrop's own checks,
// which would never let them out. A negative case passes when the registry
// rejects it, for the field it was altered in.
//
// Every message and ACK is written to a folder, with a summary, to attach
// to the email to the CAIR Data Exchange Specialist.
package testplan

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/transform"
)

// Expect is what a case expects of the registry.
type Expect struct {
	// Stored: the registry accepts the message (with or without warnings).
	// Otherwise it must reject it, for Field ("MSH-11", "PID-3.5").
	Stored bool
	Field  string
}

func (e Expect) String() string {
	if e.Stored {
		return "accepted"
	}
	return "rejected (" + e.Field + ")"
}

// Case is one message of the test plan.
type Case struct {
	Name  string // short, for --only
	Title string
	// Needs names the case whose dose this one refers to (an update or a
	// delete): it is run first.
	Needs  string
	Expect Expect
	rows   func(p patients) []row
	alter  func(msg []byte) []byte // for the negative cases
}

// row is one line of the default export layout, by column name.
type row map[string]string

// patients holds the run's fake patient ids, so that two runs never refer
// to each other's doses.
type patients struct {
	run   string
	today time.Time // the run's date: cases are built relative to it
}

func (p patients) id(n int) string      { return fmt.Sprintf("%s-P%02d", p.run, n) }
func (p patients) dose(n, k int) string { return fmt.Sprintf("%s-P%02d-%d", p.run, n, k) }
func (p patients) birth(years int) string {
	return p.today.AddDate(-years, -2, -3).Format("2006-01-02")
}
func (p patients) daysAgo(days int) string   { return p.today.AddDate(0, 0, -days).Format("2006-01-02") }
func (p patients) expires(months int) string { return p.today.AddDate(0, months, 0).Format("2006-01") }

// child is a fake patient with the columns every case shares.
func child(p patients, n int, first string, years int) row {
	return row{
		"patient_id": p.id(n), "patient_last_name": "Izdroptest", "patient_first_name": first,
		"patient_birth_date": p.birth(years), "patient_sex": "F", "race": "2106-3", "ethnicity": "2186-5",
		"address_street": "1 Test Plan Way", "address_city": "Sacramento", "address_state": "CA", "address_zip": "95814",
		"address_county": "Sacramento", "phone": "916-555-0100", "mother_maiden_last_name": "Sample",
		"share_with_registry": "Y", "disclosure_date": p.daysAgo(30),
	}
}

// given adds an administered dose's columns to r.
func given(r row, p patients, n, k int, cvx, mvx, lot string) row {
	d := row{
		"vaccination_id": p.dose(n, k), "admin_date": p.daysAgo(7), "cvx": cvx, "mvx": mvx, "lot_number": lot,
		"lot_expiration": p.expires(10), "dose_ml": "0.5", "route": "C28161", "body_site": "LT", "info_source": "00",
		"vfc_eligibility": "V02", "funding_source": "VXC50", "administered_by_npi": "1987654328",
		"administered_by_last_name": "Nurse", "administered_by_first_name": "Test", "ordering_provider_npi": "1234567893",
		"ordering_provider_last_name": "Doctor", "ordering_provider_first_name": "Test",
	}
	return merge(r, d)
}

func merge(rs ...row) row {
	out := row{}
	for _, r := range rs {
		for k, v := range r {
			out[k] = v
		}
	}
	return out
}

// Cases returns the test plan, in the order it is sent.
func Cases() []Case {
	return []Case{
		{Name: "new-patient", Title: "new patient, administered dose with VFC eligibility and funding source", Expect: Expect{Stored: true},
			rows: func(p patients) []row { return []row{given(child(p, 1, "Alpha", 2), p, 1, 1, "20", "SKB", "TPLOT01")} }},
		{Name: "historical", Title: "historical dose (given elsewhere, RXA-9 01)", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				return []row{merge(child(p, 2, "Bravo", 6), row{"vaccination_id": p.dose(2, 1), "admin_date": p.daysAgo(1500), "cvx": "08", "info_source": "01"})}
			}},
		{Name: "multi-vaccine", Title: "several vaccines in one visit, one message", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				c := child(p, 3, "Charlie", 2)
				return []row{given(c, p, 3, 1, "20", "SKB", "TPLOT31"), given(c, p, 3, 2, "10", "PMC", "TPLOT32"), given(c, p, 3, 3, "133", "PFR", "TPLOT33")}
			}},
		{Name: "refusal", Title: "refusal (RXA-18 parental decision, RXA-20 RE)", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				return []row{merge(child(p, 4, "Delta", 1), row{"vaccination_id": p.dose(4, 1), "admin_date": p.daysAgo(7), "cvx": "116", "refusal_reason": "00"})}
			}},
		{Name: "update", Title: "update of the new patient's dose (RXA-21 U, corrected lot)", Needs: "new-patient", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				r := given(child(p, 1, "Alpha", 2), p, 1, 1, "20", "SKB", "TPLOT01B")
				r["action"] = "U"
				return []row{r}
			}},
		{Name: "delete", Title: "delete of a dose of the multi-vaccine visit (RXA-21 D)", Needs: "multi-vaccine", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				r := given(child(p, 3, "Charlie", 2), p, 3, 3, "133", "PFR", "TPLOT33")
				r["action"] = "D"
				return []row{r}
			}},
		{Name: "locked-record", Title: "locked record (PD1-12 Y: the patient declined sharing) with a guardian (NK1)", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				r := given(child(p, 5, "Echo", 1), p, 5, 1, "116", "MSD", "TPLOT51")
				r["share_with_registry"] = "N"
				r["guardian_last_name"], r["guardian_first_name"], r["guardian_relationship"] = "Izdroptest", "Guardian", "MTH"
				return []row{r}
			}},
		{Name: "immunity", Title: "evidence of immunity (CVX 998, OBX 59784-9 varicella)", Expect: Expect{Stored: true},
			rows: func(p patients) []row {
				return []row{merge(child(p, 6, "Foxtrot", 8), row{"vaccination_id": p.dose(6, 1), "admin_date": p.daysAgo(30), "immunity_snomed": "38907003"})}
			}},
		{Name: "wrong-processing-id", Title: "negative: MSH-11 T (CAIR takes P only, on staging too)", Expect: Expect{Field: "MSH-11"},
			rows:  func(p patients) []row { return []row{given(child(p, 7, "Golf", 2), p, 7, 1, "20", "SKB", "TPLOT71")} },
			alter: func(m []byte) []byte { return setField(m, "MSH", 11, 1, "T") }},
		{Name: "missing-pid-3.5", Title: "negative: PID-3.5 identifier type missing", Expect: Expect{Field: "PID-3.5"},
			rows:  func(p patients) []row { return []row{given(child(p, 8, "Hotel", 2), p, 8, 1, "20", "SKB", "TPLOT81")} },
			alter: func(m []byte) []byte { return setField(m, "PID", 3, 5, "") }},
		{Name: "unknown-cvx", Title: "negative: RXA-5 a CVX code that does not exist", Expect: Expect{Field: "RXA-5"},
			rows:  func(p patients) []row { return []row{given(child(p, 9, "India", 2), p, 9, 1, "20", "SKB", "TPLOT91")} },
			alter: func(m []byte) []byte { return setComps(m, "RXA", 5, "9999", "No such vaccine", "CVX") }},
		{Name: "cvx-mvx-mismatch", Title: "negative: RXA-17 a manufacturer that makes no vaccine of that CVX", Expect: Expect{Field: "RXA-17"},
			rows: func(p patients) []row {
				return []row{given(child(p, 10, "Juliett", 2), p, 10, 1, "20", "SKB", "TPLOT101")}
			},
			alter: func(m []byte) []byte { return setComps(m, "RXA", 17, "MSD", "Merck and Co., Inc.", "MVX") }},
	}
}

// Select returns the cases named in only (all when empty), with the cases
// they need added before them. It fails on an unknown name.
func Select(only []string) ([]Case, []string, error) {
	all := Cases()
	if len(only) == 0 {
		return all, nil, nil
	}
	byName := map[string]Case{}
	for _, c := range all {
		byName[c.Name] = c
	}
	want := map[string]bool{}
	var added []string
	for _, n := range only {
		c, ok := byName[n]
		if !ok {
			return nil, nil, fmt.Errorf("no test case %q (izdrop testplan -list shows them)", n)
		}
		want[n] = true
		for c.Needs != "" && !want[c.Needs] {
			want[c.Needs] = true
			added = append(added, c.Needs)
			c = byName[c.Needs]
		}
	}
	var out []Case
	for _, c := range all {
		if want[c.Name] {
			out = append(out, c)
		}
	}
	return out, added, nil
}

// Message is a case's message, ready to send.
type Message struct {
	Case  Case
	MSH10 string
	Raw   []byte
}

// Build writes the cases' records, in the default export layout, to
// input.csv in dir, reads them back through transform with opt (the site,
// codes and clock of the run) and returns one message per case, altered
// for the negative ones. run makes the ids unique to this run.
func Build(cases []Case, opt transform.Options, run, dir string) ([]Message, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	now := opt.Now()
	if opt.Location != nil {
		now = now.In(opt.Location)
	}
	p := patients{run: run, today: time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())}
	var header []string
	seen := map[string]bool{}
	var lines [][]row
	for _, c := range cases {
		rs := c.rows(p)
		for _, r := range rs {
			for k := range r {
				if !seen[k] {
					seen[k] = true
					header = append(header, k)
				}
			}
		}
		lines = append(lines, rs)
	}
	sortColumns(header)
	input := filepath.Join(dir, "input.csv")
	if err := writeCSV(input, header, lines); err != nil {
		return nil, err
	}
	r, err := transform.Open(input, opt)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	enc := hl7.NewEncoder(hl7.DefaultDelimiters)
	var out []Message
	for i := 0; ; i++ {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if i >= len(cases) {
			return nil, fmt.Errorf("testplan: %s reads as more messages than cases", input)
		}
		for _, rec := range m.Records {
			if !rec.Valid() {
				return nil, fmt.Errorf("testplan: case %s does not pass izdrop's own checks: %v", cases[i].Name, rec.Errors())
			}
		}
		msh10 := fmt.Sprintf("%s-%02d", run, i+1)
		raw := append([]byte(nil), m.Encode(enc, transform.Header{ControlID: msh10, Time: now}, m.Records)...)
		if cases[i].alter != nil {
			raw = cases[i].alter(raw)
		}
		out = append(out, Message{Case: cases[i], MSH10: msh10, Raw: raw})
	}
	if len(out) != len(cases) {
		return nil, fmt.Errorf("testplan: %d messages for %d cases", len(out), len(cases))
	}
	return out, nil
}

// sortColumns puts the columns in the default layout's order.
func sortColumns(cols []string) {
	pos := func(name string) int {
		c, ok := transform.ColByName(name)
		if !ok {
			return 1 << 20
		}
		return int(c)
	}
	for i := 1; i < len(cols); i++ {
		for k := i; k > 0 && pos(cols[k]) < pos(cols[k-1]); k-- {
			cols[k], cols[k-1] = cols[k-1], cols[k]
		}
	}
}

func writeCSV(path string, header []string, lines [][]row) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(header)
	for _, rs := range lines {
		for _, r := range rs {
			rec := make([]string, len(header))
			for i, h := range header {
				rec[i] = r[h]
			}
			w.Write(rec)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Sender delivers one message and returns the registry's answer.
type Sender interface {
	Deliver(ctx context.Context, msh10 string, hl7 []byte) (outbound.Delivery, error)
}

// Result is what became of one case.
type Result struct {
	Case    Case
	MSH10   string
	Outcome ack.Outcome // "" when no answer came
	Errors  []string    // the registry's errors and warnings, "SEV LOCATION: text"
	Passed  bool
	Why     string // why it passed or failed, in a few words
	Err     error  // no answer (transport, credentials)
}

// Run sends the messages in order and checks each answer. It writes
// NN-case.vxu.hl7 and NN-case.ack.hl7 for each to dir. A refusal of the
// credentials ends the run (every later call would fail the same way).
func Run(ctx context.Context, s Sender, msgs []Message, dir string) ([]Result, error) {
	var out []Result
	for i, m := range msgs {
		base := filepath.Join(dir, fmt.Sprintf("%02d-%s", i+1, m.Case.Name))
		if err := os.WriteFile(base+".vxu.hl7", lines(m.Raw), 0o600); err != nil {
			return out, err
		}
		d, err := s.Deliver(ctx, m.MSH10, m.Raw)
		res := Result{Case: m.Case, MSH10: m.MSH10}
		if err != nil {
			res.Err, res.Why = err, "no answer: "+ack.Redact(err.Error())
			out = append(out, res)
			if ctx.Err() != nil || isRefusal(err) {
				return out, err
			}
			continue
		}
		if err := os.WriteFile(base+".ack.hl7", lines([]byte(d.Raw())), 0o600); err != nil {
			return out, err
		}
		res.Outcome = d.Outcome
		judge(&res, d)
		out = append(out, res)
	}
	return out, nil
}

func isRefusal(err error) bool {
	var sec *outbound.SecurityFault
	return errors.As(err, &sec) || errors.Is(err, outbound.ErrCredentialsRefused)
}

// judge decides whether a case passed, from the registry's answer.
func judge(res *Result, d outbound.Delivery) {
	var locs []string
	if d.ACK != nil {
		for _, e := range d.ACK.Errors {
			res.Errors = append(res.Errors, strings.TrimSpace(fmt.Sprintf("%s %s: %s", e.Severity, e.Location, e.Text)))
			if e.Severity != "W" && e.Severity != "I" {
				locs = append(locs, e.Location)
			}
		}
	} else if d.Fault != nil {
		res.Errors = append(res.Errors, ack.Redact(d.Fault.Error()))
	}
	want := res.Case.Expect
	switch {
	case want.Stored && d.Outcome.Stored():
		res.Passed, res.Why = true, "stored"
		if d.Outcome == ack.AcceptedWithWarnings {
			res.Why = "stored, with warnings"
		}
	case want.Stored:
		res.Why = "expected the registry to store it; it was " + string(d.Outcome)
	case d.Outcome.Stored():
		res.Why = "expected a rejection for " + want.Field + "; the registry stored it"
	default:
		matched, located := false, false
		for _, l := range locs {
			if l == "" {
				continue
			}
			located = true
			// "RXA-5.3" is in RXA-5; "PID-3" names the field PID-3.5 is in.
			if f := fieldOf(l) + "."; strings.HasPrefix(f, want.Field+".") || strings.HasPrefix(want.Field+".", f) {
				matched = true
			}
		}
		switch {
		case matched:
			res.Passed, res.Why = true, "rejected for "+want.Field
		case !located:
			res.Passed, res.Why = true, "rejected (the registry did not say which field)"
		default:
			res.Why = "rejected, but for " + strings.Join(fields(locs), ", ") + ", not " + want.Field
		}
	}
}

// fieldOf turns an ERR-2 location, SEG^seq^field^rep^comp, into
// "SEG-field" or "SEG-field.comp".
func fieldOf(loc string) string {
	p := strings.Split(loc, "^")
	if len(p) < 3 || p[2] == "" {
		return loc
	}
	f := p[0] + "-" + p[2]
	if len(p) >= 5 && p[4] != "" && p[4] != "1" {
		f += "." + p[4]
	}
	return f
}

func fields(locs []string) []string {
	var out []string
	for _, l := range locs {
		if l != "" {
			out = append(out, fieldOf(l))
		}
	}
	return out
}

// lines shows segments one per line, as a person reads them.
func lines(raw []byte) []byte {
	s := strings.ReplaceAll(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\r", "\n")
	return []byte(strings.TrimRight(s, "\n") + "\n")
}
