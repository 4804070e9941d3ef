package transform

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/izdrop/izdrop/hl7"
)

// HL7 input (FormatHL7): files of VXU^V04 messages an EHR wrote for a
// registry - one message, many, or FHS/BHS batches of them.
//
// Open reads the file's segments once first (checkHL7): batch and file
// trailers must be there and their counts (BTS-1, FTS-1) match, and no
// segment may stand outside a message, or the file is refused as a whole
// before anything is sent - a batch that does not add up is a file cut
// short or put together wrong. Then each message is mapped onto the default
// layout's columns (one record per RXA group, every record carrying the
// patient's PID/PD1/NK1 values) and checked by the same rules as a CSV row.
// A message that is not a VXU^V04, has no PID or cannot be parsed is one
// invalid record standing alone, named by its number in the file; the
// other messages are still sent. Each input message becomes one message to
// the registry (split only past MaxDoses), so a patient's messages keep
// their file order.
//
// Lines: a segment ends at CR, LF or CR LF, each counting as one line end;
// MLLP framing (0x0B before a message, 0x1C after it) is dropped. A
// record's Line is the line of its RXA segment; a problem's Where names the
// message by its number in the file and the segment and field, e.g.
// "message 3, RXA[2]-15" (the second RXA group's lot).

// maxSegment bounds one segment, so that a file with no line ends at all
// cannot make izdrop hold it whole.
const maxSegment = 16 << 20

var errSegmentTooLong = errors.New("a segment longer than 16 MiB")

// hl7Seg is one segment as the scanner found it.
type hl7Seg struct {
	text       []byte // without its terminator and framing bytes
	line       int
	start, end int64 // byte range in the decoded input, terminator included
}

// segScanner splits an HL7 stream into segments.
type segScanner struct {
	rd   io.Reader
	buf  []byte
	r, w int   // unread data is buf[r:w]
	off  int64 // input offset of buf[r]
	line int   // line of buf[r]
	eof  bool
}

func newSegScanner(rd io.Reader) *segScanner {
	return &segScanner{rd: rd, buf: make([]byte, 64*1024), line: 1}
}

func (s *segScanner) fill() error {
	if s.r > 0 {
		copy(s.buf, s.buf[s.r:s.w])
		s.w -= s.r
		s.r = 0
	}
	if s.w == len(s.buf) {
		if len(s.buf) >= maxSegment {
			return errSegmentTooLong
		}
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.w])
		s.buf = nb
	}
	n, err := s.rd.Read(s.buf[s.w:])
	s.w += n
	if err == io.EOF {
		s.eof = true
		return nil
	}
	return err
}

// next returns the next segment that is not blank; its text is valid until
// the next call. io.EOF at the end.
func (s *segScanner) next() (hl7Seg, error) {
	for {
		data := s.buf[s.r:s.w]
		i := bytes.IndexAny(data, "\r\n\x1c")
		if i < 0 && !s.eof || i >= 0 && data[i] == '\r' && i+1 == len(data) && !s.eof {
			// The segment's end, or whether a CR is followed by LF, is not
			// read yet.
			if err := s.fill(); err != nil {
				return hl7Seg{}, err
			}
			continue
		}
		if len(data) == 0 {
			return hl7Seg{}, io.EOF
		}
		seg := hl7Seg{line: s.line, start: s.off}
		n := len(data)
		if i >= 0 {
			n = i + 1
			switch data[i] {
			case '\r':
				if n < len(data) && data[n] == '\n' {
					n++
				}
				s.line++
			case '\n':
				s.line++
			}
			// 0x1C ends an MLLP block: the segment ends, the line does not.
		} else {
			i = n
		}
		seg.text = data[:i]
		seg.end = s.off + int64(n)
		s.r += n
		s.off += int64(n)
		for len(seg.text) > 0 && (seg.text[0] == 0x0b || seg.text[0] == ' ' || seg.text[0] == '\t') {
			seg.text = seg.text[1:]
		}
		if len(bytes.TrimSpace(seg.text)) == 0 {
			continue
		}
		return seg, nil
	}
}

