package ack

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/izdrop/izdrop/hl7"
)

// Parse reads only an ACK's delimiters, MSAs and ERRs: for every sample
// (and a few oddities) they are the segments the whole message holds.
func TestEssentialsKeepEveryMSAAndERR(t *testing.T) {
	samples, _ := filepath.Glob("../testdata/hl7-samples/ack_*.hl7")
	texts := []string{
		"\ufeff\r\nMSH|^~\\&|A|B\nMSA|AA|X\n\nERR|||101^x^HL70357|W\r\n",
		"MSH#^~\\&#A\rMSA#AE#Y#text\rERR###103#E\rNTE#ignored",
		"MSH|^~\\&\rMSA\rERR",
		"MSH",
		"BHS|^~\\&|X\rMSH|^~\\&|Y\rMSA|AA|Z",
	}
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	pick := func(m *hl7.Message) []hl7.Segment {
		var out []hl7.Segment
		for _, s := range m.Segments {
			if s.ID == "MSA" || s.ID == "ERR" {
				out = append(out, s)
			}
		}
		return out
	}
	for _, text := range texts {
		full, ferr := hl7.Parse([]byte(text))
		part, perr := hl7.Parse(essentials([]byte(text)))
		if (ferr == nil) != (perr == nil) {
			t.Errorf("%q: %v / %v", text, ferr, perr)
			continue
		}
		if ferr == nil && (!reflect.DeepEqual(pick(full), pick(part)) || full.Delims != part.Delims) {
			t.Errorf("%q:\n%+v\n%+v", text, pick(full), pick(part))
		}
	}
}
