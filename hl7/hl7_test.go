package hl7

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const samples = "../testdata/hl7-samples"

type sampleEntry struct {
	File             string   `json:"file"`
	Kind             string   `json:"kind"`
	MSH9             string   `json:"msh9"`
	MSA1             []string `json:"msa1"`
	SegmentSeparator string   `json:"segment_separator"`
}

func loadIndex(t *testing.T) []sampleEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samples, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx []sampleEntry
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx) < 29 {
		t.Fatalf("index has %d entries, want every sample", len(idx))
	}
	return idx
}

func TestParseEverySample(t *testing.T) {
	for _, s := range loadIndex(t) {
		t.Run(s.File, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(samples, s.File))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if m.Segments[0].ID != "MSH" {
				t.Fatalf("first segment %q", m.Segments[0].ID)
			}
			wantSegs := bytes.Count(raw, []byte("\r")) + bytes.Count(raw, []byte("\n"))
			if !bytes.HasSuffix(raw, []byte("\r")) && !bytes.HasSuffix(raw, []byte("\n")) {
				wantSegs++
			}
			if wantSegs != len(m.Segments) {
				t.Errorf("segments = %d, want %d (one per line)", len(m.Segments), wantSegs)
			}
			// MSH-9 as recorded in the index, rebuilt from the parsed components.
			msh, _ := m.First("MSH")
			var parts []string
			for _, c := range msh.Field(9).Rep(1) {
				parts = append(parts, c.String())
			}
			if got := strings.Join(parts, "^"); got != s.MSH9 && s.MSH9 != "" {
				t.Errorf("MSH-9 = %q, want %q", got, s.MSH9)
			}
			if s.Kind == "ACK" {
				if got := m.Get("MSA-1"); got != s.MSA1[0] {
					t.Errorf("MSA-1 = %q, want %q", got, s.MSA1[0])
				}
			} else if m.Count("RXA") == 0 {
				t.Errorf("VXU without RXA")
			}
			// Re-encoding and re-parsing gives the same text again.
			enc := m.Encode()
			m2, err := Parse(enc)
			if err != nil {
				t.Fatalf("reparse: %v", err)
			}
			if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
				t.Errorf("encode not stable:\n%q\n%q", enc, enc2)
			}
		})
	}
}

