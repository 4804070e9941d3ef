package ack

import (
	"regexp"
	"strconv"
	"strings"
)

// Redact masks what registry text can echo of a patient before it goes to a
// log: HL7 segments that carry patient data (PID, PD1, NK1, PV1, IN1, GT1)
// are removed whole, quoted text (registries quote names: `Patient X
// "Jane Doe" accepted`), dates and long digit runs (birth dates, phone
// numbers) are masked, and the result is bounded. Codes, field locations
// and rule texts survive, which is what a log reader needs.
func Redact(s string) string {
	// Where the endpoint is - its URL, a host's address and port - is not
	// patient data, and is what a person needs to fix a connection: it is
	// set aside before the rest is redacted, and put back after.
	var kept []string
	keep := func(m string) string {
		kept = append(kept, m)
		return "\x00" + strconv.Itoa(len(kept)-1) + "\x00"
	}
	s = endpointURL.ReplaceAllStringFunc(s, keep)
	s = hostPort.ReplaceAllStringFunc(s, keep)
	s = patientSegments.ReplaceAllString(s, "[segment removed]")
	s = quoted.ReplaceAllStringFunc(s, func(q string) string {
		if placeholder.MatchString(q) && placeholder.ReplaceAllString(q[1:len(q)-1], "") == "" {
			return q // a quoted URL
		}
		return `"[redacted]"`
	})
	s = dateLike.ReplaceAllString(s, "[date]")
	s = digitRun.ReplaceAllString(s, "[number]")
	s = placeholder.ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(strings.Trim(m, "\x00"))
		return kept[i]
	})
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

var (
	endpointURL     = regexp.MustCompile(`https?://[A-Za-z0-9.\-]+(?::\d+)?(?:/[A-Za-z0-9._\-/]*)?`)
	hostPort        = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}:\d{1,5}\b|\[[0-9a-fA-F:]+\]:\d{1,5}`)
	placeholder     = regexp.MustCompile("\x00\\d+\x00")
	patientSegments = regexp.MustCompile(`(?:^|[\r\n]|\s)(?:PID|PD1|NK1|PV1|IN1|GT1)\|[^\r\n]*`)
	quoted          = regexp.MustCompile(`"[^"]*"|'[^']{2,}'`)
	dateLike        = regexp.MustCompile(`\b(?:19|20)\d{6}\b|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b`)
	digitRun        = regexp.MustCompile(`\d[\d\-\s().]{5,}\d`)
)
