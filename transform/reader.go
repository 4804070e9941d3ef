package transform

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/izdrop/izdrop/hl7"
	"golang.org/x/text/encoding/charmap"
)

// Row is one CSV record mapped onto the default layout's columns. It keeps
// the record's text as one string and, per column, where the value lies in
// it; values set later (mapped, normalised, defaulted) are kept aside. That
// makes a row a few hundred bytes with two pointers instead of 57 strings.
type Row struct {
	s   string
	sp  [numCols]span
	ext []string
}

// span locates a value in Row.s, in Row.ext when n is extN, or in
// constants when n is constN.
type span struct{ off, n uint16 }

const (
	extN   = 0xffff
	constN = 0xfffe
)

// constants are values validation sets on most rows (defaults, normalised
// codes); pointing at them costs a row nothing. constOf finds them.
var constants = [...]string{"A", "U", "D", "CP", "RE", "NA", "PA", "00", "01", "02", "03", "04", "05", "06", "07", "08", "999", "Y", "N", "F", "M", "X"}

func constOf(v string) (uint16, bool) {
	switch v {
	case "A":
		return 0, true
	case "U":
		return 1, true
	case "D":
		return 2, true
	case "CP":
		return 3, true
	case "RE":
		return 4, true
	case "NA":
		return 5, true
	case "PA":
		return 6, true
	case "00", "01", "02", "03", "04", "05", "06", "07", "08":
		return uint16(7 + v[1] - '0'), true
	case "999":
		return 16, true
	case "Y":
		return 17, true
	case "N":
		return 18, true
	case "F":
		return 19, true
	case "M":
		return 20, true
	case "X":
		return 21, true
	}
	return 0, false
}

// Get returns the value of a column ("" when absent).
func (r *Row) Get(c Col) string {
	sp := r.sp[c]
	switch sp.n {
	case extN:
		return r.ext[sp.off]
	case constN:
		return constants[sp.off]
	}
	return r.s[int(sp.off) : int(sp.off)+int(sp.n)]
}

// Set replaces the value of a column.
func (r *Row) Set(c Col, v string) {
	if v == "" {
		r.sp[c] = span{}
		return
	}
	if v == r.Get(c) {
		return
	}
	if i, ok := constOf(v); ok {
		r.sp[c] = span{off: i, n: constN}
		return
	}
	if r.ext == nil {
		r.ext = make([]string, 0, 6)
	}
	r.ext = append(r.ext, v)
	r.sp[c] = span{off: uint16(len(r.ext) - 1), n: extN}
}

// setSpan points column c at s[from:to], falling back to Set for text
// beyond what a span can address.
func (r *Row) setSpan(c Col, from, to int) {
	if to <= 0xfffd && to-from < constN {
		r.sp[c] = span{off: uint16(from), n: uint16(to - from)}
		return
	}
	r.Set(c, r.s[from:to])
}

// Record is one row of the file: one vaccination event. In an HL7 file it
// is one RXA group (Line: the RXA segment's line), in FHIR input one
// Immunization (Line: its NDJSON line, or its entry number in a Bundle).
type Record struct {
	Line          int    // first line of the row, 1-based
	Start, End    int64  // byte range of the row in the decoded input (see RawRows)
	VaccinationID string // ORC-3.1
	Action        string // RXA-21: A, U or D
	Problems      []Problem
	Row           Row
	syntax        bool   // the row cannot be read (not valid CSV, not a VXU, not JSON): only Line, Start, End and Problems are set
	site          string // the Site ID the dose is reported for

	// Where an HL7 or FHIR record came from (zero for CSV).
	seq   int        // hl7: the input message's number in the file
	occ   int        // hl7: the RXA group's number in its message
	pline int        // fhir: the line (or Bundle entry) of the patient's resource
	brk   bool       // begins a message of its own: never grouped with the record before
	hdr   *msgHeader // hl7: what the input message's header says
}

// Valid reports whether the record has no error-severity problem.
func (r *Record) Valid() bool {
	for _, p := range r.Problems {
		if p.Severity == Error {
			return false
		}
	}
	return true
}