func TestParseSampleValues(t *testing.T) {
	read := func(name string) *Message {
		raw, err := os.ReadFile(filepath.Join(samples, name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	esc := read("vxu_01_nist_ad2_escapes.hl7")
	cases := []struct {
		m    *Message
		path string
		want string
	}{
		{esc, "OBX[6]-5.2", "Deployed & mission essential personnel"}, // \T\ in the source
		{esc, "PID-3.4", "NIST-MPI-1"},
		{esc, "PID-13[2].4", "Elise.Wong@isp.com"},
		{esc, "RXA-5.1", "135"},
		{esc, "MSH-21.1", "Z22"},
		{esc, "MSH-1", "|"},
		{esc, "MSH-2", `^~\&`},
		{read("ack_10_cair2_warning.hl7"), "ERR-2.4", "1"},
		{read("ack_10_cair2_warning.hl7"), "ERR-8", "Informational error - No value was entered for RXA-10.13"},
		{read("vxu_10_mqe_cair_example.hl7"), "PID-3[2].4.2", "2.16.840.1.000000.3.3540.100"},
		{read("vxu_12_mqe_lf.hl7"), "RXA-17.2", "Merck and Co"}, // LF-separated message
		{read("ack_14_staging_msa3.hl7"), "MSA-2", "3C8i-A.01.07.XJ"},
	}
	for _, c := range cases {
		if got := c.m.Get(c.path); got != c.want {
			t.Errorf("%s = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestUnescape(t *testing.T) {
	d := DefaultDelimiters
	cases := map[string]string{
		`a\F\b`:          "a|b",
		`a\S\b\T\c\R\d`:  "a^b&c~d",
		`back\E\slash`:   `back\slash`,
		`\X0D\\X0A\`:     "\r\n",
		`\X414243\`:      "ABC",
		`x\H\bold\N\y`:   "xboldy",
		`line\.br\two`:   "line\ntwo",
		`\Zcustom\ kept`: `\Zcustom\ kept`,
		`open\F`:         `open\F`,
		`\X4\`:           `\X4\`, // odd hex length: kept
		`\XZZ\`:          `\XZZ\`,
	}
	for in, want := range cases {
		if got := d.unescape([]byte(in)); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncoderEscapesAndTrims(t *testing.T) {
	e := NewEncoder(DefaultDelimiters)
	e.Segment("MSH")
	e.F("APP")
	e.At(9)
	e.Comps("VXU", "V04", "VXU_V04")
	e.Segment("PID")
	e.F("1")
	e.Field() // PID-2 empty
	e.Field()
	CX{ID: "A|B^C", AssigningAuthority: HD{NamespaceID: "AUTH"}, IDType: "MR"}.Put(e)
	e.Field()
	e.Field()
	XPN{Family: "O'Brien~Smith", Given: `Ann\Marie`, NameType: "L"}.Put(e)
	e.F("", "", "") // trailing empty field: nothing written
	e.Segment("NTE")
	e.F("line1\r\nline2")
	got := string(e.Bytes())
	want := "MSH|^~\\&|APP||||||VXU^V04^VXU_V04\r" +
		"PID|1||A\\F\\B\\S\\C^^^AUTH^MR||O'Brien\\R\\Smith^Ann\\E\\Marie^^^^^L\r" +
		"NTE|line1\\X0D\\\\X0A\\line2\r"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	m, err := Parse(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Get("PID-3.1"); v != "A|B^C" {
		t.Errorf("PID-3.1 round trip = %q", v)
	}
	if v := ParseXPN(m.All("PID")[0].Field(5).Rep(1)); v.Given != `Ann\Marie` || v.Family != "O'Brien~Smith" {
		t.Errorf("XPN round trip = %+v", v)
	}
	if v := m.Get("NTE-1"); v != "line1\r\nline2" {
		t.Errorf("CR/LF round trip = %q", v)
	}
}

func TestSubcomponents(t *testing.T) {
	e := NewEncoder(DefaultDelimiters)
	e.Segment("ORC")
	e.At(12)
	x := XCN{ID: "1234567893", Family: "Lee", Given: "Ann", AssigningAuthority: HD{NamespaceID: "CMS", UniversalID: "2.16.840.1.113883.4.6", UniversalIDType: "ISO"}, NameType: "L", IDType: "NPI"}
	x.Put(e)
	got := string(e.Bytes())
	want := "ORC||||||||||||1234567893^Lee^Ann^^^^^^CMS&2.16.840.1.113883.4.6&ISO^L^^^NPI\r"
	if got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	m, err := Parse([]byte("MSH|^~\\&\r" + got))
	if err != nil {
		t.Fatal(err)
	}
	orc, _ := m.First("ORC")
	if back := ParseXCN(orc.Field(12).Rep(1)); back != x {
		t.Errorf("XCN round trip = %+v", back)
	}
}

func TestParseLineEndingsAndDelimiters(t *testing.T) {
	for name, text := range map[string]string{
		"CR":   "MSH|^~\\&|A\rPID|1||X\r",
		"LF":   "MSH|^~\\&|A\nPID|1||X\n",
		"CRLF": "MSH|^~\\&|A\r\nPID|1||X\r\n",
		"none": "\ufeff\r\nMSH|^~\\&|A\r\n\r\nPID|1||X",
	} {
		m, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.Segments) != 2 || m.Get("PID-3") != "X" || m.Get("MSH-3") != "A" {
			t.Errorf("%s: %+v", name, m.Segments)
		}
	}
	// Other delimiters, declared in MSH-1/MSH-2, are honoured.
	m, err := Parse([]byte("MSH#:*!@#APP#FAC\rPID#1##ID:::AUTH@X:MR#N*M\r"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Get("PID-3.4.1") != "AUTH" || m.Get("PID-3.4.2") != "X" || m.Get("PID-4[2]") != "M" || m.Get("MSH-4") != "FAC" {
		t.Errorf("custom delimiters: %+v", m.Segments[1])
	}
	for _, bad := range []string{"", "PID|1", "MSH", "MSH|", "MSH|^", "MSH|^^~\\", "MSHa^~\\&"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestParseTS(t *testing.T) {
	ok := map[string]Precision{
		"2024":                    Year,
		"202402":                  Month,
		"20240229":                Day,
		"2024022913":              Hour,
		"202402291305":            Minute,
		"20240229130507":          Second,
		"20240229130507.1234":     Fraction,
		"20240229130507-0800":     Second,
		"20150624073734.034-0500": Fraction,
		"200906040000-0500":       Minute,
	}
	for s, p := range ok {
		_, got, err := ParseTS(s, nil)
		if err != nil || got != p {
			t.Errorf("ParseTS(%q) = %v, %v; want precision %v", s, got, err, p)
		}
	}
	for _, s := range []string{"", "2023022", "20230229", "20241301", "2024010124", "abcd", "20240101+08", "20240101.5", "20150924162038- 0500"} {
		if _, _, err := ParseTS(s, nil); err == nil {
			t.Errorf("ParseTS(%q) accepted", s)
		}
	}
	tm, _, _ := ParseTS("20240229130507-0800", nil)
	if want := time.Date(2024, 2, 29, 21, 5, 7, 0, time.UTC); !tm.Equal(want) {
		t.Errorf("offset applied wrongly: %v", tm)
	}
	if got := FormatTS(tm.In(time.FixedZone("", -8*3600))); got != "20240229130507-0800" {
		t.Errorf("FormatTS = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	entries, _ := os.ReadDir(samples)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".hl7") {
			b, _ := os.ReadFile(filepath.Join(samples, e.Name()))
			f.Add(b)
		}
	}
	f.Add([]byte("MSH|^~\\&|\\X0D\\|\\F\\\rPID|a&b^c~d\\"))
	f.Add([]byte("MSH#:*!@\r"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip unchanged.
		enc := m.Encode()
		m2, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v\n%q", err, enc)
		}
		if enc2 := m2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip changed the message:\n%q\n%q", enc, enc2)
		}
		_ = m.Get("MSH-9.2")
		_ = m.Get("ERR[2]-2.4")
		for _, s := range m.Segments {
			for i := range s.Fields {
				f := s.Field(i + 1)
				_ = ParseXCN(f.Rep(1))
				_ = ParseCX(f.Rep(1))
				_, _, _ = ParseTS(f.String(), nil)
			}
		}
	})
}

func TestRawAndPreEncoded(t *testing.T) {
	ce := DefaultDelimiters.Encode("V02", "VFC eligible - Medicaid|Medi-Cal", "HL70064", "", "")
	if ce != `V02^VFC eligible - Medicaid\F\Medi-Cal^HL70064` {
		t.Fatalf("Encode = %q", ce)
	}
	e := NewEncoder(DefaultDelimiters)
	e.Segment("OBX")
	e.F("1")
	e.At(5)
	e.Raw(ce)
	e.At(11)
	e.Raw("F")
	e.Raw("")
	got := string(e.Bytes())
	if got != "OBX|1||||V02^VFC eligible - Medicaid\\F\\Medi-Cal^HL70064||||||F\r" {
		t.Fatalf("got %q", got)
	}
	m, _ := Parse([]byte("MSH|^~\\&\r" + got))
	if m.Get("OBX-5.2") != "VFC eligible - Medicaid|Medi-Cal" || m.Get("OBX-11") != "F" {
		t.Errorf("parsed back: %q %q", m.Get("OBX-5.2"), m.Get("OBX-11"))
	}
}

func TestEncoderTime(t *testing.T) {
	e := NewEncoder(DefaultDelimiters)
	e.Segment("MSH")
	e.Field()
	e.Field()
	e.Field()
	e.Field()
	e.Field()
	e.Time(time.Date(2026, 11, 25, 9, 30, 5, 0, time.FixedZone("", -8*3600)))
	if got := string(e.Bytes()); got != "MSH|^~\\&|||||20261125093005-0800\r" {
		t.Fatalf("got %q", got)
	}
}

func TestParseSegmentMatchesParse(t *testing.T) {
	text := "MSH|^~\\&|A|B\rPID|1||M1^^^X^MR~M2||Doe^Ann\\T\\Lee||20200101\rZZZ|a\\F\\b"
	m, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(text, "\r") {
		got := m.Delims.ParseSegment([]byte(line))
		if !reflect.DeepEqual(got, m.Segments[i]) {
			t.Errorf("segment %d: ParseSegment %#v, Parse %#v", i, got, m.Segments[i])
		}
	}
}

func TestUnescapeMatchesParse(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|A\rNTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\\\.br\\g\\H\\\\Q\\"))
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41\\\\.br\\g\\H\\\\Q\\")
	if got, want := m.Delims.Unescape(raw), m.Segments[1].Get(3, 1); got != want || got != "a|b^c&d~e\\fA\ng\\Q\\" {
		t.Errorf("Unescape %q, Parse %q", got, want)
	}
}
