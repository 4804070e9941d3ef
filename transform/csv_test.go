package transform

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// FuzzCSVReader holds csvReader to encoding/csv's behaviour: the same
// records, fields, errors (with their lines and columns) and input offsets,
// for any input and each delimiter profiles allow.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{
		"a,b,c\n1,2,3\n",
		"\"q,uo\"\"ted\",x\r\n\"multi\nline\",y\n",
		"bare\"quote,x\nok,1\n",
		"\"unterminated,x\nnext\n",
		"\"a\"b,c\n\n\nlast\r",
		"x|y\t\"z;\"\n",
		"\"\"\n\"\n",
		"a,\"b\"\r\n\r\nc",
	} {
		for _, c := range []byte{',', '|', '\t', ';'} {
			f.Add([]byte(s), c)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, comma byte) {
		switch comma {
		case ',', '|', '\t', ';':
		default:
			return
		}
		std := csv.NewReader(bytes.NewReader(data))
		std.Comma = rune(comma)
		std.FieldsPerRecord = -1
		ours := newCSVReader(bytes.NewReader(data), comma)
		for i := 0; ; i++ {
			want, werr := std.Read()
			got, gerr := ours.read()
			if (werr == io.EOF) != (gerr == io.EOF) {
				t.Fatalf("record %d: EOF mismatch: std %v, ours %v", i, werr, gerr)
			}
			if werr == io.EOF {
				return
			}
			var wpe, gpe *csv.ParseError
			if errors.As(werr, &wpe) != errors.As(gerr, &gpe) {
				t.Fatalf("record %d: error mismatch: std %v, ours %v", i, werr, gerr)
			}
			if wpe != nil && !reflect.DeepEqual(*wpe, *gpe) {
				t.Fatalf("record %d: std %#v, ours %#v", i, *wpe, *gpe)
			}
			if wpe == nil {
				var fields []string
				for k := range got.ends {
					fields = append(fields, got.field(k))
				}
				if !reflect.DeepEqual(want, fields) {
					t.Fatalf("record %d: std %q, ours %q", i, want, fields)
				}
				if line, _ := std.FieldPos(0); line != got.line {
					t.Fatalf("record %d: line std %d, ours %d", i, line, got.line)
				}
			}
			if off := std.InputOffset(); off != got.end {
				t.Fatalf("record %d: offset std %d, ours %d", i, off, got.end)
			}
		}
	})
}

func TestConstantsTable(t *testing.T) {
	for i, c := range constants {
		if j, ok := constOf(c); !ok || int(j) != i {
			t.Errorf("constOf(%q) = %d, %v; want %d", c, j, ok, i)
		}
	}
	var r Row
	r.Set(Action, "A")
	r.Set(DoseML, "0.75")
	r.Set(InfoSource, "05")
	if r.Get(Action) != "A" || r.Get(DoseML) != "0.75" || r.Get(InfoSource) != "05" || r.Get(LotNumber) != "" {
		t.Errorf("row: %q %q %q", r.Get(Action), r.Get(DoseML), r.Get(InfoSource))
	}
}

func TestLongLinesAndFields(t *testing.T) {
	long := strings.Repeat("x", 100_000) // longer than the read buffer and than a span can address
	in := "a,b\n" + long + ",\"q" + long + "\"\n1,2\n"
	r := newCSVReader(strings.NewReader(in), ',')
	for i, want := range [][]string{{"a", "b"}, {long, "q" + long}, {"1", "2"}} {
		rec, err := r.read()
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.ends) != 2 || rec.field(0) != want[0] || rec.field(1) != want[1] || rec.line != i+1 {
			t.Fatalf("record %d wrong (line %d)", i, rec.line)
		}
		var row Row
		row.s = rec.s
		row.setSpan(PatientID, 0, rec.ends[0])
		row.setSpan(VaccinationID, rec.ends[0], rec.ends[1])
		if row.Get(PatientID) != want[0] || row.Get(VaccinationID) != want[1] {
			t.Fatalf("record %d: row lost a long value", i)
		}
	}
}
