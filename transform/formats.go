package transform

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
)

// The input formats a Profile can name.
//
//   - FormatCSV: a delimited file with a header row, one row per
//     vaccination, read through the profile's Columns and Values.
//   - FormatHL7: HL7 v2 VXU^V04 messages, one or many per file, with or
//     without FHS/BHS/BTS/FTS batch wrappers, segments ending in CR, LF or
//     CR LF, MLLP framing bytes (0x0B, 0x1C) tolerated (hl7in.go).
//   - FormatFHIR: FHIR R4 Patient and Immunization resources, as a bulk
//     export's pair of NDJSON files (PREFIX Patient.ndjson + PREFIX
//     Immunization.ndjson, see Partner) or as one Bundle (fhirin.go).
//
// Whatever the format, a file yields the same stream of Messages and
// Records, checked by the same rules (validate.go) and encoded by the same
// builder (build.go): the values are mapped onto the default layout's
// columns first.
const (
	FormatCSV  = "csv"
	FormatHL7  = "hl7"
	FormatFHIR = "fhir-ndjson"
)

// source is an input other than CSV: it yields its records one at a time,
// in file order, already mapped onto the default layout's columns.
type source interface {
	// read returns the next record, nil at the end. An error is a
	// *FileError: the rest of the file cannot be read.
	read() (*Record, error)
	// where names, for a problem text, the place in the input column c of
	// rec came from, e.g. "message 3, RXA-5".
	where(rec *Record, c Col) string
	// origin names where a record is in the input, for the rejects file.
	origin(rec *Record) string
	fileProblems() []Problem
	close() error
}

// msgHeader is what an HL7 input message says about the message izdrop
// sends for it. Its records share one.
type msgHeader struct {
	controlID         string // MSH-10, when fit to be kept
	facility, region  string // MSH-4, MSH-6, unless the profile sets them
	authority, idType string // PID-3.4, PID-3.5 of the MRN
}

func (h *msgHeader) apply(m *Message, o *Options) {
	if o.Profile.MSH10 == "keep" {
		m.ControlID = h.controlID
	}
	if h.facility != "" {
		m.site.SendingFacility = h.facility
	}
	if h.region != "" {
		m.site.Region = h.region
	}
	if h.authority != "" {
		m.site.AssigningAuthority = h.authority
	}
	m.idType = h.idType
}

func (p Profile) validateFormat(where string) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(where+": "+format, args...)) }
	switch p.Format {
	case "", FormatCSV:
		if p.SetSiteFields {
			add("set_site_fields applies to format %q only", FormatHL7)
		}
		if p.MSH10 != "" {
			add("msh10 applies to format %q only", FormatHL7)
		}
		return errs
	case FormatHL7, FormatFHIR:
	default:
		add("format %q: use %q (default), %q or %q", p.Format, FormatCSV, FormatHL7, FormatFHIR)
		return errs
	}
	if len(p.Columns) > 0 {
		add("columns apply to format %q only: the fields of %s input are fixed (values maps still apply)", FormatCSV, p.Format)
	}
	if p.DateFormat != "" {
		add("date_format applies to format %q only: HL7 dates are YYYYMMDD, FHIR dates YYYY-MM-DD", FormatCSV)
	}
	if p.Delimiter != 0 && p.Delimiter != ',' {
		add("delimiter applies to format %q only", FormatCSV)
	}
	switch p.Format {
	case FormatHL7:
		switch p.MSH10 {
		case "", "keep", "replace":
		default:
			add("msh10 %q: use \"keep\" (send under the message's own MSH-10 when izdrop has not sent it before) or \"replace\"", p.MSH10)
		}
	case FormatFHIR:
		if p.SetSiteFields || p.MSH10 != "" {
			add("set_site_fields and msh10 apply to format %q only", FormatHL7)
		}
		switch strings.ToLower(p.Encoding) {
		case "", "utf-8", "utf8":
		default:
			add("encoding %q: FHIR JSON is always UTF-8; leave encoding out", p.Encoding)
		}
	}
	return errs
}

// Pairing returns Partner for a profile reading FHIR NDJSON and nil for
// the others: an inbox takes the two files of a pair together.
func (p Profile) Pairing() func(name string) (partner string, data, ok bool) {
	if p.Format == FormatFHIR {
		return Partner
	}
	return nil
}

