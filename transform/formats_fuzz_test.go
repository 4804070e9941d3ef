package transform

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/izdrop/izdrop/hl7"
)

// checkReader reads a whole file and holds the reader to what the service
// relies on, whatever the input: Open and Next fail only with a
// *FileError; records come in file order with distinct lines and byte
// ranges; a record that is not valid says why; what would be sent parses
// as one VXU^V04; and the rejects rows of every record can be made.
func checkReader(t *testing.T, path string, opt Options) {
	t.Helper()
	r, err := Open(path, opt)
	var fe *FileError
	if err != nil {
		if !errors.As(err, &fe) {
			t.Fatalf("Open: %T %v, want a *FileError", err, err)
		}
		return
	}
	defer r.Close()
	r.FileProblems()
	enc := newEnc()
	var recs []*Record
	lastLine, lastEnd := 0, int64(0)
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.As(err, &fe) {
				t.Fatalf("Next: %T %v, want a *FileError", err, err)
			}
			return
		}
		if len(m.Records) == 0 {
			t.Fatal("a message without records")
		}
		for _, rec := range m.Records {
			if rec.Line <= lastLine || rec.Start < lastEnd || rec.End < rec.Start {
				t.Fatalf("record at line %d (bytes %d-%d) after line %d (ending at byte %d)", rec.Line, rec.Start, rec.End, lastLine, lastEnd)
			}
			lastLine, lastEnd = rec.Line, rec.End
			if !rec.Valid() && len(rec.Errors()) == 0 {
				t.Fatal("an invalid record without an error")
			}
			for _, p := range rec.Problems {
				// A patient's problems name the line of the message's first
				// record.
				if p.Text == "" || p.Rule == "" || p.Line < m.Records[0].Line || p.Line > rec.Line {
					t.Fatalf("problem %+v of the record at line %d", p, rec.Line)
				}
			}
			recs = append(recs, rec)
		}
		send := m.Sendable()
		if len(send) == 0 {
			continue
		}
		out := m.Encode(enc, Header{ControlID: "FUZZ", Time: testNow}, send)
		msg, err := hl7.Parse(out)
		if err != nil || msg.Get("MSH-9.1") != "VXU" || msg.Count("MSH") != 1 || msg.Count("RXA") != len(send) {
			t.Fatalf("the message sent does not parse as one VXU with %d RXA: %v\n%q", len(send), err, out)
		}
	}
	i := 0
	err = RawRows(path, opt, func() (int64, int64, bool) {
		if i == len(recs) {
			return 0, 0, false
		}
		i++
		return recs[i-1].Start, recs[i-1].End, true
	}, func(raw []byte) error {
		if len(raw) == 0 {
			t.Fatal("an empty rejects row")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("RawRows: %v", err)
	}
	if _, err := HeaderLine(path, opt); err != nil {
		t.Fatalf("HeaderLine: %v", err)
	}
}

func FuzzHL7Reader(f *testing.F) {
	ex, _ := os.ReadFile("../examples/clinic-day-batch.hl7")
	one := vxu("C1", "MRN1", "V1", "V2")
	for _, s := range []string{
		string(ex),
		strings.ReplaceAll(string(ex), "\n", "\r"),
		one + adt + one,
		"\x0b" + strings.ReplaceAll(one, "\n", "\r") + "\x1c\r",
		batch("1", one),
		batch("2", one),
		"FHS|^~\\&\n" + one + "FTS|1\n",
		"MSH|^~\\&|A\nPID|1\nRXA|0|1|x\nRXA|\nORC|\nOBX|1|CE|64994-7|1|V01\n",
		"MSH|#~\\&|A\n",
		"MSH|^~\\&|||||||VXU^V04|\nPID|1||M^^^^MR~N^^^^PI||\\F\\^\\S\\||2020\nORC|RE||\\T\\\nRXA|0|1|20200101||08^^HL70292|999\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(one), true)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, siteFields bool) {
		checkSegViews(t, data)
		path := filepath.Join(dir, "fuzz.hl7")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		opt := hl7Options()
		opt.Profile.SetSiteFields = siteFields
		checkReader(t, path, opt)
	})
}

