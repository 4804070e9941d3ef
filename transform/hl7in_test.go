package transform

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vxu is a valid VXU^V04 of one patient with one administered dose per
// vaccination id, its segments separated by \n.
func vxu(ctrl, mrn string, vids ...string) string {
	segs := []string{
		"MSH|^~\\&|Acme EHR|DEMOORG|CAIR IIS|CAIRBA|20261120103012-0800||VXU^V04^VXU_V04|" + ctrl + "|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMO01",
		"PID|1||" + mrn + "^^^DEMOORG^MR||Rivera^Ana^^^^^L||20200501|F||2106-3^White^CDCREC|1 Main St^^Oakland^CA^94607^USA^H^^06001||^PRN^PH^^^510^5550100|||||||||2135-2^Hispanic or Latino^CDCREC",
	}
	for _, v := range vids {
		segs = append(segs,
			"ORC|RE||"+v+"^DEMOORG",
			"RXA|0|1|20261001||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001||^^^DEMO01||||L1|20270531|MSD^Merck^MVX|||CP|A",
			"RXR|C28161^IM^NCIT|LT^Left Thigh^HL70163",
			"OBX|1|CE|64994-7^VFC^LN|1|V02^Medicaid^HL70064||||||F")
	}
	return strings.Join(segs, "\n") + "\n"
}

const adt = "MSH|^~\\&|Acme EHR|DEMOORG|CAIR IIS|CAIRBA|20261120103012-0800||ADT^A04^ADT_A01|ADT1|P|2.5.1\nEVN|A04|20261120\nPID|1||MRN9^^^DEMOORG^MR||Rivera^Ana\nPV1|1|O\n"

func hl7Options() Options {
	opt := testOptions()
	opt.Profile = hl7Profile
	return opt
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func batch(count string, msgs ...string) string {
	return "FHS|^~\\&|Acme EHR|DEMOORG\nBHS|^~\\&|Acme EHR|DEMOORG\n" + strings.Join(msgs, "") + "BTS|" + count + "\nFTS|1\n"
}

func TestHL7FileErrors(t *testing.T) {
	one := vxu("C1", "MRN1", "V1")
	for _, c := range []struct {
		name, content string
		line          int
		want          string
	}{
		{"wrong batch count", batch("3", one, vxu("C2", "MRN2", "V2")), 15, "batch 1 (BHS at line 2): BTS-1 says 3 message(s), the batch holds 2"},
		{"wrong file count", "FHS|^~\\&\nBHS|^~\\&\n" + one + "BTS|1\nFTS|2\n", 10, "FTS-1 says 2 batch(es), the file holds 1"},
		{"batch cut short", "BHS|^~\\&\n" + one, 1, "the batch begun here has no BTS: the file may be cut short"},
		{"file cut short", "FHS|^~\\&\nBHS|^~\\&\n" + one + "BTS|1\n", 1, "the file header (FHS) has no FTS"},
		{"segment outside a message", "BHS|^~\\&\nPID|1||X\n" + one + "BTS|1\n", 2, "a PID segment outside any message"},
		{"after the file trailer", "FHS|^~\\&\n" + one + "FTS|1\n" + one, 9, "a segment after the FTS"},
		{"count not a number", "BHS|^~\\&\n" + one + "BTS|two\n", 8, `BTS-1 "two" is not a number`},
		{"a CSV", "patient_id,patient_last_name\nMRN1,Rivera\n", 1, "not a file of HL7 v2 messages"},
		{"empty", "\n\n", 0, "the file is empty"},
		{"headers only", "FHS|^~\\&\nFTS|0\n", 0, "holds no message"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(writeFile(t, "batch.hl7", c.content), hl7Options())
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Open: %v, want a *FileError", err)
			}
			if fe.File != "batch.hl7" || fe.Line != c.line || !strings.Contains(fe.Error(), c.want) || fe.Transient() {
				t.Errorf("got %q (line %d), want line %d and %q", fe.Error(), fe.Line, c.line, c.want)
			}
		})
	}
	// Counts that add up, with and without BTS-1, open.
	for _, ok := range []string{batch("2", one, vxu("C2", "MRN2", "V2")), "BHS|^~\\&\n" + one + "BTS|\n", "FHS|^~\\&\n" + one + one + "FTS|2\n", one + one} {
		if r, err := Open(writeFile(t, "ok.hl7", ok), hl7Options()); err != nil {
			t.Errorf("%v\n%s", err, ok)
		} else {
			r.Close()
		}
	}
}

