package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/hl7"
)

// finding is one ERR the sandbox will answer with.
type finding struct {
	loc      string // SEG^seq^field^rep^comp
	code     string // HL70357
	severity string // E, W or I
	app      string // HL70533
	text     string
	header   bool // a header problem: the answer is AR
}

var (
	text357 = map[string]string{"0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
		"102": "Data type error", "103": "Table value not found", "200": "Unsupported message type",
		"202": "Unsupported processing id", "203": "Unsupported version id", "207": "Application internal error"}
	text533 = map[string]string{"1": "Illogical Date error", "2": "Invalid Date", "3": "Illogical Value error",
		"4": "Invalid value", "5": "Table value not found", "6": "Required observation missing"}
)

// dose is one ORC/RXA group of a received message.
type dose struct {
	seq     int    // RXA set number within the message (1-based)
	id      string // ORC-3.1
	action  string // RXA-21 (A when empty)
	cvx     string
	content string // what makes two sends of the dose "the same"
}

type checker struct {
	cs       *codes.Set
	now      time.Time
	loc      *time.Location
	m        *hl7.Message
	findings []finding
	doses    []dose
	birth    time.Time
	death    time.Time
}

func (c *checker) add(sev, loc, code, app, format string, args ...any) {
	c.findings = append(c.findings, finding{loc: loc, code: code, severity: sev, app: app, text: fmt.Sprintf(format, args...)})
}

func (c *checker) reject(loc, code, app, format string, args ...any) {
	c.add("E", loc, code, app, format, args...)
}

func (c *checker) warn(loc, code, app, format string, args ...any) {
	c.add("W", loc, code, app, format, args...)
}

// check validates a VXU as CAIR2 would (docs/cair2.md).
func (c *checker) check() {
	m := c.m
	msh := m.Segments[0]
	hdr := func(loc, code, format string, args ...any) {
		c.findings = append(c.findings, finding{loc: loc, code: code, severity: "E", app: "4", text: fmt.Sprintf(format, args...), header: true})
	}
	if msh.Get(9, 1) != "VXU" || msh.Get(9, 2) != "V04" {
		hdr("MSH^1^9", "200", "MSH-9 must be VXU^V04^VXU_V04")
	}
	if p := msh.Get(11, 1); p != "P" {
		hdr("MSH^1^11", "202", "MSH-11 processing id must be P, not %q", p)
	}
	if v := msh.Get(12, 1); v != "2.5.1" {
		hdr("MSH^1^12", "203", "MSH-12 version must be 2.5.1, not %q", v)
	}
	if msh.Get(10, 1) == "" {
		hdr("MSH^1^10", "101", "MSH-10 message control id is required")
	}
	if msh.Get(4, 1) == "" {
		hdr("MSH^1^4", "101", "MSH-4 sending facility is required")
	}
	if msh.Get(22, 1) == "" {
		c.reject("MSH^1^22", "101", "6", "MSH-22 (the responsible CAIR Site ID) is required by CAIR2")
	}
	c.order()
	if pid, ok := m.First("PID"); ok {
		c.pid(pid)
	}
	if pd1, ok := m.First("PD1"); ok {
		c.pd1(pd1)
	}
	for i, nk1 := range m.All("NK1") {
		if rel := nk1.Get(3, 1); rel != "" {
			if _, ok := c.cs.Lookup("HL70063", rel); !ok {
				c.warn(fmt.Sprintf("NK1^%d^3", i+1), "103", "5", "relationship %q not recognized - not saved", rel)
			}
		}
	}
	c.groups()
}

