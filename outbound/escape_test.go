package outbound

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// escapeText writes what xml.EscapeText writes, for HL7's ASCII and for
// what is not ASCII, not valid UTF-8 or not allowed in XML.
func TestEscapeTextIsEncodingXMLs(t *testing.T) {
	for _, s := range []string{
		"",
		"MSH|^~\\&|EHR|DEMO01\rPID|1||P1^^^DEMO01^MR\r",
		`<a href="x">'&'</a>`,
		"tab\there\nnewline\rcr",
		"Peña José\u00a0Ünïcode ✓",
		"bad utf-8 \xff\xfe here & after",
		"control \x01\x07\x1f and DEL \x7f",
		"ends on an escape &",
	} {
		sameAsEncodingXML(t, s)
	}
}

func FuzzEscapeText(f *testing.F) {
	f.Add("MSH|^~\\&|\rPID|<>\"'\t\n")
	f.Add("\xff\x00é")
	f.Fuzz(sameAsEncodingXML)
}

// sameAsEncodingXML fails t unless escapeText writes s as xml.EscapeText.
func sameAsEncodingXML(t *testing.T, s string) {
	var got, want bytes.Buffer
	escapeText(&got, s)
	xml.EscapeText(&want, []byte(s))
	if got.String() != want.String() {
		t.Errorf("escapeText(%q) = %q, encoding/xml writes %q", s, got.String(), want.String())
	}
}