func TestHL7NonVXUMessageIsRefusedByItsNumber(t *testing.T) {
	path := writeFile(t, "feed.hl7", vxu("C1", "MRN1", "V1")+adt+vxu("C3", "MRN3", "V3"))
	ms := readAll(t, path, hl7Options())
	if len(ms) != 3 {
		t.Fatalf("%d messages, want 3", len(ms))
	}
	bad := ms[1].Records[0]
	if bad.Valid() || len(bad.Problems) != 1 || len(ms[1].Sendable()) != 0 {
		t.Fatalf("the ADT: %+v", bad)
	}
	p := bad.Problems[0]
	if p.Rule != "not-vxu" || p.Where != "message 2, MSH-9" || bad.Line != 7 ||
		!strings.Contains(p.Error(), "feed.hl7:7: message 2, MSH-9: not-vxu: message 2 is ADT^A04, not VXU^V04") {
		t.Errorf("problem %q (line %d)", p.Error(), bad.Line)
	}
	for _, i := range []int{0, 2} {
		if r := ms[i].Records[0]; !r.Valid() || r.VaccinationID != fmt.Sprintf("V%d", i+1) {
			t.Errorf("message %d: %+v", i+1, r.Problems)
		}
	}
}

func TestHL7ProblemsNameMessageSegmentAndField(t *testing.T) {
	two := strings.Replace(vxu("C2", "MRN2", "V21", "V22"), "|L1|20270531|MSD^Merck^MVX|||CP|A\nRXR|C28161^IM^NCIT|LT^Left Thigh^HL70163\nOBX|1|CE|64994-7^VFC^LN|1|V02^Medicaid^HL70064||||||F\n",
		"|L1|20270531|MSD^Merck^MVX|||CP|A\nRXR|C28161^IM^NCIT|LT^Left Thigh^HL70163\nOBX|1|CE|64994-7^VFC^LN|1|V02^Medicaid^HL70064||||||F\nOBX|2|CE|31044-1^Reaction^LN|1|39579001^Anaphylaxis^SCT||||||F\n", 1)
	two = replaceNth(two, "|L1|", "||", 2) // the second dose has no lot
	noBirth := strings.Replace(vxu("C3", "MRN3", "V3"), "|20200501|F|", "||F|", 1)
	path := writeFile(t, "feed.hl7", vxu("C1", "MRN1", "V1")+two+noBirth)
	ms := readAll(t, path, hl7Options())
	if len(ms) != 3 || len(ms[1].Records) != 2 {
		t.Fatalf("%d messages", len(ms))
	}
	first, second := ms[1].Records[0], ms[1].Records[1]
	if !first.Valid() || first.Line != 10 || second.Line != 15 {
		t.Fatalf("records: line %d %v, line %d", first.Line, first.Problems, second.Line)
	}
	warn := first.Warnings()
	if len(warn) != 1 || warn[0].Rule != "obx-unmapped" || warn[0].Where != "message 2, OBX-3" {
		t.Errorf("first dose warnings: %+v", warn)
	}
	errs := second.Errors()
	if len(errs) != 1 || errs[0].Rule != "lot-missing" || errs[0].Where != "message 2, RXA[2]-15" || errs[0].Line != 15 ||
		!strings.HasPrefix(errs[0].Error(), "feed.hl7:15: message 2, RXA[2]-15: lot-missing:") {
		t.Errorf("second dose: %+v", errs)
	}
	errs = ms[2].Records[0].Errors()
	if len(errs) != 1 || errs[0].Where != "message 3, PID-7" || errs[0].Column != "" || errs[0].Field != "PID-7" {
		t.Errorf("patient problem: %+v", errs)
	}
	// Only the invalid dose stays back: the message is sent with the other.
	if s := ms[1].Sendable(); len(s) != 1 || s[0] != first {
		t.Errorf("sendable: %v", s)
	}
}

func replaceNth(s, old, new string, n int) string {
	i := 0
	for k := 0; k < n; k++ {
		j := strings.Index(s[i:], old)
		if j < 0 {
			return s
		}
		if k == n-1 {
			return s[:i+j] + new + s[i+j+len(old):]
		}
		i += j + len(old)
	}
	return s
}