// Errors and Warnings split the record's problems.
func (r *Record) Errors() []Problem   { return r.filter(Error) }
func (r *Record) Warnings() []Problem { return r.filter(Warning) }

func (r *Record) filter(s Severity) []Problem {
	var out []Problem
	for _, p := range r.Problems {
		if p.Severity == s {
			out = append(out, p)
		}
	}
	return out
}

// Message is one patient's consecutive rows: what becomes one VXU. Records
// that are invalid travel in it (for reporting) but are never encoded.
type Message struct {
	File      string
	Seq       int    // 1-based message number in the file
	PatientID string // PID-3.1
	SiteID    string // MSH-22: the site responsible for the doses
	Records   []*Record
	// ControlID is the MSH-10 the input message carries (HL7 input under
	// msh10 = "keep"): the caller sends under it when no message sent
	// before had it. Empty for other input.
	ControlID string
	patient   *Row // the group's first row: the patient columns come from it
	site      Site
	idType    string // PID-3.5 when the input message gives one
	opt       *Options
	t         *tables
}

// Sendable returns the message's valid records.
func (m *Message) Sendable() []*Record {
	all := true
	for _, r := range m.Records {
		all = all && r.Valid()
	}
	if all {
		return m.Records
	}
	var out []*Record
	for _, r := range m.Records {
		if r.Valid() {
			out = append(out, r)
		}
	}
	return out
}

// Reader streams a file's messages. It holds one patient group at a time,
// so a file of any size is read in constant memory.
type Reader struct {
	name    string
	path    string
	opt     Options
	f       io.ReadCloser
	csv     *csvReader
	header  []string
	index   [numCols]int // file column of each default column, -1 when absent
	present []colPos     // the columns the file has, in order
	values  [numCols]map[string]string
	unknown []string
	today   int // YYYYMMDD in the registry's zone
	v       validator

	pending  *Record // first record of the next group, read ahead
	seq      int
	eof      bool
	enc      *hl7.Encoder
	sum      Summary
	form     form     // how the bytes are read as text
	unclosed *Problem // a quoted field never closed: the rest of the file was not read as records
	empty    bool     // the file holds nothing, not even a header
	src      source   // HL7 or FHIR input; nil for CSV
}

// Summary counts what a Reader has read so far.
type colPos struct {
	col Col
	idx int
}

type Summary struct {
	Records  int
	Valid    int
	Invalid  int
	Messages int
}

// Open checks that a file can be read at all - encoding, CSV header, the
// required columns - and returns a Reader positioned at its first record. A
// file that cannot be read yields a *FileError and nothing else.
func Open(path string, opt Options) (*Reader, error) {
	opt.withDefaults()
	name := opt.Name
	if name == "" {
		name = filepath.Base(path)
	}
	switch opt.Profile.Format {
	case FormatHL7:
		return openHL7(path, name, opt)
	case FormatFHIR:
		return openFHIR(path, name, opt)
	}
	form, err := checkEncoding(path, opt.Profile.Encoding)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: name, Offset: -1, Reason: "cannot open", Err: err}
	}
	r := &Reader{name: name, path: path, opt: opt, f: f, enc: hl7.NewEncoder(hl7.DefaultDelimiters), form: form}
	if err := r.start(decoded(f, form)); err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// form is how a file's bytes are read as text.
type form struct {
	win1252 bool // Windows-1252, not UTF-8
	cr      bool // lines end in CR alone
}

// decoded returns the file's text as UTF-8 without a byte-order mark, its
// lines ending in LF.
func decoded(f io.Reader, fm form) io.Reader {
	br := bufio.NewReaderSize(f, 64*1024)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	var in io.Reader = br
	if fm.cr {
		in = crReader{in}
	}
	if fm.win1252 {
		return charmap.Windows1252.NewDecoder().Reader(in)
	}
	return in
}

