package ack

import (
	"regexp"
	"strings"
)

// Redact masks what registry text can echo of a patient before it goes to a
// log: HL7 segments that carry patient data (PID, PD1, NK1, PV1, IN1, GT1)
// are removed whole, quoted text (registries quote names: `Patient X
// "Jane Doe" accepted`), dates and long digit runs (birth dates, phone
// numbers) are masked, and the result is bounded. Codes, field locations
// and rule texts survive, which is what a log reader needs.
func Redact(s string) string {
	s = patientSegments.ReplaceAllString(s, "[segment removed]")
	s = quoted.ReplaceAllString(s, `"[redacted]"`)
	s = dateLike.ReplaceAllString(s, "[date]")
	s = digitRun.ReplaceAllString(s, "[number]")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

var (
	patientSegments = regexp.MustCompile(`(?:^|[\r\n]|\s)(?:PID|PD1|NK1|PV1|IN1|GT1)\|[^\r\n]*`)
	quoted          = regexp.MustCompile(`"[^"]*"|'[^']{2,}'`)
	dateLike        = regexp.MustCompile(`\b(?:19|20)\d{6}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b`)
	digitRun        = regexp.MustCompile(`\d[\d\-\s().]{5,}\d`)
)
