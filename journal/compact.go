// Compact values: what the journal keeps of every record for as long as it
// keeps the record is stored small.

package journal

import (
	"encoding/hex"
	"strings"
)

// packHash keeps a hex SHA-256 (a record's content hash) as its 32 bytes,
// anything else as it is.
func packHash(h string) any {
	if len(h) == 64 {
		if b, err := hex.DecodeString(h); err == nil {
			return b
		}
	}
	return h
}

func unpackHash(v any) string {
	switch v := v.(type) {
	case []byte:
		return hex.EncodeToString(v)
	case string:
		return v
	}
	return ""
}

// ACKs are kept with the phrases registries' ACKs share - CAIR's header
// fields, the MSA and ERR openings, the HL7 table names, the texts of
// common errors - each written as one byte: a 170-byte AA takes about 70.
// What is left is the time, the ids and the text particular to the
// message. HL7 text holds no control characters but CR (and, from a sloppy
// registry, LF or TAB), so bytes 0x01-0x1f other than those are free to
// stand for phrases. A stored ACK starting with byte ackPhrases1 is coded
// so; anything else (journals of earlier izdrop versions, an ACK with
// other control characters) is the text as it was received.
//
// The phrase table is part of the format: never change or reorder it; add
// a new format byte and table instead.
const ackPhrases1 = 0x02

var phrases1 = [...]string{
	0x01: "MSH|^~\\&|CAIR IIS",
	0x03: "|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS|CAIR IIS|",
	0x04: "||ACK^V04^ACK|",
	0x05: "|CAIR IIS|",
	0x06: "\rMSA|AA|",
	0x07: "\rMSA|AE|",
	0x08: "\rMSA|AR|",
	0x0b: "\rERR||",
	0x0c: "|P|2.5.1|",
	0x0e: "^Message accepted^HL70357|",
	0x0f: "^Required field missing^HL70357|",
	0x10: "^Table value not found^HL70357|",
	0x11: "^Data type error^HL70357|",
	0x12: "^Application error^HL70357|",
	0x13: "^HL70357|",
	0x14: "^HL70533|",
	0x15: "|||Informational error - ",
	0x16: "|||MESSAGE REJECTED - ",
	0x17: "Informational error - ",
	0x18: "MESSAGE REJECTED - ",
	0x19: "izdrop ",
	0x1a: "^CDCPHINVS",
	0x1b: "RXA^1^",
	0x1c: "ORC^1^",
	0x1d: "PID^1^",
	0x1e: "RXR^1^",
	0x1f: "No value was entered for ",
}

// byFirst lists, for each first byte, the phrases starting with it,
// longest first.
var byFirst = func() (t [256][]byte) {
	for code, p := range phrases1 {
		if p != "" {
			t[p[0]] = append(t[p[0]], byte(code))
		}
	}
	for _, codes := range t {
		for i := 1; i < len(codes); i++ {
			for k := i; k > 0 && len(phrases1[codes[k]]) > len(phrases1[codes[k-1]]); k-- {
				codes[k], codes[k-1] = codes[k-1], codes[k]
			}
		}
	}
	return t
}()

// packACK returns what is stored for an ACK text.
func packACK(text string) any {
	for i := 0; i < len(text); i++ {
		if c := text[i]; c < 0x20 && c != '\r' && c != '\n' && c != '\t' {
			return text
		}
	}
	out := make([]byte, 1, len(text)/2+16)
	out[0] = ackPhrases1
	for i := 0; i < len(text); {
		code := byte(0)
		for _, c := range byFirst[text[i]] {
			if strings.HasPrefix(text[i:], phrases1[c]) {
				code = c
				break
			}
		}
		if code == 0 {
			out = append(out, text[i])
			i++
			continue
		}
		out = append(out, code)
		i += len(phrases1[code])
	}
	if len(out) >= len(text) {
		return text
	}
	return out
}

// unpackACK returns the ACK text of what was stored.
func unpackACK(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		if len(v) == 0 || v[0] != ackPhrases1 {
			return string(v)
		}
		var b strings.Builder
		b.Grow(2 * len(v))
		for _, c := range v[1:] {
			if int(c) < len(phrases1) && phrases1[c] != "" {
				b.WriteString(phrases1[c])
			} else {
				b.WriteByte(c)
			}
		}
		return b.String()
	}
	return ""
}