func FuzzFHIRReader(f *testing.F) {
	pats, _ := os.ReadFile("../examples/clinic-day-Patient.ndjson")
	imms, _ := os.ReadFile("../examples/clinic-day-Immunization.ndjson")
	f.Add(pats, imms, false)
	f.Add([]byte(fhirPatientLine("p1", "MRN1", "2020-05-01")), []byte(fhirImmLine("V1", "p1")+"\n{broken\n"+fhirImmLine("V2", "p2")), false)
	f.Add([]byte(fhirPatientLine("p1", "MRN1", "2020-05-01")+"\n"+fhirPatientLine("p1", "MRN1", "2020-05-01")),
		[]byte(fhirImmLine("V1", "p1", "status", `"not-done"`, "statusReason", `{"coding":[{"code":"PATOBJ"}]}`)), false)
	f.Add([]byte(nil), []byte(`{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:1","resource":`+fhirPatientLine("p1", "MRN1", "2020-05-01")+
		`},{"resource":`+fhirImmLine("V1", "urn:uuid:1")+`}]}`), true)
	f.Add([]byte(nil), []byte("{\n \"resourceType\": \"Bundle\",\n \"entry\": [\n"), true)
	f.Add([]byte(nil), append(append([]byte{}, pats...), imms...), true)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, patients, data []byte, single bool) {
		name := "fuzz-Immunization.ndjson"
		if single {
			name = "fuzz.json"
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "fuzz-Patient.ndjson"), patients, 0o600); err != nil {
			t.Fatal(err)
		}
		checkReader(t, path, fhirOptions())
	})
}

// checkSegViews holds segView to hl7.ParseSegment: the same value at every
// place, for the first segments of data, read with the delimiters of the
// first MSH (or the default ones).
func checkSegViews(t *testing.T, data []byte) {
	d := hl7.DefaultDelimiters
	lines := strings.FieldsFunc(string(data), func(r rune) bool { return r == '\r' || r == '\n' })
	for _, l := range lines {
		if strings.HasPrefix(l, "MSH") {
			if m, err := hl7.Parse([]byte(l)); err == nil {
				d = m.Delims
			}
			break
		}
	}
	for i, l := range lines {
		if i == 12 {
			break
		}
		v := newSegView(d, []byte(l))
		if v.id == "" || len(l) > 3 && l[3] != d.Field {
			continue // not a segment the reader maps
		}
		seg := d.ParseSegment([]byte(l))
		for n := 1; n <= 24; n++ {
			if v.header && n <= 2 {
				// MSH-1 and MSH-2 are the delimiters, which the reader
				// takes from hl7.Parse (ParseSegment gives MSH-1 as
				// the rune of its byte: not the byte when it is not ASCII).
				continue
			}
			for c := 1; c <= 7; c++ {
				if got, want := v.get(n, c), seg.Get(n, c); got != want {
					t.Fatalf("%q: get(%d, %d) = %q, ParseSegment has %q", l, n, c, got, want)
				}
				for r := 1; r <= 2; r++ {
					for sub := 1; sub <= 2; sub++ {
						if got, want := v.value(v.rep(n, r), c, sub), seg.Field(n).Rep(r).Comp(c).Sub(sub); got != want {
							t.Fatalf("%q: %d[%d].%d.%d = %q, ParseSegment has %q", l, n, r, c, sub, got, want)
						}
					}
				}
			}
		}
	}
}

func TestSegViewMatchesParseSegment(t *testing.T) {
	checkSegViews(t, []byte("MSH|^~\\&|A^B&C|D~E||\r"+
		"PID|1||M1^^^AUTH&1.2&ISO^MR~M2^^^X^PI||Doe\\T\\Smith&pre^Ann~Alias^B||20200101|F||2106-3^White^CDCREC~2028-9|"+
		"1 \\F\\ St^^City^CA^94000^USA^H^^06001\r"+
		"RXA|0|1|20261001||08^HepB^CVX|0.5|mL^mL^UCUM||00^^NIP001|^Ng^Kim|^^^SITE&x|||||||||CP|A\r"+
		"OBX|1|CE|64994-7^^LN||V02\r"+
		"ZZZ\r"+
		"NTE\r"))
	checkSegViews(t, []byte("MSH#^~\\&#A#B\rPID#1##X^^^Y^MR#a|b\r"))
	checkSegViews(t, []byte("MSH|^~|A^B&C|D\rPID|1||X&Y^Z\r")) // no escape or subcomponent character
}