// Partner pairs the two files of a FHIR bulk export. For a name ending in
// .ndjson that holds "Immunization" (in any case), partner is the same name
// with its last "Immunization" replaced by "Patient", and data is true: it
// is the file whose records are read. For one holding "Patient" (and no
// later "Immunization") it is the other way round, with data false. ok is
// false for any other name (a Bundle, for one, stands alone).
func Partner(name string) (partner string, data, ok bool) {
	lower := strings.ToLower(name)
	if !strings.HasSuffix(lower, ".ndjson") {
		return "", false, false
	}
	i := strings.LastIndex(lower, "immunization")
	j := strings.LastIndex(lower, "patient")
	switch {
	case i >= 0 && i > j:
		return name[:i] + sameCase(name[i:i+len("immunization")], "Patient") + name[i+len("immunization"):], true, true
	case j >= 0:
		return name[:j] + sameCase(name[j:j+len("patient")], "Immunization") + name[j+len("patient"):], false, true
	}
	return "", false, false
}

// sameCase writes word as like is written: all upper, all lower or
// capitalised.
func sameCase(like, word string) string {
	switch {
	case like == strings.ToUpper(like):
		return strings.ToUpper(word)
	case like == strings.ToLower(like):
		return strings.ToLower(word)
	}
	return word
}

// rowBuilder makes a Row from values put one column at a time, packed into
// one string as a CSV row's are.
type rowBuilder struct {
	vals     *[numCols]map[string]string // the profile's values maps
	buf      []byte
	from, to [numCols]int
	has      [numCols]bool
}

func (b *rowBuilder) reset() {
	b.buf = b.buf[:0]
	b.has = [numCols]bool{}
}

// put sets column c to v (trimmed, then through the profile's values map);
// an empty value leaves the column empty.
func (b *rowBuilder) put(c Col, v string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return
	}
	if b.vals != nil {
		if m := b.vals[c]; m != nil {
			if mv, ok := m[strings.ToLower(v)]; ok {
				v = mv
			}
		}
	}
	b.from[c] = len(b.buf)
	b.buf = append(b.buf, v...)
	b.to[c] = len(b.buf)
	b.has[c] = true
}

func (b *rowBuilder) get(c Col) string {
	if !b.has[c] {
		return ""
	}
	return string(b.buf[b.from[c]:b.to[c]])
}

func (b *rowBuilder) row() Row {
	var r Row
	r.s = string(b.buf)
	for c := Col(0); c < numCols; c++ {
		if b.has[c] {
			r.setSpan(c, b.from[c], b.to[c])
		}
	}
	return r
}

// valueMaps readies the profile's values maps for any column.
func (r *Reader) valueMaps() {
	for c := Col(0); c < numCols; c++ {
		if vm := r.opt.Profile.Values[c.Name()]; len(vm) > 0 {
			m := make(map[string]string, len(vm))
			for k, v := range vm {
				m[strings.ToLower(strings.TrimSpace(k))] = v
			}
			r.values[c] = m
		}
	}
}

// mappedSource is the column of the rejects rows of HL7 and FHIR input
// that says where each record was.
const mappedSource = "izdrop_source"

func mappedHeader(opt Options) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma = opt.Profile.Delimiter
	h := make([]string, 0, numCols+1)
	for c := Col(0); c < numCols; c++ {
		h = append(h, c.Name())
	}
	w.Write(append(h, mappedSource))
	w.Flush()
	return bytes.TrimRight(b.Bytes(), "\r\n")
}

// mappedRows is RawRows for HL7 and FHIR input: it reads the file again and
// gives each record asked for (by its Start) as a row of the default
// layout, with the values read from the input before any check.
func mappedRows(path string, opt Options, next func() (start, end int64, ok bool), fn func(raw []byte) error) error {
	r, err := Open(path, opt)
	if err != nil {
		return err
	}
	defer r.Close()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Comma = opt.Profile.Delimiter
	vals := make([]string, numCols+1)
	var rec *Record
	for {
		start, _, ok := next()
		if !ok {
			return nil
		}
		for rec == nil || rec.Start < start {
			if rec, err = r.src.read(); err != nil {
				return err
			}
			if rec == nil {
				return fmt.Errorf("%s: no record at byte %d", path, start)
			}
		}
		if rec.Start != start {
			return fmt.Errorf("%s: no record at byte %d", path, start)
		}
		for c := Col(0); c < numCols; c++ {
			vals[c] = rec.Row.Get(c)
		}
		vals[numCols] = r.src.origin(rec)
		b.Reset()
		w.Write(vals)
		w.Flush()
		if err := fn(bytes.TrimRight(b.Bytes(), "\r\n")); err != nil {
			return err
		}
	}
}
