package hl7

import (
	"strconv"
	"strings"
)

// Message is a parsed HL7 v2 message: its delimiters and its segments in
// order. Values held in it are unescaped.
type Message struct {
	Delims   Delimiters
	Segments []Segment
}

// Segment is one segment. Fields[0] is field 1; for a header segment (MSH,
// FHS, BHS) Fields[0] is the field separator and Fields[1] the encoding
// characters, both as written.
type Segment struct {
	ID     string
	Fields []Field
}

// Field is a field's repetitions.
type Field []Rep

// Rep is one repetition's components.
type Rep []Comp

// Comp is one component's subcomponents.
type Comp []string

// Field returns field n (1-based), or nil when the segment has fewer fields.
func (s Segment) Field(n int) Field {
	if n < 1 || n > len(s.Fields) {
		return nil
	}
	return s.Fields[n-1]
}

// Get returns the first subcomponent of component comp of the first
// repetition of field n: the common case of "PID-7" or "MSH-9.2".
func (s Segment) Get(n, comp int) string {
	return s.Field(n).Rep(1).Comp(comp).String()
}

// Rep returns repetition i (1-based) or nil.
func (f Field) Rep(i int) Rep {
	if i < 1 || i > len(f) {
		return nil
	}
	return f[i-1]
}

// String returns the first subcomponent of the first component of the first
// repetition.
func (f Field) String() string { return f.Rep(1).Comp(1).String() }

// Empty reports whether the field holds no value at all.
func (f Field) Empty() bool {
	for _, r := range f {
		if !r.Empty() {
			return false
		}
	}
	return true
}

// Comp returns component n (1-based) or nil.
func (r Rep) Comp(n int) Comp {
	if n < 1 || n > len(r) {
		return nil
	}
	return r[n-1]
}

// Empty reports whether the repetition holds no value.
func (r Rep) Empty() bool {
	for _, c := range r {
		for _, s := range c {
			if s != "" {
				return false
			}
		}
	}
	return true
}

// Sub returns subcomponent n (1-based) or "".
func (c Comp) Sub(n int) string {
	if n < 1 || n > len(c) {
		return ""
	}
	return c[n-1]
}

// String returns the first subcomponent.
func (c Comp) String() string { return c.Sub(1) }

// First returns the first segment with the given id.
func (m *Message) First(id string) (Segment, bool) {
	for _, s := range m.Segments {
		if s.ID == id {
			return s, true
		}
	}
	return Segment{}, false
}

// All returns every segment with the given id, in order.
func (m *Message) All(id string) []Segment {
	var out []Segment
	for _, s := range m.Segments {
		if s.ID == id {
			out = append(out, s)
		}
	}
	return out
}

// Count returns how many segments have the given id.
func (m *Message) Count(id string) int {
	n := 0
	for _, s := range m.Segments {
		if s.ID == id {
			n++
		}
	}
	return n
}

// Get returns the value at an HL7 location such as "MSH-10", "PID-3.4",
// "PID-3.4.2", "ERR[2]-8" (second ERR segment) or "PID-13[2].4" (second
// repetition). It returns "" for anything absent or malformed.
func (m *Message) Get(path string) string {
	id, rest, ok := strings.Cut(path, "-")
	if !ok {
		return ""
	}
	occ := 1
	if i := strings.IndexByte(id, '['); i >= 0 && strings.HasSuffix(id, "]") {
		n, err := strconv.Atoi(id[i+1 : len(id)-1])
		if err != nil || n < 1 {
			return ""
		}
		occ, id = n, id[:i]
	}
	parts := strings.Split(rest, ".")
	rep := 1
	if i := strings.IndexByte(parts[0], '['); i >= 0 && strings.HasSuffix(parts[0], "]") {
		n, err := strconv.Atoi(parts[0][i+1 : len(parts[0])-1])
		if err != nil || n < 1 {
			return ""
		}
		rep, parts[0] = n, parts[0][:i]
	}
	nums := [3]int{0, 1, 1}
	for i, p := range parts {
		if i >= 3 {
			return ""
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return ""
		}
		nums[i] = n
	}
	seen := 0
	for _, s := range m.Segments {
		if s.ID != id {
			continue
		}
		seen++
		if seen == occ {
			return s.Field(nums[0]).Rep(rep).Comp(nums[1]).Sub(nums[2])
		}
	}
	return ""
}

// Encode returns the message in ER7 with \r after every segment, written
// with the message's own delimiters. Trailing empty values are not written.
func (m *Message) Encode() []byte {
	e := NewEncoder(m.Delims)
	for _, s := range m.Segments {
		if isHeader(s.ID) && len(s.Fields) >= 2 {
			e.header(s.ID, s.Fields[1].String())
			for _, f := range s.Fields[2:] {
				e.putField(f)
			}
			continue
		}
		e.Segment(s.ID)
		for _, f := range s.Fields {
			e.putField(f)
		}
	}
	return e.Bytes()
}

func (e *Encoder) putField(f Field) {
	e.Field()
	for ri, r := range f {
		if ri > 0 {
			e.Rep()
		}
		for ci, c := range r {
			if ci > 0 {
				e.Comp()
			}
			for si, s := range c {
				if si > 0 {
					e.Sub()
				}
				e.Value(s)
			}
		}
	}
}

func isHeader(id string) bool { return id == "MSH" || id == "FHS" || id == "BHS" }