// order checks MSH [SFT] PID [PD1] [{NK1}] [PV1] {ORC [TQ1] RXA [RXR] [{OBX [NTE]}]}.
func (c *checker) order() {
	const (
		head = iota
		pid
		pd1
		nk1
		pv1
		orc
		tq1
		rxa
		rxr
		obx
	)
	state := head
	sawPID := false
	groups := 0
	for i, s := range c.m.Segments[1:] {
		bad := func() {
			c.reject(fmt.Sprintf("%s^%d", s.ID, i+2), "100", "3", "segment %s is out of order (segment %d)", s.ID, i+2)
		}
		switch s.ID {
		case "SFT":
			if state != head {
				bad()
			}
		case "PID":
			if state != head || sawPID {
				bad()
			}
			state, sawPID = pid, true
		case "PD1":
			if state != pid {
				bad()
			}
			state = pd1
		case "NK1":
			if state < pid || state > nk1 {
				bad()
			}
			state = nk1
		case "PV1", "PV2", "IN1", "IN2", "IN3", "GT1":
			if state < pid || state > pv1 {
				bad()
			}
			state = pv1
		case "ORC":
			if !sawPID {
				bad()
			}
			state = orc
			groups++
		case "TQ1":
			if state != orc {
				bad()
			}
			state = tq1
		case "RXA":
			if state != orc && state != tq1 {
				bad()
			}
			state = rxa
		case "RXR":
			if state != rxa {
				bad()
			}
			state = rxr
		case "OBX":
			if state < rxa {
				bad()
			}
			state = obx
		case "NTE":
			if state != obx {
				bad()
			}
		case "MSH":
			bad()
		default:
			c.warn(fmt.Sprintf("%s^%d", s.ID, i+2), "100", "3", "segment %s is not part of VXU^V04 - ignored", s.ID)
		}
	}
	if !sawPID {
		c.reject("PID^1", "100", "3", "the PID segment is missing")
	}
	if groups == 0 {
		c.reject("ORC^1", "100", "3", "no ORC/RXA vaccination group")
	}
}

func lettersOnly(s string) bool {
	for _, r := range s {
		if !(unicode.IsLetter(r) || r == ' ' || r == '-' || r == '\'') {
			return false
		}
	}
	return true
}

func (c *checker) date(s string) (time.Time, bool) {
	t, _, err := hl7.ParseTS(s, c.loc)
	return t, err == nil
}

func (c *checker) pid(s hl7.Segment) {
	id := hl7.ParseCX(s.Field(3).Rep(1))
	switch {
	case id.ID == "":
		c.reject("PID^1^3", "101", "6", "PID-3 patient identifier is required")
	case id.IDType == "":
		c.reject("PID^1^3^1^5", "101", "6", "PID-3.5 identifier type code is required")
	default:
		if _, ok := c.cs.Lookup("HL70203", id.IDType); !ok {
			c.reject("PID^1^3^1^5", "103", "5", "PID-3.5 identifier type %q is not in HL70203", id.IDType)
		}
	}
	n := hl7.ParseXPN(s.Field(5).Rep(1))
	if n.Family == "" {
		c.reject("PID^1^5^1^1", "101", "6", "patient last name is required")
	}
	if n.Given == "" {
		c.reject("PID^1^5^1^2", "101", "6", "patient first name is required")
	}
	for i, part := range []string{n.Family, n.Given, n.Middle} {
		if !lettersOnly(part) {
			c.reject(fmt.Sprintf("PID^1^5^1^%d", i+1), "102", "4", "patient names may contain letters, space, hyphen and apostrophe only")
		}
	}
	switch b := s.Get(7, 1); {
	case b == "":
		c.reject("PID^1^7", "101", "6", "birth date is required")
	default:
		t, ok := c.date(b)
		switch {
		case !ok:
			c.reject("PID^1^7", "102", "2", "birth date is not a valid date")
		case t.After(c.now):
			c.reject("PID^1^7", "102", "1", "birth date is in the future")
		default:
			c.birth = t
		}
	}
	switch sex := s.Get(8, 1); {
	case sex == "":
		c.reject("PID^1^8", "101", "6", "administrative sex is required")
	default:
		if _, ok := c.cs.Lookup("HL70001", sex); !ok {
			c.reject("PID^1^8", "103", "5", "administrative sex %q is not F, M, X or U", sex)
		}
	}
	for i, r := range s.Field(10) {
		if code := r.Comp(1).String(); code != "" {
			if _, ok := c.cs.Lookup("CDCREC_RACE", code); !ok {
				c.warn(fmt.Sprintf("PID^1^10^%d", i+1), "103", "5", "race %q not recognized - not saved", code)
			}
		}
	}
	if e := s.Get(22, 1); e != "" {
		if _, ok := c.cs.Lookup("CDCREC_ETHNICITY", e); !ok {
			c.warn("PID^1^22", "103", "5", "ethnicity %q not recognized - not saved", e)
		}
	}
	if d := s.Get(29, 1); d != "" {
		t, ok := c.date(d)
		switch {
		case !ok:
			c.reject("PID^1^29", "102", "2", "death date is not a valid date")
		case t.After(c.now) || (!c.birth.IsZero() && t.Before(c.birth)):
			c.reject("PID^1^29", "102", "1", "death date is illogical")
		default:
			c.death = t
		}
	}
}

