package transform

import (
	"bytes"

	"github.com/izdrop/izdrop/hl7"
)

// segView reads the values of one segment's ER7 text on demand, as
// hl7.Segment would give them, without building the segment's whole parse
// tree: the HL7 reader looks at a few dozen of a message's hundreds of
// values, and building the tree cost most of its time and allocations.
// FuzzHL7Reader holds it to hl7.ParseSegment.
type segView struct {
	d      hl7.Delimiters
	id     string // "" when the text does not start with a segment id
	text   []byte
	header bool // MSH, FHS, BHS: MSH-1 is the field separator itself
}

func newSegView(d hl7.Delimiters, text []byte) segView {
	id := segID(text)
	return segView{d: d, id: id, text: text, header: id == "MSH" || id == "FHS" || id == "BHS"}
}

// field returns the raw text of field n (1-based), nil when absent.
func (v segView) field(n int) []byte {
	if len(v.text) < 4 || v.text[3] != v.d.Field {
		return nil
	}
	rest := v.text[4:]
	k := n
	if v.header {
		k = n - 1 // MSH-2 is the first piece after MSH-1, the separator
	}
	if k < 1 {
		return nil
	}
	for ; k > 1; k-- {
		j := bytes.IndexByte(rest, v.d.Field)
		if j < 0 {
			return nil
		}
		rest = rest[j+1:]
	}
	if j := bytes.IndexByte(rest, v.d.Field); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// piece returns the i-th (1-based) part of b split at sep; nil when there
// are fewer parts, b itself when sep is 0 (no such separator declared).
func piece(b []byte, sep byte, i int) []byte {
	if sep == 0 {
		if i == 1 {
			return b
		}
		return nil
	}
	for ; i > 1; i-- {
		j := bytes.IndexByte(b, sep)
		if j < 0 {
			return nil
		}
		b = b[j+1:]
	}
	if j := bytes.IndexByte(b, sep); j >= 0 {
		b = b[:j]
	}
	return b
}

// value returns subcomponent s of component c of a raw repetition,
// unescaped.
func (v segView) value(rep []byte, c, s int) string {
	b := piece(piece(rep, v.d.Component, c), v.d.Subcomponent, s)
	if len(b) == 0 {
		return ""
	}
	return v.d.Unescape(b)
}

// rep returns the raw text of repetition r of field n.
func (v segView) rep(n, r int) []byte {
	f := v.field(n)
	if v.header && n <= 2 {
		// MSH-1 and MSH-2 are not split (hl7.Parse keeps them whole).
		if r == 1 {
			return f
		}
		return nil
	}
	return piece(f, v.d.Repetition, r)
}

// get is hl7.Segment.Get: the first subcomponent of component comp of the
// first repetition of field n.
func (v segView) get(n, comp int) string {
	if v.header && n == 1 {
		if len(v.text) > 3 && comp == 1 {
			return string(v.text[3:4])
		}
		return ""
	}
	if v.header && n == 2 {
		if comp != 1 {
			return ""
		}
		return string(v.field(2))
	}
	return v.value(v.rep(n, 1), comp, 1)
}

// reps calls fn with each repetition of field n, in order.
func (v segView) reps(n int, fn func(rep []byte)) {
	f := v.field(n)
	if f == nil {
		return
	}
	for {
		j := bytes.IndexByte(f, v.d.Repetition)
		if j < 0 {
			fn(f)
			return
		}
		fn(f[:j])
		f = f[j+1:]
	}
}

// emptyRep reports whether a repetition holds no value: nothing but
// component and subcomponent separators.
func (v segView) emptyRep(rep []byte) bool {
	for _, c := range rep {
		if c != v.d.Component && c != v.d.Subcomponent {
			return false
		}
	}
	return true
}
