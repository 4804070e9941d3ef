package hl7

import (
	"errors"
	"fmt"
)

// Delimiters are the separator characters of one message, read from MSH-1
// and MSH-2.
type Delimiters struct {
	Field        byte
	Component    byte
	Repetition   byte
	Escape       byte // 0 when the message declares no escape character
	Subcomponent byte
}

// DefaultDelimiters are |^~\& , the only set izdrop writes.
var DefaultDelimiters = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// EncodingCharacters returns MSH-2 for d.
func (d Delimiters) EncodingCharacters() string {
	b := []byte{d.Component, d.Repetition}
	if d.Escape != 0 {
		b = append(b, d.Escape)
		if d.Subcomponent != 0 {
			b = append(b, d.Subcomponent)
		}
	}
	return string(b)
}

var errBadDelimiters = errors.New("invalid delimiters in MSH-1/MSH-2")

// delimitersFrom reads the delimiters of a header segment (MSH, FHS, BHS)
// whose text starts at line.
func delimitersFrom(line []byte) (Delimiters, int, error) {
	if len(line) < 4 {
		return Delimiters{}, 0, fmt.Errorf("%w: header segment too short", errBadDelimiters)
	}
	d := Delimiters{Field: line[3]}
	i := 4
	enc := make([]byte, 0, 4)
	for i < len(line) && line[i] != d.Field && len(enc) < 5 {
		enc = append(enc, line[i])
		i++
	}
	if len(enc) < 2 {
		return Delimiters{}, 0, fmt.Errorf("%w: MSH-2 %q needs at least component and repetition separators", errBadDelimiters, enc)
	}
	d.Component, d.Repetition = enc[0], enc[1]
	if len(enc) > 2 {
		d.Escape = enc[2]
	}
	if len(enc) > 3 {
		d.Subcomponent = enc[3]
	}
	seen := map[byte]bool{}
	for _, c := range append([]byte{d.Field}, enc[:min(len(enc), 4)]...) {
		if c == 0 || c == '\r' || c == '\n' || isAlnum(c) || seen[c] {
			return Delimiters{}, 0, fmt.Errorf("%w: %q", errBadDelimiters, line[3:i])
		}
		seen[c] = true
	}
	return d, i, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Unescape decodes the escape sequences of one raw value (a subcomponent,
// or a component or field holding no separators), as Parse does: for a
// reader that picks values out of segment text itself.
func (d Delimiters) Unescape(raw []byte) string { return d.unescape(raw) }

// unescape decodes the escape sequences of one raw leaf value. Unknown or
// unterminated sequences are kept as they are, formatting commands (\H\,
// \N\) are dropped, \.br\ becomes a line feed.
func (d *Delimiters) unescape(raw []byte) string {
	e := d.Escape
	if e == 0 {
		return string(raw)
	}
	first := -1
	for i, c := range raw {
		if c == e {
			first = i
			break
		}
	}
	if first < 0 {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	out = append(out, raw[:first]...)
	for i := first; i < len(raw); {
		c := raw[i]
		if c != e {
			out = append(out, c)
			i++
			continue
		}
		end := -1
		for j := i + 1; j < len(raw); j++ {
			if raw[j] == e {
				end = j
				break
			}
		}
		if end < 0 {
			out = append(out, raw[i:]...)
			break
		}
		seq := raw[i+1 : end]
		switch {
		case len(seq) == 1 && seq[0] == 'F':
			out = append(out, d.Field)
		case len(seq) == 1 && seq[0] == 'S':
			out = append(out, d.Component)
		case len(seq) == 1 && seq[0] == 'T':
			if d.Subcomponent != 0 {
				out = append(out, d.Subcomponent)
			}
		case len(seq) == 1 && seq[0] == 'R':
			out = append(out, d.Repetition)
		case len(seq) == 1 && seq[0] == 'E':
			out = append(out, e)
		case len(seq) == 1 && (seq[0] == 'H' || seq[0] == 'N'):
			// highlighting on/off: no meaning in plain text
		case string(seq) == ".br":
			out = append(out, '\n')
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1 && allHex(seq[1:]):
			for k := 1; k < len(seq); k += 2 {
				out = append(out, hexVal(seq[k])<<4|hexVal(seq[k+1]))
			}
		default:
			out = append(out, raw[i:end+1]...)
		}
		i = end + 1
	}
	return string(out)
}

func allHex(b []byte) bool {
	for _, c := range b {
		if hexVal(c) == 0xff {
			return false
		}
	}
	return true
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
