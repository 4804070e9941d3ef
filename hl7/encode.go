package hl7

import (
	"bytes"
	"time"
)

// Encoder writes ER7 text. It keeps a cursor (field, repetition, component,
// subcomponent) and writes separators only when a non-empty value follows
// them, so trailing empty values are never written and callers can move
// past optional fields without care. The zero value is not usable; call
// NewEncoder.
//
//	e := hl7.NewEncoder(hl7.DefaultDelimiters)
//	e.Segment("PID")
//	e.F("1")                 // PID-1
//	e.At(3); e.Value("123")  // PID-3.1
//	e.Comp(); e.Comp(); e.Comp(); e.Value("MR") // PID-3.5
//	msg := e.Bytes()
type Encoder struct {
	d       Delimiters
	special [256]bool
	buf     []byte
	open    bool
	// The cursor and the position of the last separator written, each packed
	// as field<<48 | repetition<<32 | component<<16 | subcomponent, so that
	// the common case - writing where the last value ended - is one compare.
	pos, wpos uint64
	runs      [4][]byte // 32 of each separator, to append several at once
	enc       string    // MSH-2
}

const (
	fShift = 48
	rShift = 32
	cShift = 16
	part   = 0xffff
	one    = 1<<rShift | 1<<cShift | 1 // repetition, component and subcomponent 1
)

func packPos(f int) uint64 { return uint64(f)<<fShift | one }

// NewEncoder returns an encoder writing with delimiters d.
func NewEncoder(d Delimiters) *Encoder {
	e := &Encoder{d: d, enc: d.EncodingCharacters()}
	for i, c := range []byte{d.Field, d.Repetition, d.Component, d.Subcomponent} {
		e.runs[i] = bytes.Repeat([]byte{c}, 32)
	}
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent, '\r', '\n'} {
		if c != 0 {
			e.special[c] = true
		}
	}
	return e
}

// put appends s. Growing the buffer in place (e.buf = e.buf[:n]) stores
// only the length: a plain append would store the pointer back into the
// heap-allocated Encoder each time, and pay a GC write barrier for it
// whenever a collection is marking.
func (e *Encoder) put(s string) {
	n := len(e.buf)
	if n+len(s) > cap(e.buf) {
		e.buf = append(e.buf, s...)
		return
	}
	e.buf = e.buf[:n+len(s)]
	copy(e.buf[n:], s)
}

func (e *Encoder) putBytes(b []byte) {
	n := len(e.buf)
	if n+len(b) > cap(e.buf) {
		e.buf = append(e.buf, b...)
		return
	}
	e.buf = e.buf[:n+len(b)]
	copy(e.buf[n:], b)
}

func (e *Encoder) putByte(c byte) {
	n := len(e.buf)
	if n == cap(e.buf) {
		e.buf = append(e.buf, c)
		return
	}
	e.buf = e.buf[:n+1]
	e.buf[n] = c
}

// Delimiters returns the delimiters the encoder writes with.
func (e *Encoder) Delimiters() Delimiters { return e.d }

// Reset empties the buffer, keeping its memory.
func (e *Encoder) Reset() {
	e.buf = e.buf[:0]
	e.open = false
}

// Bytes ends the open segment and returns the text written so far. The
// slice is the encoder's own buffer: copy it before the next Reset.
func (e *Encoder) Bytes() []byte {
	e.end()
	return e.buf
}

// Len returns the number of bytes written so far.
func (e *Encoder) Len() int { return len(e.buf) }

func (e *Encoder) end() {
	if e.open {
		e.putByte('\r')
		e.open = false
	}
}

// Segment starts a segment. For "MSH" it writes MSH-1 and MSH-2 from the
// encoder's delimiters, and the next Field is MSH-3.
func (e *Encoder) Segment(id string) {
	if isHeader(id) {
		e.header(id, e.enc)
		return
	}
	e.end()
	e.put(id)
	e.open = true
	e.pos, e.wpos = packPos(0), packPos(0)
}

func (e *Encoder) header(id, enc string) {
	e.end()
	e.buf = append(e.buf, id...)
	e.buf = append(e.buf, e.d.Field)
	e.buf = append(e.buf, enc...)
	e.open = true
	e.pos, e.wpos = packPos(2), packPos(2)
}

// Field moves the cursor to the next field.
func (e *Encoder) Field() { e.pos = (e.pos>>fShift+1)<<fShift | one }

// At moves the cursor to field n of the segment. Moving backwards is
// ignored: fields are written in order.
func (e *Encoder) At(n int) {
	if uint64(n) > e.pos>>fShift {
		e.pos = packPos(n)
	}
}

// Rep moves the cursor to the next repetition of the current field.
func (e *Encoder) Rep() {
	e.pos = e.pos&(part<<fShift) | (e.pos>>rShift&part+1)<<rShift | 1<<cShift | 1
}

// Comp moves the cursor to the next component.
func (e *Encoder) Comp() {
	e.pos = e.pos&(part<<fShift|part<<rShift) | (e.pos>>cShift&part+1)<<cShift | 1
}