// TestHL7LineEndsAndFraming reads the same batch written with LF, CR,
// CR LF and in MLLP frames, and gets the same messages and lines.
func TestHL7LineEndsAndFraming(t *testing.T) {
	lf := batch("2", vxu("C1", "MRN1", "V1", "V2"), vxu("C2", "MRN2", "V3"))
	var mllp strings.Builder
	for _, m := range []string{vxu("C1", "MRN1", "V1", "V2"), vxu("C2", "MRN2", "V3")} {
		mllp.WriteString("\x0b" + strings.ReplaceAll(m, "\n", "\r") + "\x1c\r")
	}
	want := encodeAll(t, writeFile(t, "lf.hl7", lf))
	for name, content := range map[string]string{
		"cr":     strings.ReplaceAll(lf, "\n", "\r"),
		"crlf":   strings.ReplaceAll(lf, "\n", "\r\n"),
		"no end": strings.TrimSuffix(lf, "\n"),
		"bom":    "\xef\xbb\xbf" + lf,
	} {
		if got := encodeAll(t, writeFile(t, name+".hl7", content)); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", name, got, want)
		}
	}
	got := encodeAll(t, writeFile(t, "mllp.hl7", mllp.String()))
	// No batch segments: the lines are two less, and a line more after
	// each frame.
	if strings.Count(got, "MSH|") != 2 || !strings.Contains(got, "line 4 V1") || !strings.Contains(got, "line 8 V2") || !strings.Contains(got, "line 15 V3") {
		t.Errorf("mllp:\n%s", got)
	}
}

// encodeAll reads a file and writes each message's records' lines and the
// VXU sent for it.
func encodeAll(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	enc := newEnc()
	for _, m := range readAll(t, path, hl7Options()) {
		for _, r := range m.Records {
			fmt.Fprintf(&b, "line %d %s %v\n", r.Line, r.VaccinationID, r.Problems)
		}
		b.Write(m.Encode(enc, Header{ControlID: "X", Time: testNow}, m.Sendable()))
		b.WriteString("\n")
	}
	return b.String()
}

func TestHL7SiteFieldsAndControlID(t *testing.T) {
	msg := strings.Replace(vxu("EHR-0001", "MRN1", "V1"), "|DEMOORG|CAIR IIS|CAIRBA|", "|OTHERORG|STATE IIS|CAIRLO|", 1)
	msg = strings.Replace(msg, "Z22^CDCPHINVS|DEMO01", "Z22^CDCPHINVS|SITE22", 1)
	msg = strings.Replace(msg, "^^^DEMO01|", "^^^SITE11|", 1)
	msg = strings.Replace(msg, "MRN1^^^DEMOORG^MR", "MRN1^^^EHRAUTH^PI", 1)
	path := writeFile(t, "site.hl7", msg)

	ms := readAll(t, path, hl7Options())
	out := string(ms[0].Encode(newEnc(), Header{ControlID: "X", Time: testNow}, ms[0].Records))
	for _, want := range []string{"|OTHERORG|CAIR IIS|CAIRLO|", "|Z22^CDCPHINVS|SITE11\r", "^^^SITE11|", "MRN1^^^EHRAUTH^PI", "V1^OTHERORG"} {
		if !strings.Contains(out, want) {
			t.Errorf("the message's own fields: %q not in\n%s", want, out)
		}
	}
	if ms[0].ControlID != "EHR-0001" {
		t.Errorf("ControlID %q, want the message's MSH-10", ms[0].ControlID)
	}

	opt := hl7Options()
	opt.Profile.SetSiteFields, opt.Profile.MSH10 = true, "replace"
	ms = readAll(t, path, opt)
	out = string(ms[0].Encode(newEnc(), Header{ControlID: "X", Time: testNow}, ms[0].Records))
	for _, want := range []string{"|DEMOORG|CAIR IIS|CAIRBA|", "|Z22^CDCPHINVS|DEMO01\r", "^^^DEMO01|", "V1^DEMOORG"} {
		if !strings.Contains(out, want) {
			t.Errorf("set_site_fields: %q not in\n%s", want, out)
		}
	}
	if ms[0].ControlID != "" {
		t.Errorf("msh10 = replace kept %q", ms[0].ControlID)
	}

	// A test message is not sent as production unless the profile says so.
	test := writeFile(t, "test.hl7", strings.Replace(vxu("C1", "MRN1", "V1"), "|C1|P|", "|C1|T|", 1))
	r := readAll(t, test, hl7Options())[0].Records[0]
	if errs := r.Errors(); len(errs) != 1 || errs[0].Rule != "processing-id" || errs[0].Where != "message 1, MSH-11" {
		t.Errorf("MSH-11 T: %+v", errs)
	}
	if r := readAll(t, test, opt)[0].Records[0]; !r.Valid() {
		t.Errorf("MSH-11 T with set_site_fields: %+v", r.Problems)
	}
	// A control id that cannot be sent as it is is not kept.
	long := writeFile(t, "long.hl7", vxu("A-CONTROL-ID-OF-30-CHARACTERS", "MRN1", "V1"))
	if m := readAll(t, long, hl7Options())[0]; m.ControlID != "" {
		t.Errorf("kept %q", m.ControlID)
	}
}