// checkEncoding reads the whole file once: a bad byte found half way would
// otherwise come after records had been sent. It returns how the file must
// be read (Windows-1252 or UTF-8, CR line ends or not), or why it cannot
// be read as text at all.
func checkEncoding(path, encoding string) (fm form, _ error) {
	f, err := os.Open(path)
	if err != nil {
		return fm, &FileError{File: filepath.Base(path), Offset: -1, Reason: "cannot open", Err: err}
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if what := sniff(head); what != "" {
		return fm, &FileError{File: filepath.Base(path), Offset: -1, Reason: "this is " + what}
	}
	fm.cr = lineEnds(head) == "\r"
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fm, &FileError{File: filepath.Base(path), Offset: -1, Reason: "read error", Err: err}
	}
	buf := make([]byte, 256*1024)
	var off int64
	carry := 0
	for {
		n, err := f.Read(buf[carry:])
		n += carry
		chunk := buf[:n]
		// Leave an incomplete rune at the end for the next read.
		keep := 0
		if err == nil {
			for keep < utf8.UTFMax-1 && keep < n && !utf8.RuneStart(chunk[n-1-keep]) {
				keep++
			}
			if keep < n && utf8.RuneStart(chunk[n-1-keep]) && !utf8.FullRune(chunk[n-1-keep:]) {
				keep++
			} else {
				keep = 0
			}
		}
		body := chunk[:n-keep]
		if !utf8.Valid(body) {
			bad := off
			for i := 0; i < len(body); {
				r, size := utf8.DecodeRune(body[i:])
				if r == utf8.RuneError && size <= 1 {
					bad = off + int64(i)
					break
				}
				i += size
			}
			switch strings.ToLower(encoding) {
			case "windows-1252", "cp1252":
				fm.win1252 = true
				return fm, nil
			}
			return fm, &FileError{File: filepath.Base(path), Offset: bad, Reason: fmt.Sprintf("not valid UTF-8 (first bad byte 0x%02x); if the export is Windows-1252, set encoding = \"windows-1252\" in its profile", buf[bad-off])}
		}
		off += int64(len(body))
		copy(buf, chunk[n-keep:])
		carry = keep
		if err == io.EOF {
			if carry > 0 {
				if strings.EqualFold(encoding, "windows-1252") || strings.EqualFold(encoding, "cp1252") {
					fm.win1252 = true
					return fm, nil
				}
				return fm, &FileError{File: filepath.Base(path), Offset: off, Reason: "not valid UTF-8 (the file ends inside a character)"}
			}
			return fm, nil
		}
		if err != nil {
			return fm, &FileError{File: filepath.Base(path), Offset: off, Reason: "read error", Err: err}
		}
	}
}

func (r *Reader) start(in io.Reader) error {
	r.csv = newCSVReader(in, byte(r.opt.Profile.Delimiter))
	head, err := r.csv.read()
	if err == io.EOF {
		// An empty export: no record to send, nothing wrong to report
		// against a line. It is filed with a warning (an EHR export job
		// that failed often writes an empty file).
		r.empty = true
		return nil
	}
	if err != nil {
		return &FileError{File: r.name, Offset: -1, Line: 1, Reason: "the header row is not valid CSV", Err: err}
	}
	for i := range head.ends {
		r.header = append(r.header, head.field(i))
	}
	pos := map[string]int{}
	for i, h := range r.header {
		k := strings.ToLower(strings.TrimSpace(h))
		if k == "" {
			continue
		}
		if _, dup := pos[k]; dup {
			return &FileError{File: r.name, Offset: -1, Line: 1, Reason: fmt.Sprintf("the header names column %q twice", strings.TrimSpace(h))}
		}
		pos[k] = i
	}
	used := map[int]bool{}
	for c := Col(0); c < numCols; c++ {
		want := c.Name()
		if m, ok := r.opt.Profile.Columns[want]; ok {
			want = m
		}
		i, ok := pos[strings.ToLower(strings.TrimSpace(want))]
		if !ok {
			r.index[c] = -1
			continue
		}
		r.index[c] = i
		r.present = append(r.present, colPos{c, i})
		used[i] = true
		if vm := r.opt.Profile.Values[c.Name()]; len(vm) > 0 {
			m := make(map[string]string, len(vm))
			for k, v := range vm {
				m[strings.ToLower(strings.TrimSpace(k))] = v
			}
			r.values[c] = m
		}
	}
	var missing []string
	for _, c := range requiredCols {
		if r.index[c] < 0 {
			missing = append(missing, r.headerName(c))
		}
	}
	if len(missing) > 0 {
		reason := fmt.Sprintf("the header lacks required column(s) %s", strings.Join(missing, ", "))
		if len(used) == 0 {
			reason = "no header row: the first line names none of the expected columns"
			if r.opt.Profile.Name != "" {
				reason += fmt.Sprintf(" of profile %q", r.opt.Profile.Name)
			}
		}
		if len(r.header) == 1 {
			if d := suggestDelimiter(r.header[0], r.opt.Profile.Delimiter); d != "" {
				reason = fmt.Sprintf("the header reads as one column with delimiter %q; the file seems to be delimited by %s: set delimiter = %s in the inbox's profile",
					string(r.opt.Profile.Delimiter), d, strings.Fields(d)[0])
			}
		}
		return &FileError{File: r.name, Offset: -1, Line: 1, Reason: reason}
	}
	for i, h := range r.header {
		if !used[i] && strings.TrimSpace(h) != "" {
			r.unknown = append(r.unknown, strings.TrimSpace(h))
		}
	}
	r.setup()
	return nil
}