// CompAt moves the cursor to component n of the current repetition.
func (e *Encoder) CompAt(n int) {
	if uint64(n) > e.pos>>cShift&part {
		e.pos = e.pos&(part<<fShift|part<<rShift) | uint64(n)<<cShift | 1
	}
}

// Sub moves the cursor to the next subcomponent.
func (e *Encoder) Sub() { e.pos++ }

// Value writes v, escaped, at the cursor. An empty v writes nothing (and,
// inlined, costs next to nothing: data types have many empty components).
func (e *Encoder) Value(v string) {
	if v != "" {
		e.value(v)
	}
}

func (e *Encoder) value(v string) {
	if e.pos != e.wpos {
		e.separators()
	}
	e.appendEscaped(v)
}

// Raw writes s at the cursor as it is, without escaping: s is ER7 text the
// caller has already encoded (see Encode). When s spans several components
// the caller moves on to the next field afterwards.
func (e *Encoder) Raw(s string) {
	if s == "" {
		return
	}
	if e.pos != e.wpos {
		e.separators()
	}
	e.put(s)
}

// Encode returns comps as the ER7 text of one field (escaped, trailing
// empties dropped), ready for Raw. Callers use it to encode constant or
// table-derived values once instead of per message.
func (d Delimiters) Encode(comps ...string) string {
	e := NewEncoder(d)
	e.open = true
	e.pos, e.wpos = packPos(1), packPos(1)
	e.Comps(comps...)
	return string(e.buf)
}

// Time writes t as a TS/DTM value (YYYYMMDDHHMMSS+ZZZZ) at the cursor,
// without the allocation of formatting it to a string first.
func (e *Encoder) Time(t time.Time) {
	if e.pos != e.wpos {
		e.separators()
	}
	e.buf = t.AppendFormat(e.buf, "20060102150405-0700")
}

// separators writes the separators between the last value written and the
// cursor.
func (e *Encoder) separators() {
	pos, wpos := e.pos, e.wpos
	// The two common moves: to the start of a later field, and to a later
	// component of the same repetition.
	if pos&(1<<fShift-1) == one && pos > wpos {
		e.run(0, pos>>fShift-wpos>>fShift)
		e.wpos = pos
		return
	}
	if pos>>rShift == wpos>>rShift && pos&part == 1 && pos > wpos {
		e.run(2, pos>>cShift&part-wpos>>cShift&part)
		e.wpos = pos
		return
	}
	f, r, c, s := pos>>fShift, pos>>rShift&part, pos>>cShift&part, pos&part
	wf, wr, wc, ws := wpos>>fShift, wpos>>rShift&part, wpos>>cShift&part, wpos&part
	if f > wf {
		e.run(0, f-wf)
		wr, wc, ws = 1, 1, 1
	}
	if r > wr {
		e.run(1, r-wr)
		wc, ws = 1, 1
	}
	if c > wc {
		e.run(2, c-wc)
		ws = 1
	}
	if s > ws && e.d.Subcomponent != 0 {
		e.run(3, s-ws)
	}
	e.wpos = pos
}

// run appends n separators of one kind (0 field, 1 repetition, 2
// component, 3 subcomponent).
func (e *Encoder) run(kind int, n uint64) {
	r := e.runs[kind]
	if n == 1 {
		e.putByte(r[0])
		return
	}
	for n > uint64(len(r)) {
		e.putBytes(r)
		n -= uint64(len(r))
	}
	e.putBytes(r[:n])
}

// F moves to the next field and writes comps as its components.
func (e *Encoder) F(comps ...string) {
	e.Field()
	e.Comps(comps...)
}

// Comps writes comps as consecutive components starting at the cursor.
func (e *Encoder) Comps(comps ...string) {
	for i, c := range comps {
		if i > 0 {
			e.Comp()
		}
		e.Value(c)
	}
}

// appendEscaped writes v replacing delimiters by escape sequences and CR/LF
// by \X0D\ / \X0A\, so a value can never end a segment.
func (e *Encoder) appendEscaped(v string) {
	sp := &e.special
	i := 0
	for i < len(v) && !sp[v[i]] {
		i++
	}
	if i == len(v) {
		e.put(v)
		return
	}
	start := 0
	for ; i < len(v); i++ {
		c := v[i]
		if !sp[c] {
			continue
		}
		e.put(v[start:i])
		start = i + 1
		esc := e.d.Escape
		if esc == 0 {
			// No escape character declared: dropping the delimiter is the
			// only way not to corrupt the structure.
			continue
		}
		var code string
		switch c {
		case e.d.Field:
			code = "F"
		case e.d.Component:
			code = "S"
		case e.d.Subcomponent:
			code = "T"
		case e.d.Repetition:
			code = "R"
		case esc:
			code = "E"
		case '\r':
			code = "X0D"
		case '\n':
			code = "X0A"
		}
		e.putByte(esc)
		e.put(code)
		e.putByte(esc)
	}
	e.put(v[start:])
}
