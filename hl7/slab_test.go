package hl7

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// referenceSegment is the parser as it was before segments were cut from
// slabs: every value, component and repetition allocated on its own. It
// stays here as the reference the slab parser must agree with.
func (d *Delimiters) referenceSegment(line []byte) Segment {
	i := bytes.IndexByte(line, d.Field)
	if i < 0 {
		return Segment{ID: string(line)}
	}
	seg := Segment{ID: string(line[:i])}
	rest := line[i+1:]
	if isHeader(seg.ID) && i == 3 {
		j := bytes.IndexByte(rest, d.Field)
		enc := rest
		if j >= 0 {
			enc, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		seg.Fields = append(seg.Fields, Field{Rep{Comp{string(d.Field)}}}, Field{Rep{Comp{string(enc)}}})
		if j < 0 {
			return seg
		}
	}
	for {
		j := bytes.IndexByte(rest, d.Field)
		if j < 0 {
			return Segment{ID: seg.ID, Fields: append(seg.Fields, d.referenceField(rest))}
		}
		seg.Fields = append(seg.Fields, d.referenceField(rest[:j]))
		rest = rest[j+1:]
	}
}

func (d *Delimiters) referenceField(raw []byte) Field {
	var f Field
	for _, r := range bytes.Split(raw, []byte{d.Repetition}) {
		var rep Rep
		for _, c := range bytes.Split(r, []byte{d.Component}) {
			var comp Comp
			if d.Subcomponent == 0 {
				comp = Comp{d.unescape(c)}
			} else {
				for _, s := range bytes.Split(c, []byte{d.Subcomponent}) {
					comp = append(comp, d.unescape(s))
				}
			}
			rep = append(rep, comp)
		}
		f = append(f, rep)
	}
	return f
}

// delimiterSets are the separators the agreement is checked under: the
// usual ones, none for subcomponents or escapes, and unusual characters.
var delimiterSets = []Delimiters{
	DefaultDelimiters,
	{Field: '|', Component: '^', Repetition: '~', Escape: 0, Subcomponent: 0},
	{Field: '#', Component: ':', Repetition: '*', Escape: '!', Subcomponent: '@'},
}

func checkSlabsAgree(t *testing.T, line []byte) {
	t.Helper()
	for _, d := range delimiterSets {
		got, want := d.parseSegment(line), d.referenceSegment(line)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("delimiters %q, segment %q:\n got %#v\nwant %#v", []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}, line, got, want)
		}
		// A piece appended to must not overwrite its neighbour in the slab.
		for i := range got.Fields {
			before := got.Fields[(i+1)%len(got.Fields)].String()
			_ = append(got.Fields[i], Rep{Comp{"x"}})
			if len(got.Fields[i]) > 0 {
				_ = append(got.Fields[i][0], Comp{"x"})
				if len(got.Fields[i][0]) > 0 {
					_ = append(got.Fields[i][0][0], "x")
				}
			}
			if after := got.Fields[(i+1)%len(got.Fields)].String(); after != before && len(got.Fields) > 1 {
				t.Fatalf("an append to field %d of %q changed the next field: %q, was %q", i+1, line, after, before)
			}
		}
	}
}

// Every segment of every sample, and segments built to stress each level,
// parse as the reference parser parses them.
func TestSlabParserAgreesWithReference(t *testing.T) {
	lines := []string{
		"", "PID", "PID|", "PID||||", "MSH|^~\\&", "MSH|^~\\&|", "MSH|", "MSH",
		"PID|1||P1^^^DEMO01^MR~P2^^^SSA^SS||DOE^JANE^^^^^L||20200115|F",
		"RXA|0|1|20261001||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001|a&b&c^d&&e~~^^~",
		"NTE|1||esc \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\X0D0A\\ open \\",
		"ZZZ|\x00|a\x00b^c\x00d",
		"FHS|^~\\&|x", "BHS|^~\\&|y|z~w",
		"MSH#:*!@#a:b*c@d!X41!",
	}
	for _, l := range lines {
		checkSlabsAgree(t, []byte(l))
	}
	entries, err := os.ReadDir(samples)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".hl7") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(samples, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.FieldsFunc(b, func(r rune) bool { return r == '\r' || r == '\n' }) {
			checkSlabsAgree(t, l)
			n++
		}
	}
	if n < 20 {
		t.Errorf("only %d sample segments checked", n)
	}
}

func FuzzSlabParserAgreesWithReference(f *testing.F) {
	f.Add([]byte("MSH|^~\\&|EHR\rPID|a&b^c~d\\F\\"))
	f.Add([]byte("RXA|0|1|x^y&z~w"))
	f.Fuzz(func(t *testing.T, line []byte) {
		checkSlabsAgree(t, line)
	})
}

func BenchmarkParse(b *testing.B) {
	msg := []byte("MSH|^~\\&|EHR|DEMO01|CAIR IIS|CAIR IIS|20261001120000-0700||VXU^V04^VXU_V04|X1|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMO01\r" +
		"PID|1||P1^^^DEMO01^MR||DOE^JANE^^^^^L|SMITH^MARY^^^^^M|20200115|F||2106-3^White^CDCREC|123 MAIN ST^^SAN FRANCISCO^CA^94110^USA^P||^PRN^PH^^^415^5550100|||||||||2186-5^Not Hispanic^CDCREC\r" +
		"PD1|||||||||||02^Reminder/Recall - any method^HL70215|N|20261001|||A|20261001|20261001\r" +
		"ORC|RE||V1^DEMO01|||||||||1234567890^SMITH^JOHN^^^^^^NPI\r" +
		"RXA|0|1|20261001|20261001|08^Hep B^CVX|0.5|mL^mL^UCUM||00^New Record^NIP001|1234567890^SMITH^JOHN^^^^^^NPI|^^^DEMO01||||L1|20271231|MSD^Merck^MVX|||CP|A\r" +
		"RXR|C28161^Intramuscular^NCIT|LA^Left Arm^HL70163\r" +
		"OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - Medicaid/Medicaid Managed Care^HL70064||||||F|||20261001|||VXC40^Eligibility captured at the immunization level^CDCPHINVS\r")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}