// segID returns a segment's 3-character id, or "" when the text does not
// start with one.
func segID(text []byte) string {
	if len(text) < 3 || len(text) > 3 && isAlnum(text[3]) {
		return ""
	}
	for _, c := range text[:3] {
		if !isAlnum(c) || c >= 'a' && c <= 'z' {
			return ""
		}
	}
	return string(text[:3])
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func scanError(name string, line int, err error) *FileError {
	if errors.Is(err, errSegmentTooLong) {
		return &FileError{File: name, Offset: -1, Line: line, Reason: "a segment longer than 16 MiB: not an HL7 file, or its segments do not end in CR or LF"}
	}
	return &FileError{File: name, Offset: -1, Reason: "read error", Err: err}
}

// checkHL7 reads every segment once and checks the file's structure.
func checkHL7(name string, in io.Reader) error {
	sc := newSegScanner(in)
	fail := func(line int, format string, args ...any) error {
		return &FileError{File: name, Offset: -1, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	d := hl7.DefaultDelimiters
	var (
		fhs, fts, inBatch, inMsg bool
		fhsLine, bhsLine         int
		batches, batchMsgs, msgs int
		seen                     bool
	)
	count := func(seg hl7Seg, which string) (int, bool, error) {
		v := strings.TrimSpace(d.ParseSegment(seg.text).Get(1, 1))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, false, fail(seg.line, "%s-1 %q is not a number", which, short(v))
		}
		return n, true, nil
	}
	for {
		seg, err := sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return scanError(name, sc.line, err)
		}
		id := segID(seg.text)
		if !seen && id != "FHS" && id != "BHS" && id != "MSH" {
			return fail(seg.line, "the file does not begin with an MSH, FHS or BHS segment: not a file of HL7 v2 messages")
		}
		seen = true
		if fts {
			return fail(seg.line, "a segment after the FTS that ends the file")
		}
		switch id {
		case "FHS":
			if fhs || msgs > 0 || batches > 0 || inBatch {
				return fail(seg.line, "an FHS that is not the file's first segment")
			}
			fhs, fhsLine = true, seg.line
			if m, err := hl7.Parse(seg.text); err == nil {
				d = m.Delims
			}
		case "BHS":
			if inBatch {
				return fail(seg.line, "a BHS inside the batch begun at line %d, which has no BTS", bhsLine)
			}
			inBatch, inMsg, bhsLine, batchMsgs = true, false, seg.line, 0
			if m, err := hl7.Parse(seg.text); err == nil {
				d = m.Delims
			}
		case "BTS":
			if !inBatch {
				return fail(seg.line, "a BTS without a BHS before it")
			}
			n, ok, err := count(seg, "BTS")
			if err != nil {
				return err
			}
			if ok && n != batchMsgs {
				return fail(seg.line, "batch %d (BHS at line %d): BTS-1 says %d message(s), the batch holds %d: the file is incomplete or put together wrong, so none of it is sent",
					batches+1, bhsLine, n, batchMsgs)
			}
			inBatch, inMsg = false, false
			batches++
		case "FTS":
			if !fhs {
				return fail(seg.line, "an FTS without an FHS at the start of the file")
			}
			if inBatch {
				return fail(seg.line, "the FTS ends the file inside the batch begun at line %d, which has no BTS", bhsLine)
			}
			n, ok, err := count(seg, "FTS")
			if err != nil {
				return err
			}
			// FTS-1 counts batches; a file of messages without BHS/BTS
			// is also accepted when it counts the messages.
			if ok && n != batches && !(batches == 0 && n == msgs) {
				return fail(seg.line, "FTS-1 says %d batch(es), the file holds %d: the file is incomplete or put together wrong, so none of it is sent", n, batches)
			}
			fts, inMsg = true, false
		case "MSH":
			msgs++
			batchMsgs++
			inMsg = true
		default:
			if !inMsg {
				what := "a segment"
				if id != "" {
					what = "a " + id + " segment"
				}
				return fail(seg.line, "%s outside any message (no MSH before it)", what)
			}
		}
	}
	switch {
	case inBatch:
		return fail(bhsLine, "the batch begun here has no BTS: the file may be cut short, so none of it is sent")
	case fhs && !fts:
		return fail(fhsLine, "the file header (FHS) has no FTS: the file may be cut short, so none of it is sent")
	case !seen:
		return &FileError{File: name, Offset: -1, Reason: "the file is empty"}
	case msgs == 0:
		return &FileError{File: name, Offset: -1, Reason: "the file holds no message (no MSH segment)"}
	}
	return nil
}

func openHL7(path, name string, opt Options) (*Reader, error) {
	win1252, err := checkEncoding(path, opt.Profile.Encoding)
	if err != nil {
		return nil, named(err, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{File: name, Offset: -1, Reason: "cannot open", Err: err}
	}
	err = checkHL7(name, decoded(f, win1252))
	f.Close()
	if err != nil {
		return nil, err
	}
	if f, err = os.Open(path); err != nil {
		return nil, &FileError{File: name, Offset: -1, Reason: "cannot open", Err: err}
	}
	r := &Reader{name: name, path: path, opt: opt, enc: hl7.NewEncoder(hl7.DefaultDelimiters)}
	r.opt.Profile.DateFormat = "YYYYMMDD"
	r.valueMaps()
	r.setup()
	s := &hl7Source{r: r, f: f, sc: newSegScanner(decoded(f, win1252))}
	s.b.vals = &r.values
	r.src = s
	return r, nil
}

// named gives a *FileError the file's name as dropped.
func named(err error, name string) error {
	var fe *FileError
	if errors.As(err, &fe) {
		fe.File = name
	}
	return err
}

type hl7Source struct {
	r     *Reader
	f     *os.File
	sc    *segScanner
	n     int       // input messages read
	queue []*Record // records of the message read, not yet handed out
	held  []byte    // the MSH of the next message, read ahead
	hseg  hl7Seg
	arena []byte // the current message's segment texts
	lines []hl7Seg
	views []segView
	b     rowBuilder
}

func (s *hl7Source) close() error            { return s.f.Close() }
func (s *hl7Source) fileProblems() []Problem { return nil }

func (s *hl7Source) read() (*Record, error) {
	for len(s.queue) == 0 {
		ok, err := s.message()
		if err != nil || !ok {
			return nil, err
		}
		s.queue = s.mapMessage()
	}
	rec := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return rec, nil
}

// message collects the next message's segments into s.lines, from its MSH
// to the segment before the next MSH, BHS, BTS or FTS.
func (s *hl7Source) message() (bool, error) {
	s.arena, s.lines = s.arena[:0], s.lines[:0]
	keep := func(seg hl7Seg) {
		from := len(s.arena)
		s.arena = append(s.arena, seg.text...)
		seg.text = s.arena[from:len(s.arena):len(s.arena)]
		s.lines = append(s.lines, seg)
	}
	if s.held != nil {
		s.hseg.text = s.held
		keep(s.hseg)
		s.held = nil
	}
	for {
		seg, err := s.sc.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, scanError(s.r.name, s.sc.line, err)
		}
		switch segID(seg.text) {
		case "MSH":
			if len(s.lines) > 0 {
				s.held = append([]byte(nil), seg.text...)
				s.hseg = seg
				return true, nil
			}
			keep(seg)
		case "FHS", "BHS", "BTS", "FTS":
			if len(s.lines) > 0 {
				return true, nil
			}
		default:
			if len(s.lines) > 0 { // checkHL7 saw to it that nothing stands outside a message
				keep(seg)
			}
		}
	}
	return len(s.lines) > 0, nil
}

// hl7Group is one ORC/RXA/RXR/OBX group of a message, by segment index.
type hl7Group struct {
	first, orc, rxa, rxr int
	obx                  []int
}

func (s *hl7Source) where(rec *Record, c Col) string { return hl7Where(rec.seq, rec.occ, c.Field()) }

func (s *hl7Source) origin(rec *Record) string {
	return fmt.Sprintf("message %d, line %d", rec.seq, rec.Line)
}

// hl7Where names a field of a message's occ-th group, e.g. "message 3,
// RXA[2]-15".
func hl7Where(seq, occ int, field string) string {
	if occ > 1 && len(field) > 3 {
		switch seg := field[:3]; seg {
		case "ORC", "RXA", "RXR":
			field = fmt.Sprintf("%s[%d]%s", seg, occ, field[3:])
		case "OBX":
			field = fmt.Sprintf("%s of RXA[%d]", field, occ)
		}
	}
	return fmt.Sprintf("message %d, %s", seq, field)
}

// mapMessage turns the message in s.lines into its records.
func (s *hl7Source) mapMessage() []*Record {
	s.n++
	n := s.n
	lines := s.lines
	msh := lines[0]
	end := lines[len(lines)-1].end
	name := s.r.name
	whole := func(rule, field, format string, args ...any) []*Record {
		rec := &Record{Line: msh.line, Start: msh.start, End: end, syntax: true, seq: n, brk: true}
		rec.Problems = []Problem{{File: name, Line: msh.line, Field: field, Where: fmt.Sprintf("message %d, %s", n, field),
			Rule: rule, Severity: Error, Text: fmt.Sprintf(format, args...)}}
		return []*Record{rec}
	}
	// Only MSH-1 and MSH-2 are parsed here, for the delimiters; the fields
	// are read from the text as they are needed (segView).
	enc := msh.text
	if len(enc) > 4 {
		if i := bytes.IndexByte(enc[4:], enc[3]); i >= 0 {
			enc = enc[:4+i]
		}
	}
	hm, err := hl7.Parse(enc)
	if err != nil {
		return whole("hl7-syntax", "MSH-2", "the MSH segment cannot be read (%v): the message is not sent", errors.Unwrap(err))
	}
	d := hm.Delims
	mshSeg := newSegView(d, msh.text)
	if typ, trig := mshSeg.get(9, 1), mshSeg.get(9, 2); typ != "VXU" || trig != "V04" {
		what := short(typ)
		if trig != "" {
			what += "^" + short(trig)
		}
		if what == "" {
			what = "of no type (MSH-9 is empty)"
		}
		return whole("not-vxu", "MSH-9", "message %d is %s, not VXU^V04: izdrop sends vaccination messages (VXU^V04) only; this one is not sent", n, what)
	}
	segs := s.views[:0]
	for i := range lines {
		segs = append(segs, newSegView(d, lines[i].text))
	}
	s.views = segs

	var warns []Problem // about the message: every record gets them
	warn := func(sev Severity, rule, where, format string, args ...any) {
		warns = append(warns, Problem{File: name, Where: fmt.Sprintf("message %d, %s", n, where), Rule: rule, Severity: sev, Text: fmt.Sprintf(format, args...)})
	}
	pid, pd1, nk1 := -1, -1, -1
	var groups []hl7Group
	for i := 1; i < len(segs); i++ {
		g := len(groups) - 1
		switch id := segs[i].id; id {
		case "PID":
			if pid >= 0 {
				return whole("pid-repeated", "PID", "message %d has more than one PID segment (lines %d and %d): a VXU holds one patient; the message is not sent", n, lines[pid].line, lines[i].line)
			}
			pid = i
		case "PD1":
			if pd1 < 0 {
				pd1 = i
			}
		case "NK1":
			if nk1 < 0 && segs[i].get(2, 1) != "" {
				nk1 = i
			}
		case "ORC":
			groups = append(groups, hl7Group{first: i, orc: i, rxa: -1, rxr: -1})
		case "RXA":
			if g < 0 || groups[g].rxa >= 0 {
				groups = append(groups, hl7Group{first: i, orc: -1, rxa: i, rxr: -1})
			} else {
				groups[g].rxa = i
			}
		case "RXR":
			if g >= 0 && groups[g].rxr < 0 {
				groups[g].rxr = i
			}
		case "OBX":
			if g >= 0 {
				groups[g].obx = append(groups[g].obx, i)
			} else {
				warn(Warning, "obx-unmapped", "OBX", "an OBX before any RXA (line %d) is not about a dose; it is not sent", lines[i].line)
			}
		default:
			if id == "" {
				warn(Warning, "segment-invalid", fmt.Sprintf("line %d", lines[i].line), "a line that is not an HL7 segment (no segment id) inside the message; ignored")
			}
		}
	}
	if pid < 0 {
		return whole("pid-missing", "PID", "message %d has no PID segment: no patient to report; the message is not sent", n)
	}
	if len(groups) == 0 {
		return whole("rxa-missing", "RXA", "message %d has no RXA segment: no vaccination to report; the message is not sent", n)
	}

	opt := &s.r.opt
	h := &msgHeader{}
	if ctrl := mshSeg.get(10, 1); keepableControlID(ctrl) {
		h.controlID = ctrl
	}
	msh22 := ""
	if !opt.Profile.SetSiteFields {
		h.facility, h.region = mshSeg.get(4, 1), mshSeg.get(6, 1)
		if h.region != "" && (len(h.region) != 6 || !strings.HasPrefix(h.region, "CAIR")) {
			warn(Error, "region-invalid", "MSH-6", "%q is not a CAIR region code such as CAIRBA or CAIRLO (set set_site_fields = true in the profile to send the inbox site's)", short(h.region))
		}
		if p := mshSeg.get(11, 1); p != "" && p != "P" {
			warn(Error, "processing-id", "MSH-11", "the message is marked %q (test or debug), and CAIR takes P (production) only; set set_site_fields = true in the profile to send it as P", short(p))
		}
		if msh22 = mshSeg.get(22, 1); msh22 == "" {
			msh22 = mshSeg.get(22, 10)
		}
	}

	b := &s.b
	b.reset()
	s.patient(b, segs, pid, pd1, nk1, h, warn)
	patLen, patHas := len(b.buf), b.has

	recs := make([]*Record, 0, len(groups))
	for k, g := range groups {
		b.buf, b.has = b.buf[:patLen], patHas
		occ := k + 1
		gEnd := end
		if k+1 < len(groups) {
			gEnd = lines[groups[k+1].first].start
		}
		rec := &Record{Start: lines[g.first].start, End: gEnd, seq: n, occ: occ, brk: k == 0, hdr: h}
		if g.rxa < 0 {
			rec.Line = lines[g.first].line
			rec.syntax = true
			rec.Problems = []Problem{{File: name, Line: rec.Line, Field: "RXA", Where: hl7Where(n, occ, "RXA"), Rule: "rxa-missing", Severity: Error,
				Text: fmt.Sprintf("the ORC at line %d has no RXA: no vaccination to report", rec.Line)}}
			recs = append(recs, rec)
			continue
		}
		rec.Line = lines[g.rxa].line
		for _, w := range warns {
			w.Line = rec.Line
			rec.Problems = append(rec.Problems, w)
		}
		dwarn := func(rule, field, format string, args ...any) {
			rec.Problems = append(rec.Problems, Problem{File: name, Line: rec.Line, Field: field, Where: hl7Where(n, occ, field),
				Rule: rule, Severity: Warning, Text: fmt.Sprintf(format, args...)})
		}
		s.dose(b, segs, g, msh22, dwarn)
		rec.Row = b.row()
		recs = append(recs, rec)
	}
	return recs
}

// patient maps PID, PD1 and NK1.
func (s *hl7Source) patient(b *rowBuilder, segs []segView, pid, pd1, nk1 int, h *msgHeader, warn func(Severity, string, string, string, ...any)) {
	p := segs[pid]
	mrn := p.rep(3, 1)
	found := false
	p.reps(3, func(rep []byte) {
		if !found && p.value(rep, 5, 1) == "MR" {
			mrn, found = rep, true
		}
	})
	b.put(PatientID, p.value(mrn, 1, 1))
	h.authority = p.value(mrn, 4, 1)
	if t := p.value(mrn, 5, 1); t != "" {
		if _, ok := s.r.opt.Codes.Lookup("HL70203", t); ok {
			h.idType = t
		} else {
			warn(Warning, "id-type-invalid", "PID-3.5", "%q is not an HL70203 identifier type; sent as %s", short(t), s.r.opt.Profile.IDType)
		}
	}
	legal := p.rep(5, 1)
	found = false
	p.reps(5, func(rep []byte) {
		if !found && p.value(rep, 7, 1) == "L" {
			legal, found = rep, true
		}
	})
	b.put(PatientLastName, p.value(legal, 1, 1))
	b.put(PatientFirstName, p.value(legal, 2, 1))
	b.put(PatientMiddleName, p.value(legal, 3, 1))
	b.put(PatientSuffix, p.value(legal, 4, 1))
	b.put(MotherMaidenLastName, p.get(6, 1))
	b.put(PatientBirthDate, hl7Date(p.get(7, 1)))
	b.put(PatientSex, p.get(8, 1))
	var races []string
	p.reps(10, func(rep []byte) {
		code := p.value(rep, 1, 1)
		if code == "" {
			code = p.value(rep, 4, 1)
		}
		if code != "" {
			races = append(races, code)
		}
	})
	b.put(Race, strings.Join(races, ";"))
	found = false
	p.reps(11, func(rep []byte) {
		// BR: the birth residence, not where the patient lives.
		if found || p.emptyRep(rep) || p.value(rep, 7, 1) == "BR" {
			return
		}
		found = true
		b.put(AddressStreet, p.value(rep, 1, 1))
		b.put(AddressStreet2, p.value(rep, 2, 1))
		b.put(AddressCity, p.value(rep, 3, 1))
		b.put(AddressState, p.value(rep, 4, 1))
		b.put(AddressZip, p.value(rep, 5, 1))
		b.put(AddressCounty, p.value(rep, 9, 1))
	})
	phone, email := "", ""
	p.reps(13, func(rep []byte) {
		use, equip := p.value(rep, 2, 1), p.value(rep, 3, 1)
		switch {
		case use == "NET" || strings.EqualFold(equip, "Internet") || equip == "X.400":
			if email == "" {
				email = p.value(rep, 4, 1)
			}
		case phone == "" && p.value(rep, 6, 1)+p.value(rep, 7, 1) != "":
			phone = p.value(rep, 6, 1) + p.value(rep, 7, 1)
		case phone == "":
			phone = p.value(rep, 1, 1)
		}
	})
	b.put(Phone, phone)
	b.put(Email, email)
	b.put(Language, p.get(15, 1))
	b.put(Ethnicity, p.get(22, 1))
	b.put(MultipleBirth, p.get(24, 1))
	b.put(BirthOrder, p.get(25, 1))
	b.put(DeathDate, hl7Date(p.get(29, 1)))
	if pd1 >= 0 {
		d := segs[pd1]
		b.put(ReminderRecall, d.get(11, 1))
		switch prot := d.get(12, 1); prot {
		case "":
		case "Y": // protected: the patient declined sharing
			b.put(ShareWithRegistry, "N")
		case "N":
			b.put(ShareWithRegistry, "Y")
		default:
			warn(Error, "protection-invalid", "PD1-12", "%q is not Y (the patient declined sharing) or N", short(prot))
		}
		if d.get(12, 1) != "" {
			b.put(DisclosureDate, hl7Date(d.get(13, 1)))
		}
		b.put(RegistryStatus, d.get(16, 1))
	}
	if nk1 >= 0 {
		k := segs[nk1]
		name := k.rep(2, 1)
		b.put(GuardianLastName, k.value(name, 1, 1))
		b.put(GuardianFirstName, k.value(name, 2, 1))
		b.put(GuardianRelationship, k.get(3, 1))
	}
}

// The LOINC codes of the OBX observations izdrop sends, by column.
var obxCols = map[string]Col{
	"64994-7": VFCEligibility,
	"30963-3": FundingSource,
	"69764-9": VISDocument,
	"29768-9": VISPublicationDate,
	"29769-7": VISGivenDate,
	"59784-9": ImmunitySNOMED,
}

// dose maps one group's ORC, RXA, RXR and OBX segments.
func (s *hl7Source) dose(b *rowBuilder, segs []segView, g hl7Group, msh22 string, warn func(rule, field, format string, args ...any)) {
	if g.orc >= 0 {
		o := segs[g.orc]
		b.put(VaccinationID, o.get(3, 1))
		b.put(EnteredBy, o.get(10, 1))
		x := o.rep(12, 1)
		b.put(OrderingProviderNPI, o.value(x, 1, 1))
		b.put(OrderingProviderLastName, o.value(x, 2, 1))
		b.put(OrderingProviderFirstName, o.value(x, 3, 1))
	}
	a := segs[g.rxa]
	b.put(AdminDate, hl7Date(a.get(3, 1)))
	vaccine := a.rep(5, 1)
	switch system := a.value(vaccine, 3, 1); {
	case isCVX(system):
		b.put(CVXCode, a.value(vaccine, 1, 1))
	case isCVX(a.value(vaccine, 6, 1)):
		b.put(CVXCode, a.value(vaccine, 4, 1))
	case a.value(vaccine, 1, 1) != "":
		warn("cvx-system", "RXA-5", "the vaccine is coded in %q, not CVX (CAIR takes CVX codes only)", short(system))
	}
	dose, unit := a.get(6, 1), a.get(7, 1)
	if unit != "" && !strings.EqualFold(unit, "mL") && dose != "999" {
		warn("dose-unit", "RXA-7", "the amount is in %q, not mL; it is not sent", short(unit))
		dose = ""
	}
	b.put(DoseML, dose)
	b.put(InfoSource, a.get(9, 1))
	x := a.rep(10, 1)
	b.put(AdministeredByNPI, a.value(x, 1, 1))
	b.put(AdministeredByLastName, a.value(x, 2, 1))
	b.put(AdministeredByFirstName, a.value(x, 3, 1))
	if !s.r.opt.Profile.SetSiteFields {
		site := a.get(11, 4)
		if site == "" {
			site = msh22
		}
		b.put(SiteID, site)
	}
	b.put(LotNumber, a.get(15, 1))
	b.put(LotExpiration, hl7Expiry(a.get(16, 1)))
	switch system := a.get(17, 3); strings.ToUpper(system) {
	case "", "MVX", "HL70227":
		b.put(MVXCode, a.get(17, 1))
	default:
		warn("mvx-system", "RXA-17", "the manufacturer is coded in %q, not MVX; it is not sent", short(system))
	}
	b.put(RefusalReason, a.get(18, 1))
	b.put(CompletionStatus, a.get(20, 1))
	b.put(Action, a.get(21, 1))
	if g.rxr >= 0 {
		r := segs[g.rxr]
		b.put(Route, r.get(1, 1))
		b.put(BodySite, r.get(2, 1))
	}
	for _, i := range g.obx {
		o := segs[i]
		loinc := o.get(3, 1)
		c, ok := obxCols[loinc]
		if !ok {
			if loinc != "30956-7" { // the VIS's vaccine type: izdrop writes it from RXA-5
				warn("obx-unmapped", "OBX-3", "an observation %q that izdrop does not send; left out", short(loinc))
			}
			continue
		}
		v := o.get(5, 1)
		if c == VISPublicationDate || c == VISGivenDate {
			v = hl7Date(v)
		}
		if prev := b.get(c); prev != "" {
			if prev != strings.TrimSpace(v) {
				warn("obx-repeated", "OBX-5", "a second %s observation for this dose; only the first is sent", loinc)
			}
			continue
		}
		b.put(c, v)
	}
}

func isCVX(system string) bool {
	return strings.EqualFold(system, "CVX") || strings.EqualFold(system, "HL70292")
}

// hl7Date returns the date (YYYYMMDD) of an HL7 DT or TS value; a value
// that does not start with one is returned as it is, for the date check to
// refuse.
func hl7Date(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 8 || !isDigits(s[:8]) {
		return s
	}
	for i := 8; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-') {
			return s
		}
	}
	return s[:8]
}

// hl7Expiry is hl7Date that also takes YYYYMM (the month's last day).
func hl7Expiry(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 6 && isDigits(s) {
		return s[:4] + "-" + s[4:]
	}
	return hl7Date(s)
}

// keepableControlID reports whether an input MSH-10 can be sent as it is:
// 1 to 20 printable characters, none of them a space or an HL7 delimiter.
func keepableControlID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || strings.IndexByte(`|^~\&`, c) >= 0 {
			return false
		}
	}
	return true
}
