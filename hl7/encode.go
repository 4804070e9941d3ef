package hl7

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
	// cursor and the position of the last separator written
	f, r, c, s     int
	wf, wr, wc, ws int
}

// NewEncoder returns an encoder writing with delimiters d.
func NewEncoder(d Delimiters) *Encoder {
	e := &Encoder{d: d}
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent, '\r', '\n'} {
		if c != 0 {
			e.special[c] = true
		}
	}
	return e
}

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
		e.buf = append(e.buf, '\r')
		e.open = false
	}
}

// Segment starts a segment. For "MSH" it writes MSH-1 and MSH-2 from the
// encoder's delimiters, and the next Field is MSH-3.
func (e *Encoder) Segment(id string) {
	if isHeader(id) {
		e.header(id, e.d.EncodingCharacters())
		return
	}
	e.end()
	e.buf = append(e.buf, id...)
	e.open = true
	e.f, e.r, e.c, e.s = 0, 1, 1, 1
	e.wf, e.wr, e.wc, e.ws = 0, 1, 1, 1
}

func (e *Encoder) header(id, enc string) {
	e.end()
	e.buf = append(e.buf, id...)
	e.buf = append(e.buf, e.d.Field)
	e.buf = append(e.buf, enc...)
	e.open = true
	e.f, e.r, e.c, e.s = 2, 1, 1, 1
	e.wf, e.wr, e.wc, e.ws = 2, 1, 1, 1
}

// Field moves the cursor to the next field.
func (e *Encoder) Field() { e.f++; e.r, e.c, e.s = 1, 1, 1 }

// At moves the cursor to field n of the segment. Moving backwards is
// ignored: fields are written in order.
func (e *Encoder) At(n int) {
	if n > e.f {
		e.f = n
		e.r, e.c, e.s = 1, 1, 1
	}
}

// Rep moves the cursor to the next repetition of the current field.
func (e *Encoder) Rep() { e.r++; e.c, e.s = 1, 1 }

// Comp moves the cursor to the next component.
func (e *Encoder) Comp() { e.c++; e.s = 1 }

// CompAt moves the cursor to component n of the current repetition.
func (e *Encoder) CompAt(n int) {
	if n > e.c {
		e.c = n
		e.s = 1
	}
}

// Sub moves the cursor to the next subcomponent.
func (e *Encoder) Sub() { e.s++ }

// Value writes v, escaped, at the cursor. An empty v writes nothing.
func (e *Encoder) Value(v string) {
	if v == "" {
		return
	}
	if e.f > e.wf {
		for ; e.wf < e.f; e.wf++ {
			e.buf = append(e.buf, e.d.Field)
		}
		e.wr, e.wc, e.ws = 1, 1, 1
	}
	if e.r > e.wr {
		for ; e.wr < e.r; e.wr++ {
			e.buf = append(e.buf, e.d.Repetition)
		}
		e.wc, e.ws = 1, 1
	}
	if e.c > e.wc {
		for ; e.wc < e.c; e.wc++ {
			e.buf = append(e.buf, e.d.Component)
		}
		e.ws = 1
	}
	if e.s > e.ws && e.d.Subcomponent != 0 {
		for ; e.ws < e.s; e.ws++ {
			e.buf = append(e.buf, e.d.Subcomponent)
		}
	}
	e.appendEscaped(v)
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
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !e.special[c] {
			continue
		}
		e.buf = append(e.buf, v[start:i]...)
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
		e.buf = append(e.buf, esc)
		e.buf = append(e.buf, code...)
		e.buf = append(e.buf, esc)
	}
	e.buf = append(e.buf, v[start:]...)
}
