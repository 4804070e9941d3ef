package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrNoHeader is returned when the text does not begin with an MSH (or FHS /
// BHS) segment.
var ErrNoHeader = errors.New("hl7: message does not start with an MSH segment")

// ParseError says where a message could not be read.
type ParseError struct {
	Offset int // byte offset in the input
	Err    error
}

func (e *ParseError) Error() string { return fmt.Sprintf("hl7: at byte %d: %v", e.Offset, e.Err) }
func (e *ParseError) Unwrap() error { return e.Err }

// Parse reads one message (or a batch's worth of segments: it does not stop
// at a second MSH). Segments may end with \r, \n or \r\n; blank lines and a
// leading byte-order mark or white space are skipped. Parse never panics.
func Parse(data []byte) (*Message, error) {
	start := 0
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	for start < len(data) && (data[start] == ' ' || data[start] == '\t' || data[start] == '\r' || data[start] == '\n') {
		start++
	}
	data = data[start:]
	if len(data) < 3 || !isHeader(string(data[:3])) {
		return nil, &ParseError{Offset: start, Err: ErrNoHeader}
	}
	d, _, err := delimitersFrom(firstLine(data))
	if err != nil {
		return nil, &ParseError{Offset: start, Err: err}
	}
	m := &Message{Delims: d}
	for len(data) > 0 {
		line := firstLine(data)
		data = data[len(line):]
		for len(data) > 0 && (data[0] == '\r' || data[0] == '\n') {
			data = data[1:]
		}
		seg := d.parseSegment(line)
		if strings.TrimSpace(seg.ID) == "" && seg.blank() {
			continue // nothing but separators: no data to keep
		}
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

func firstLine(data []byte) []byte {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return data[:i]
	}
	return data
}

// ParseSegment splits the text of one segment (without its terminator)
// with d, as Parse does for each segment of a message: values unescaped,
// MSH-1 and MSH-2 of a header segment kept as written. It lets a reader
// that finds segment boundaries itself (a batch file, where each segment's
// line matters) parse one segment at a time.
func (d Delimiters) ParseSegment(text []byte) Segment { return d.parseSegment(text) }

func (d *Delimiters) parseSegment(line []byte) Segment {
	i := bytes.IndexByte(line, d.Field)
	if i < 0 {
		return Segment{ID: string(line)}
	}
	seg := Segment{ID: string(line[:i])}
	rest := line[i+1:]
	if isHeader(seg.ID) && i == 3 {
		// MSH-1 is the separator itself and MSH-2 the encoding characters,
		// neither of which is split or unescaped.
		j := bytes.IndexByte(rest, d.Field)
		enc := rest
		if j >= 0 {
			enc, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		seg.Fields = append(seg.Fields,
			Field{Rep{Comp{string(d.Field)}}},
			Field{Rep{Comp{string(enc)}}})
		if j < 0 {
			return seg
		}
	}
	for {
		j := bytes.IndexByte(rest, d.Field)
		if j < 0 {
			seg.Fields = append(seg.Fields, d.parseField(rest))
			return seg
		}
		seg.Fields = append(seg.Fields, d.parseField(rest[:j]))
		rest = rest[j+1:]
	}
}

func (d *Delimiters) parseField(raw []byte) Field {
	var f Field
	for _, r := range split(raw, d.Repetition) {
		var rep Rep
		for _, c := range split(r, d.Component) {
			var comp Comp
			if d.Subcomponent == 0 {
				comp = Comp{d.unescape(c)}
			} else {
				for _, s := range split(c, d.Subcomponent) {
					comp = append(comp, d.unescape(s))
				}
			}
			rep = append(rep, comp)
		}
		f = append(f, rep)
	}
	return f
}

// split is bytes.Split that returns one empty element for empty input.
func split(b []byte, sep byte) [][]byte {
	n := bytes.Count(b, []byte{sep})
	out := make([][]byte, 0, n+1)
	for {
		i := bytes.IndexByte(b, sep)
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
}

func (s Segment) blank() bool {
	for _, f := range s.Fields {
		if !f.Empty() {
			return false
		}
	}
	return true
}