// TestHL7MessagesStayApart: two messages of one patient are two messages,
// in file order, as the file has them.
func TestHL7MessagesStayApart(t *testing.T) {
	ms := readAll(t, writeFile(t, "p.hl7", vxu("C1", "MRN1", "V1")+vxu("C2", "MRN1", "V2")), hl7Options())
	if len(ms) != 2 || ms[0].Records[0].VaccinationID != "V1" || ms[1].Records[0].VaccinationID != "V2" || ms[1].ControlID != "C2" {
		t.Fatalf("%d messages", len(ms))
	}
}

func TestHL7MessagesThatCannotBeMapped(t *testing.T) {
	noPID := "MSH|^~\\&|A|DEMOORG|||20261120||VXU^V04|N1|P|2.5.1\nORC|RE||V9\nRXA|0|1|20261001||08^HepB^CVX\n"
	noRXA := "MSH|^~\\&|A|DEMOORG|||20261120||VXU^V04|N2|P|2.5.1\nPID|1||MRN1^^^X^MR||Doe^Ann||20200101|F\n"
	orcOnly := strings.Replace(vxu("N3", "MRN3", "V31", "V32"), "RXA|0|1|20261001|", "NTE|1||", 1)
	badMSH := "MSH|^^^^|A\nPID|1\n"
	path := writeFile(t, "odd.hl7", noPID+noRXA+orcOnly+badMSH)
	ms := readAll(t, path, hl7Options())
	var got []string
	for _, m := range ms {
		for _, r := range m.Records {
			s := "ok"
			if !r.Valid() {
				s = r.Errors()[0].Where + " " + r.Errors()[0].Rule
			}
			got = append(got, fmt.Sprintf("%d:%s", r.Line, s))
		}
	}
	want := "1:message 1, PID pid-missing 4:message 2, RXA rxa-missing 8:message 3, RXA rxa-missing 13:ok 16:message 4, MSH-2 hl7-syntax"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestHL7RejectsRows: the rejects file of an HL7 input holds its rejected
// records as rows of the default layout, with where they were.
func TestHL7RejectsRows(t *testing.T) {
	path := writeFile(t, "feed.hl7", vxu("C1", "MRN1", "V1", "V2")+adt)
	var recs []*Record
	for _, m := range readAll(t, path, hl7Options()) {
		recs = append(recs, m.Records...)
	}
	head, err := HeaderLine(path, hl7Options())
	if err != nil || !strings.HasPrefix(string(head), "patient_id,patient_last_name,") || !strings.HasSuffix(string(head), ",immunity_snomed,izdrop_source") {
		t.Fatalf("header %q %v", head, err)
	}
	var rows []string
	i := 1 // the second dose and the ADT
	err = RawRows(path, hl7Options(), func() (int64, int64, bool) {
		if i >= len(recs) {
			return 0, 0, false
		}
		i++
		return recs[i-1].Start, recs[i-1].End, true
	}, func(raw []byte) error { rows = append(rows, string(raw)); return nil })
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %q", err, rows)
	}
	if !strings.HasPrefix(rows[0], "MRN1,Rivera,Ana,") || !strings.Contains(rows[0], ",V2,20261001,08,") || !strings.HasSuffix(rows[0], `,"message 1, line 8"`) {
		t.Errorf("row %q", rows[0])
	}
	if !strings.HasSuffix(rows[1], `,"message 2, line 11"`) || strings.Contains(rows[1], "MRN9") {
		t.Errorf("row %q", rows[1])
	}
}

// TestHL7ValuesMapsApply: a profile's values maps work on HL7 input too.
func TestHL7ValuesMapsApply(t *testing.T) {
	opt := hl7Options()
	opt.Profile.Values = map[string]map[string]string{"patient_sex": {"W": "F"}}
	ms := readAll(t, writeFile(t, "v.hl7", strings.Replace(vxu("C1", "MRN1", "V1"), "|20200501|F|", "|20200501|W|", 1)), opt)
	if r := ms[0].Records[0]; !r.Valid() || r.Row.Get(PatientSex) != "F" {
		t.Errorf("%+v", r.Problems)
	}
}

func TestHL7ReadStopsAtEOF(t *testing.T) {
	r, err := Open(writeFile(t, "one.hl7", vxu("C1", "MRN1", "V1")), hl7Options())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last message: %v", err)
		}
	}
	if p := r.FileProblems(); len(p) != 0 {
		t.Errorf("file problems %v", p)
	}
}