// setup readies what every format's Reader needs to validate.
func (r *Reader) setup() {
	now := r.opt.Now().In(r.opt.Location)
	r.today = now.Year()*10000 + int(now.Month())*100 + now.Day()
	r.v = validator{r: r, t: resolveTables(r.opt.Codes)}
}

// Header returns the file's header row as read.
func (r *Reader) Header() []string { return r.header }

// UnknownColumns lists header names that map to no column; they are ignored.
func (r *Reader) UnknownColumns() []string { return r.unknown }

// FileProblems returns the warnings about the file as a whole.
func (r *Reader) FileProblems() []Problem {
	if r.src != nil {
		return r.src.fileProblems()
	}
	var out []Problem
	if len(r.unknown) > 0 {
		out = append(out, Problem{File: r.name, Rule: "unknown-columns", Severity: Warning,
			Text: fmt.Sprintf("ignored column(s) not in the profile: %s", strings.Join(r.unknown, ", "))})
	}
	if r.form.cr {
		out = append(out, Problem{File: r.name, Rule: "cr-line-ends", Severity: Warning,
			Text: "lines end in CR alone (an old Mac-style export): read as lines"})
	}
	if r.unclosed != nil {
		out = append(out, *r.unclosed)
	}
	if r.empty {
		out = append(out, Problem{File: r.name, Rule: "empty-file", Severity: Warning,
			Text: "the file is empty: no header, no records (an EHR export that failed often looks like this)"})
	}
	return out
}

// Summary returns the counts so far.
func (r *Reader) Summary() Summary { return r.sum }

// Close closes the file.
func (r *Reader) Close() error {
	if r.src != nil {
		return r.src.close()
	}
	return r.f.Close()
}

func (r *Reader) headerName(c Col) string {
	if i := r.index[c]; i >= 0 {
		return strings.TrimSpace(r.header[i])
	}
	if m, ok := r.opt.Profile.Columns[c.Name()]; ok {
		return m
	}
	return c.Name()
}

