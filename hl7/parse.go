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
	// The line is copied once: values are substrings of that copy (unless
	// they hold escapes), and the segment's repetitions, components and
	// values are slices of three arrays sized from the separators it holds
	// - a few allocations a segment rather than a few a value.
	text := string(line)
	i := strings.IndexByte(text, d.Field)
	if i < 0 {
		return Segment{ID: text}
	}
	seg := Segment{ID: text[:i]}
	rest := text[i+1:]
	sl := d.slabs(rest)
	seg.Fields = make([]Field, 0, strings.Count(rest, string(d.Field))+2)
	if isHeader(seg.ID) && i == 3 {
		// MSH-1 is the separator itself and MSH-2 the encoding characters,
		// neither of which is split or unescaped.
		j := strings.IndexByte(rest, d.Field)
		enc := rest
		if j >= 0 {
			enc, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		seg.Fields = append(seg.Fields, sl.single(text[i:i+1]), sl.single(enc))
		if j < 0 {
			return seg
		}
	}
	for {
		j := strings.IndexByte(rest, d.Field)
		if j < 0 {
			seg.Fields = append(seg.Fields, d.parseField(rest, sl))
			return seg
		}
		seg.Fields = append(seg.Fields, d.parseField(rest[:j], sl))
		rest = rest[j+1:]
	}
}

// slabs hold one segment's repetitions, components and values, allocated
// once for it.
type slabs struct {
	reps  []Rep
	comps []Comp
	strs  []string
}

// slabs sizes the arrays for a segment's text: every separator adds at most
// one piece at its level and at the levels below (and a header adds MSH-1).
func (d *Delimiters) slabs(text string) *slabs {
	reps := strings.Count(text, string(d.Field)) + 2 + strings.Count(text, string(d.Repetition))
	comps := reps + strings.Count(text, string(d.Component))
	strs := comps
	if d.Subcomponent != 0 {
		strs += strings.Count(text, string(d.Subcomponent))
	}
	return &slabs{reps: make([]Rep, 0, reps), comps: make([]Comp, 0, comps), strs: make([]string, 0, strs)}
}

// take hands out n elements of a slab, capped at n so that an append to
// them copies rather than overwrites the next piece; a new slice once the
// slab is spent (it never is when sized by slabs).
func take[T any](slab *[]T, n int) []T {
	k := len(*slab)
	if k+n > cap(*slab) {
		return make([]T, n)
	}
	*slab = (*slab)[:k+n]
	return (*slab)[k : k+n : k+n]
}

// single is a field of one value, taken as written.
func (s *slabs) single(v string) Field {
	f, r, c := take(&s.reps, 1), take(&s.comps, 1), take(&s.strs, 1)
	c[0] = v
	r[0] = Comp(c)
	f[0] = Rep(r)
	return Field(f)
}

func (d *Delimiters) parseField(raw string, sl *slabs) Field {
	f := take(&sl.reps, strings.Count(raw, string(d.Repetition))+1)
	for i := range f {
		r := raw
		if j := strings.IndexByte(raw, d.Repetition); j >= 0 && i < len(f)-1 {
			r, raw = raw[:j], raw[j+1:]
		}
		rep := take(&sl.comps, strings.Count(r, string(d.Component))+1)
		for k := range rep {
			c := r
			if j := strings.IndexByte(r, d.Component); j >= 0 && k < len(rep)-1 {
				c, r = r[:j], r[j+1:]
			}
			if d.Subcomponent == 0 {
				comp := take(&sl.strs, 1)
				comp[0] = d.value(c)
				rep[k] = Comp(comp)
				continue
			}
			comp := take(&sl.strs, strings.Count(c, string(d.Subcomponent))+1)
			for m := range comp {
				v := c
				if j := strings.IndexByte(c, d.Subcomponent); j >= 0 && m < len(comp)-1 {
					v, c = c[:j], c[j+1:]
				}
				comp[m] = d.value(v)
			}
			rep[k] = Comp(comp)
		}
		f[i] = Rep(rep)
	}
	return Field(f)
}

// value is a value unescaped: the text itself when it holds no escape.
func (d *Delimiters) value(v string) string {
	if d.Escape == 0 || strings.IndexByte(v, d.Escape) < 0 {
		return v
	}
	return d.unescape([]byte(v))
}

func (s Segment) blank() bool {
	for _, f := range s.Fields {
		if !f.Empty() {
			return false
		}
	}
	return true
}