func (c *checker) pd1(s hl7.Segment) {
	if p := s.Get(12, 1); p != "" {
		if p != "Y" && p != "N" {
			c.reject("PD1^1^12", "103", "5", "PD1-12 protection indicator must be Y or N")
		} else if s.Get(13, 1) == "" {
			c.reject("PD1^1^13", "101", "6", "PD1-13 is required when PD1-12 is valued")
		}
	}
	if st := s.Get(16, 1); st != "" {
		if _, ok := c.cs.Lookup("HL70441", st); !ok {
			c.warn("PD1^1^16", "103", "5", "registry status %q not recognized - not saved", st)
		}
	}
}

// groups checks each ORC/RXA/RXR/OBX group and collects the doses.
func (c *checker) groups() {
	segs := c.m.Segments
	n := 0
	for i := 0; i < len(segs); i++ {
		if segs[i].ID != "ORC" {
			continue
		}
		n++
		j := i + 1
		for j < len(segs) && segs[j].ID != "ORC" {
			j++
		}
		c.group(n, segs[i], segs[i+1:j])
		i = j - 1
	}
}

func (c *checker) group(n int, orc hl7.Segment, rest []hl7.Segment) {
	loc := func(seg string, field int, comp ...int) string {
		s := fmt.Sprintf("%s^%d^%d", seg, n, field)
		if len(comp) > 0 {
			s += fmt.Sprintf("^1^%d", comp[0])
		}
		return s
	}
	if orc.Get(1, 1) != "RE" {
		c.reject(loc("ORC", 1), "103", "5", "ORC-1 must be RE")
	}
	id := orc.Get(3, 1)
	if id == "" {
		c.reject(loc("ORC", 3), "101", "6", "ORC-3 filler order number (the vaccination id) is required")
	}
	var rxa, rxr hl7.Segment
	var obxs []hl7.Segment
	for _, s := range rest {
		switch s.ID {
		case "RXA":
			rxa = s
		case "RXR":
			rxr = s
		case "OBX":
			obxs = append(obxs, s)
		}
	}
	if rxa.ID == "" {
		return // order() reported it
	}
	if rxa.Get(1, 1) != "0" || rxa.Get(2, 1) != "1" {
		c.warn(loc("RXA", 1), "103", "4", "RXA-1 should be 0 and RXA-2 1")
	}
	var admin time.Time
	switch d := rxa.Get(3, 1); {
	case d == "":
		c.reject(loc("RXA", 3), "101", "6", "administration date is required")
	default:
		t, ok := c.date(d)
		switch {
		case !ok:
			c.reject(loc("RXA", 3), "102", "2", "administration date is not a valid date")
		case t.After(c.now):
			c.reject(loc("RXA", 3), "102", "1", "administration date is in the future")
		case !c.birth.IsZero() && t.Before(c.birth):
			c.reject(loc("RXA", 3), "102", "1", "administration date is before the birth date")
		case !c.death.IsZero() && t.After(c.death):
			c.reject(loc("RXA", 3), "102", "1", "administration date is after the death date")
		default:
			admin = t
		}
	}
	_ = admin
	status := rxa.Get(20, 1)
	if status == "" {
		status = "CP"
	} else if _, ok := c.cs.Lookup("HL70322", status); !ok {
		c.reject(loc("RXA", 20), "103", "5", "completion status %q is not in HL70322", status)
	}
	given := status == "CP" || status == "PA"
	src := rxa.Get(9, 1)
	if src != "" {
		if _, ok := c.cs.Lookup("NIP001", src); !ok {
			c.reject(loc("RXA", 9), "103", "5", "information source %q is not in NIP001", src)
		}
	} else if given {
		c.reject(loc("RXA", 9), "101", "6", "RXA-9 information source is required for a given dose")
	}
	historical := src != "00"
	administered := given && !historical
	cvx, system := rxa.Get(5, 1), rxa.Get(5, 3)
	mvx := rxa.Get(17, 1)
	switch {
	case cvx == "":
		c.reject(loc("RXA", 5), "101", "6", "RXA-5 vaccine code is required")
	case system != "CVX":
		c.reject(loc("RXA", 5, 3), "103", "5", "CAIR2 accepts CVX codes only in RXA-5 (coding system %q)", system)
	case cvx == "998":
		if status != "NA" {
			c.reject(loc("RXA", 20), "103", "3", "CVX 998 (no vaccine administered) needs RXA-20 NA")
		}
	default:
		for _, f := range c.cs.CheckVaccine(cvx, mvx, historical || !given) {
			field, app := 5, "5"
			if f.Field == "RXA-17" {
				field = 17
			}
			if f.Severity == codes.Error {
				c.reject(loc("RXA", field), "103", app, "%s", f.Text)
			} else {
				c.warn(loc("RXA", field), "103", app, "%s", f.Text)
			}
		}
	}
	if amt := rxa.Get(6, 1); amt == "" {
		c.reject(loc("RXA", 6), "101", "6", "RXA-6 administered amount is required (999 when unknown)")
	} else if _, err := strconv.ParseFloat(amt, 64); err != nil {
		c.reject(loc("RXA", 6), "102", "4", "RXA-6 administered amount is not a number")
	}
	if p := rxa.Field(10).Rep(1); !p.Empty() {
		x := hl7.ParseXCN(p)
		if x.ID != "" && x.AssigningAuthority.NamespaceID == "" {
			c.warn(loc("RXA", 10, 9), "0", "5", "No value was entered for RXA-10.9")
		}
		if x.ID != "" && x.IDType == "" {
			c.warn(loc("RXA", 10, 13), "0", "5", "No value was entered for RXA-10.13")
		}
	}
	if given && rxa.Field(11).Rep(1).Comp(4).String() == "" {
		c.reject(loc("RXA", 11, 4), "101", "6", "RXA-11.4 (the CAIR Site ID where the dose was given) is required")
	}
	if administered {
		if rxa.Get(15, 1) == "" {
			c.reject(loc("RXA", 15), "101", "6", "lot number is required for an administered dose")
		}
		if mvx == "" {
			c.reject(loc("RXA", 17), "101", "6", "manufacturer (MVX) is required for an administered dose")
		}
	}
	if rr := rxa.Get(18, 1); rr != "" {
		if _, ok := c.cs.Lookup("NIP002", rr); !ok {
			c.reject(loc("RXA", 18), "103", "5", "refusal reason %q is not in NIP002", rr)
		}
		if status != "RE" {
			c.reject(loc("RXA", 20), "103", "3", "a refusal (RXA-18) needs RXA-20 RE")
		}
	} else if status == "RE" {
		c.reject(loc("RXA", 18), "101", "6", "RXA-20 RE needs a refusal reason in RXA-18")
	}
	action := rxa.Get(21, 1)
	if action == "" {
		action = "A"
	} else if _, ok := c.cs.Lookup("HL70323", action); !ok {
		c.reject(loc("RXA", 21), "103", "5", "action code %q is not A, U or D", action)
	}
	if rxr.ID != "" {
		if rt := rxr.Get(1, 1); rt != "" {
			_, ncit := c.cs.Lookup("NCIT", rt)
			_, old := c.cs.Lookup("HL70162", rt)
			if !ncit && !old {
				c.warn(loc("RXR", 1, 1), "103", "5", "Administration route not recognized - route data will not be saved")
			}
		}
		if st := rxr.Get(2, 1); st != "" {
			if _, ok := c.cs.Lookup("HL70163", st); !ok {
				c.warn(loc("RXR", 2, 1), "103", "5", "Administration Site not recognized - site data will not be saved")
			}
		}
	}
	vfc := ""
	for _, o := range obxs {
		switch o.Get(3, 1) {
		case "64994-7":
			vfc = o.Get(5, 1)
			if _, ok := c.cs.Lookup("HL70064", vfc); !ok {
				c.reject(loc("OBX", 5), "103", "5", "VFC eligibility %q is not in HL70064", vfc)
			}
		case "30963-3":
			if f := o.Get(5, 1); f != "" {
				if _, ok := c.cs.Lookup("FUNDING", f); !ok {
					c.warn(loc("OBX", 5), "103", "5", "funding source %q not recognized - not saved", f)
				}
			}
		case "59784-9":
			if cvx != "998" {
				c.reject(loc("RXA", 5), "103", "3", "evidence of immunity (OBX 59784-9) is reported with CVX 998")
			}
		}
	}
	if administered && vfc == "" {
		c.reject(loc("OBX", 5), "101", "6", "VFC eligibility (OBX 64994-7) is required for an administered dose")
	}
	content := strings.Join([]string{rxa.Get(3, 1), cvx, rxa.Get(6, 1), rxa.Get(15, 1), mvx, status, rxa.Get(18, 1), vfc}, "|")
	c.doses = append(c.doses, dose{seq: n, id: id, action: action, cvx: cvx, content: content})
}