// readRecord reads the next CSV record; nil at the end of the file.
func (r *Reader) readRecord() (*Record, error) {
	if r.src != nil {
		return r.src.read()
	}
	for {
		cr, err := r.csv.read()
		if err == io.EOF {
			return nil, nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// A row that is not valid CSV is an invalid record, not the end
			// of the file: it is reported with its line and kept for the
			// rejects file; the rows after it are still read.
			rec := &Record{Line: pe.StartLine, Start: cr.start, End: cr.end, syntax: true}
			text := fmt.Sprintf("not valid CSV at line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
			if r.csv.unclosed {
				// Everything to the end of the file was swallowed by one
				// field: say so, or "1 invalid record" hides the rest.
				lost := r.csv.quoteEnd - r.csv.quoteLine
				text = fmt.Sprintf("a quoted field opened at line %d, column %d is never closed: the %d line(s) after it, to the end of the file, "+
					"were read as part of that field, so no record after line %d was read; close the quote and drop the file again",
					r.csv.quoteLine, r.csv.quoteCol, lost, pe.StartLine)
				r.unclosed = &Problem{File: r.name, Line: pe.StartLine, Rule: "quote-never-closed", Severity: Error, Text: text}
			}
			rec.Problems = append(rec.Problems, Problem{File: r.name, Line: pe.StartLine, Rule: "csv-syntax", Severity: Error, Text: text})
			return rec, nil
		}
		if err != nil {
			return nil, &FileError{File: r.name, Offset: cr.start, Reason: "read error", Err: err}
		}
		if len(cr.ends) == 1 && strings.TrimSpace(cr.s) == "" {
			continue // a line of blanks
		}
		rec := &Record{Line: cr.line, Start: cr.start, End: cr.end}
		rec.Row.s = cr.s
		for _, p := range r.present {
			c, i := p.col, p.idx
			if i >= len(cr.ends) {
				continue
			}
			from, to := 0, cr.ends[i]
			if i > 0 {
				from = cr.ends[i-1]
			}
			if from < to && (cr.s[from] <= ' ' || cr.s[to-1] <= ' ' || cr.s[from] >= 0x80 || cr.s[to-1] >= 0x80) {
				v := cr.s[from:to]
				t := strings.TrimLeftFunc(v, unicode.IsSpace)
				from += len(v) - len(t)
				to = from + len(strings.TrimRightFunc(t, unicode.IsSpace))
			}
			rec.Row.setSpan(c, from, to)
			if m := r.values[c]; m != nil && to > from {
				if mv, ok := m[strings.ToLower(cr.s[from:to])]; ok {
					rec.Row.Set(c, mv)
				}
			}
		}
		if len(cr.ends) != len(r.header) {
			rec.Problems = append(rec.Problems, Problem{File: r.name, Line: cr.line, Rule: "field-count", Severity: Warning,
				Text: fmt.Sprintf("the row has %d fields, the header %d", len(cr.ends), len(r.header))})
		}
		return rec, nil
	}
}

// Next returns the next message, or io.EOF after the last. A *FileError
// means the rest of the file cannot be read.
func (r *Reader) Next() (*Message, error) {
	if r.pending == nil && !r.eof {
		rec, err := r.readRecord()
		if err != nil {
			return nil, err
		}
		if rec == nil {
			r.eof = true
		}
		r.pending = rec
	}
	if r.pending == nil {
		return nil, io.EOF
	}
	first := r.pending
	r.pending = nil
	r.seq++
	m := &Message{File: r.name, Seq: r.seq, opt: &r.opt, t: &r.v.t}
	if first.syntax {
		// A malformed row stands alone.
		m.Records = []*Record{first}
		r.count(m)
		return m, nil
	}
	m.PatientID = first.Row.Get(PatientID)
	m.SiteID = r.siteOf(first)
	m.site = r.siteFor(m.SiteID)
	if first.hdr != nil {
		first.hdr.apply(m, &r.opt)
	}
	m.patient = &first.Row
	m.Records = make([]*Record, 1, 4)
	m.Records[0] = first
	for len(m.Records) < r.opt.MaxDoses {
		rec, err := r.readRecord()
		if err != nil {
			return nil, err
		}
		if rec == nil {
			r.eof = true
			break
		}
		// A group is a patient's consecutive rows for one site. A repeated
		// vaccination id starts a new message, so that an update or delete
		// of a dose never travels in the same message as the dose.
		if rec.syntax || rec.brk || rec.Row.Get(PatientID) != m.PatientID || m.PatientID == "" || r.siteOf(rec) != m.SiteID || hasDose(m, rec.Row.Get(VaccinationID)) {
			r.pending = rec
			break
		}
		m.Records = append(m.Records, rec)
	}
	r.v.message(m)
	r.count(m)
	return m, nil
}

// hasDose reports whether the message already holds vaccination id vid
// (groups are small: a scan beats a map).
func hasDose(m *Message, vid string) bool {
	if vid == "" {
		return false
	}
	for _, r := range m.Records {
		if r.Row.Get(VaccinationID) == vid {
			return true
		}
	}
	return false
}

func (r *Reader) count(m *Message) {
	r.sum.Messages++
	for _, rec := range m.Records {
		r.sum.Records++
		if rec.Valid() {
			r.sum.Valid++
		} else {
			r.sum.Invalid++
		}
	}
}

func (r *Reader) siteOf(rec *Record) string {
	if s := rec.Row.Get(SiteID); s != "" {
		return s
	}
	return r.opt.Site.ID
}

// siteFor returns the configured site for a Site ID; an unconfigured one
// inherits the inbox site's facility and region.
func (r *Reader) siteFor(id string) Site {
	if s, ok := r.opt.Sites[id]; ok {
		if s.SendingFacility == "" {
			s.SendingFacility = r.opt.Site.SendingFacility
		}
		if s.AssigningAuthority == "" {
			s.AssigningAuthority = r.opt.Site.AssigningAuthority
		}
		if s.Region == "" {
			s.Region = r.opt.Site.Region
		}
		return s
	}
	s := r.opt.Site
	s.ID = id
	s.County = ""
	return s
}

// ContentHash is the hex SHA-256 of the record's site and every mapped,
// normalised value: what "the same dose with the same content" means when a
// file is dropped again. Only the journal needs it, so it is computed on
// demand.
func (r *Record) ContentHash() string {
	n := len(r.site)
	for c := Col(0); c < numCols; c++ {
		n += 1 + len(r.Row.Get(c))
	}
	buf := make([]byte, 0, n)
	buf = append(buf, r.site...)
	for c := Col(0); c < numCols; c++ {
		buf = append(buf, 0x1f)
		buf = append(buf, r.Row.Get(c)...)
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])
}

// RawRows copies, for each byte range next yields (in file order: the
// Start/End of records), the row's text as read from the file to fn. It
// re-reads the file from the start and streams, so it works after the
// Reader is gone and for any number of rows; it is what the rejects file is
// made from.
//
// For HL7 and FHIR input, whose records are not rows, each record comes as
// a row of the default layout instead - the values read from its message
// or resources, before izdrop's checks, and where it came from (see
// HeaderLine) - so that the rejects file is a CSV that can be fixed and
// dropped into an inbox of the default layout.
func RawRows(path string, opt Options, next func() (start, end int64, ok bool), fn func(raw []byte) error) error {
	opt.withDefaults()
	if opt.Profile.Format != FormatCSV {
		return mappedRows(path, opt, next, fn)
	}
	fm, err := checkEncoding(path, opt.Profile.Encoding)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	in := bufio.NewReader(decoded(f, fm))
	var pos int64
	var raw []byte
	for {
		start, end, ok := next()
		if !ok {
			return nil
		}
		if start < pos || end < start {
			return fmt.Errorf("%s: rows out of order at byte %d", path, start)
		}
		if _, err := in.Discard(int(start - pos)); err != nil {
			return fmt.Errorf("%s: byte %d: %w", path, start, err)
		}
		raw = append(raw[:0], make([]byte, end-start)...)
		if _, err := io.ReadFull(in, raw); err != nil {
			return fmt.Errorf("%s: byte %d: %w", path, start, err)
		}
		pos = end
		if err := fn(bytes.TrimLeft(bytes.TrimRight(raw, "\r\n"), "\r\n")); err != nil {
			return err
		}
	}
}

// HeaderLine returns the file's first record as read (decoded, without its
// line end), for files written in the input's own layout.
//
// For HL7 and FHIR input it is the header of the rows RawRows gives: the
// default layout's columns and izdrop_source.
func HeaderLine(path string, opt Options) ([]byte, error) {
	opt.withDefaults()
	if opt.Profile.Format != FormatCSV {
		return mappedHeader(opt), nil
	}
	fm, err := checkEncoding(path, opt.Profile.Encoding)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head, err := newCSVReader(decoded(f, fm), byte(opt.Profile.Delimiter)).read()
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	raw := make([]byte, head.end)
	if _, err := io.ReadFull(decoded(f, fm), raw); err != nil {
		return nil, err
	}
	return bytes.TrimLeft(bytes.TrimRight(raw, "\r\n"), "\r\n"), nil
}
