package transform

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FHIR input (FormatFHIR): FHIR R4 Patient and Immunization resources from
// a bulk export ($export), in one of three shapes:
//
//   - a pair of NDJSON files, PREFIX Patient.ndjson and PREFIX
//     Immunization.ndjson (see Partner): the Immunization file is the one
//     read, record by record; its Patient file must be beside it (an inbox
//     takes the two together);
//   - a Bundle (JSON, type collection, transaction or batch) holding both;
//   - one NDJSON file holding both.
//
// Open indexes the patients first (where each Patient resource is, by
// "Patient/<id>" and, in a Bundle, by fullUrl; a few bytes per patient),
// then every Immunization is mapped, with its patient's resource read back,
// onto the default layout's columns and checked by the same rules as a CSV
// row. A patient's consecutive Immunizations become one message, as a
// patient's consecutive CSV rows do.
//
// A record's Line is its NDJSON line (its entry number in a Bundle). An
// Immunization line that is not JSON, or is another resource, is an
// invalid record naming its line; a Patient line that cannot be read is a
// warning about the file, and the Immunizations that point to it are
// invalid. Problems name the FHIR element a value came from, and for the
// patient's values the Patient file and line, e.g.
// "Patient.ndjson:7, Patient.birthDate".
//
// The mapping (FHIR element -> VXU field):
//
//	Patient.identifier (type MR, else the first)     PID-3
//	Patient.name (official, else usual, else first)  PID-5
//	patient-mothersMaidenName extension              PID-6
//	Patient.birthDate, gender                        PID-7, PID-8
//	us-core-race, us-core-ethnicity (ombCategory)    PID-10, PID-22
//	Patient.address, telecom, communication          PID-11, PID-13, PID-15
//	Patient.multipleBirth[x], deceasedDateTime       PID-24/25, PID-29
//	Patient.contact (name, relationship)             NK1
//	Immunization.identifier (else id)                ORC-3
//	Immunization.occurrenceDateTime                  RXA-3 (in the registry's time zone)
//	Immunization.vaccineCode (http://hl7.org/fhir/sid/cvx)   RXA-5
//	Immunization.doseQuantity (mL)                   RXA-6
//	primarySource / reportOrigin                     RXA-9 (NIP001)
//	Immunization.performer (function AP, OP)         RXA-10, ORC-12
//	Immunization.lotNumber, expirationDate           RXA-15, RXA-16
//	Immunization.manufacturer (http://hl7.org/fhir/sid/mvx)  RXA-17
//	status not-done + statusReason                   RXA-18, RXA-20 (refusal, or not administered)
//	status entered-in-error                          RXA-21 D (delete)
//	isSubpotent                                      RXA-20 PA
//	Immunization.route, site                         RXR-1, RXR-2
//	Immunization.programEligibility                  OBX 64994-7 (VFC)
//	Immunization.fundingSource                       OBX 30963-3
//	Immunization.education                           OBX 69764-9, 29768-9, 29769-7
//
// FHIR has no element for the CAIR sharing choice (PD1-12), reminder
// preference (PD1-11) or registry status (PD1-16): those are left empty (the
// status defaults to A). Every Immunization is sent as an add (RXA-21 A),
// one entered-in-error as a delete.

const (
	systemCVX = "http://hl7.org/fhir/sid/cvx"
	systemMVX = "http://hl7.org/fhir/sid/mvx"
	systemNPI = "http://hl7.org/fhir/sid/us-npi"
)

type fhirCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type fhirConcept struct {
	Coding []fhirCoding `json:"coding"`
}

// code returns the code of the first coding whose system passes ok (any
// system when ok is nil).
func (c *fhirConcept) code(ok func(system string) bool) string {
	if c == nil {
		return ""
	}
	for _, cd := range c.Coding {
		if cd.Code != "" && (ok == nil || ok(cd.System)) {
			return cd.Code
		}
	}
	return ""
}

type fhirIdentifier struct {
	System string       `json:"system"`
	Value  string       `json:"value"`
	Type   *fhirConcept `json:"type"`
}

type fhirReference struct {
	Reference  string          `json:"reference"`
	Identifier *fhirIdentifier `json:"identifier"`
}

type fhirName struct {
	Use    string   `json:"use"`
	Family string   `json:"family"`
	Given  []string `json:"given"`
	Suffix []string `json:"suffix"`
}

type fhirExtension struct {
	URL         string          `json:"url"`
	ValueString string          `json:"valueString"`
	ValueCoding *fhirCoding     `json:"valueCoding"`
	Extension   []fhirExtension `json:"extension"`
}

type fhirPatient struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Identifier   []fhirIdentifier `json:"identifier"`
	Name         []fhirName       `json:"name"`
	Gender       string           `json:"gender"`
	BirthDate    string           `json:"birthDate"`
	Deceased     string           `json:"deceasedDateTime"`
	Address      []struct {
		Use        string   `json:"use"`
		Line       []string `json:"line"`
		City       string   `json:"city"`
		District   string   `json:"district"`
		State      string   `json:"state"`
		PostalCode string   `json:"postalCode"`
	} `json:"address"`
	Telecom []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"telecom"`
	MultipleBirthBoolean *bool `json:"multipleBirthBoolean"`
	MultipleBirthInteger *int  `json:"multipleBirthInteger"`
	Communication        []struct {
		Language  fhirConcept `json:"language"`
		Preferred bool        `json:"preferred"`
	} `json:"communication"`
	Contact []struct {
		Relationship []fhirConcept `json:"relationship"`
		Name         *fhirName     `json:"name"`
	} `json:"contact"`
	Extension []fhirExtension `json:"extension"`
}

type fhirImmunization struct {
	ResourceType       string           `json:"resourceType"`
	ID                 string           `json:"id"`
	Identifier         []fhirIdentifier `json:"identifier"`
	Status             string           `json:"status"`
	StatusReason       *fhirConcept     `json:"statusReason"`
	VaccineCode        fhirConcept      `json:"vaccineCode"`
	Patient            fhirReference    `json:"patient"`
	OccurrenceDateTime string           `json:"occurrenceDateTime"`
	OccurrenceString   string           `json:"occurrenceString"`
	PrimarySource      *bool            `json:"primarySource"`
	ReportOrigin       *fhirConcept     `json:"reportOrigin"`
	Manufacturer       *fhirReference   `json:"manufacturer"`
	LotNumber          string           `json:"lotNumber"`
	ExpirationDate     string           `json:"expirationDate"`
	Site               *fhirConcept     `json:"site"`
	Route              *fhirConcept     `json:"route"`
	DoseQuantity       *struct {
		Value json.Number `json:"value"`
		Unit  string      `json:"unit"`
		Code  string      `json:"code"`
	} `json:"doseQuantity"`
	Performer []struct {
		Function *fhirConcept  `json:"function"`
		Actor    fhirReference `json:"actor"`
	} `json:"performer"`
	IsSubpotent *bool `json:"isSubpotent"`
	Education   []struct {
		DocumentType     string `json:"documentType"`
		PublicationDate  string `json:"publicationDate"`
		PresentationDate string `json:"presentationDate"`
	} `json:"education"`
	ProgramEligibility []fhirConcept `json:"programEligibility"`
	FundingSource      *fhirConcept  `json:"fundingSource"`
	Contained          []fhirAny     `json:"contained"`
}

// fhirAny is what izdrop reads of a Practitioner or an Organization.
type fhirAny struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Identifier   []fhirIdentifier `json:"identifier"`
	Name         json.RawMessage  `json:"name"` // a Practitioner's is a list of names, an Organization's a string
}

func (a *fhirAny) identifier(system string) string {
	for _, id := range a.Identifier {
		if id.System == system && id.Value != "" {
			return id.Value
		}
	}
	return ""
}

// resLoc is where a resource is in a file.
type resLoc struct {
	start, end int64
	line       int // line, or Bundle entry
	dup        int // the line of another resource with the same reference, if any
}

// fhirSource reads Immunizations from an NDJSON file or a Bundle.
type fhirSource struct {
	r        *Reader
	data     *os.File
	res      *os.File // the file holding the patients: data itself, or the partner
	dataName string   // names for problem texts
	resName  string
	bundle   bool
	pair     bool
	index    map[uint64]resLoc // by a hash of "Patient/<id>" (and of fullUrl in a Bundle); also Practitioners and Organizations
	badLines []int             // lines of the patients' file that could not be read
	problems []Problem

	br   *bufio.Reader
	walk *bundleWalker
	line int
	off  int64
	raw  []byte

	cacheRef string // the last patient read back
	cacheLoc resLoc
	cachePat *fhirPatient
	cacheErr string
	b        rowBuilder
}

func refKey(ref string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(ref))
	return h.Sum64()
}

func openFHIR(path, name string, opt Options) (*Reader, error) {
	s := &fhirSource{dataName: name, resName: name, index: map[uint64]resLoc{}}
	partnerPath := path
	if partner, data, ok := Partner(filepath.Base(path)); ok {
		display, _, _ := Partner(name)
		if !data {
			return nil, &FileError{File: name, Offset: -1, Reason: fmt.Sprintf("this is the Patient file of a FHIR export; izdrop reads it with its Immunization file, %s", display)}
		}
		partnerPath = filepath.Join(filepath.Dir(path), partner)
		if _, err := os.Stat(partnerPath); err != nil {
			return nil, &FileError{File: name, Offset: -1, Reason: fmt.Sprintf("its partner %s is not there: a FHIR export comes as a pair, PREFIX Patient.ndjson and PREFIX Immunization.ndjson, read together", display), Err: err}
		}
		s.pair, s.resName = true, display
	}
	for _, p := range []string{path, partnerPath} {
		if _, err := checkEncoding(p, "utf-8"); err != nil {
			if p == partnerPath && s.pair {
				return nil, named(err, s.resName)
			}
			return nil, named(err, name)
		}
	}
	var err error
	if s.data, err = os.Open(path); err != nil {
		return nil, &FileError{File: name, Offset: -1, Reason: "cannot open", Err: err}
	}
	s.res = s.data
	if s.pair {
		if s.res, err = os.Open(partnerPath); err != nil {
			s.data.Close()
			return nil, &FileError{File: s.resName, Offset: -1, Reason: "cannot open", Err: err}
		}
	}
	if err := s.indexResources(); err != nil {
		s.close()
		return nil, err
	}
	if _, err := s.data.Seek(0, io.SeekStart); err != nil {
		s.close()
		return nil, &FileError{File: name, Offset: -1, Reason: "read error", Err: err}
	}
	if s.bundle {
		s.walk = newBundleWalker(s.data)
	} else {
		s.br = bufio.NewReaderSize(s.data, 64*1024)
	}
	r := &Reader{name: name, path: path, opt: opt}
	r.opt.Profile.DateFormat = "YYYY-MM-DD"
	r.valueMaps()
	r.setup()
	s.r = r
	s.b.vals = &r.values
	r.src = s
	return r, nil
}

func (s *fhirSource) close() error {
	if s.res != nil && s.res != s.data {
		s.res.Close()
	}
	return s.data.Close()
}

func (s *fhirSource) fileProblems() []Problem { return s.problems }

// indexResources finds where the patients (and Practitioners and
// Organizations) are. It also tells a Bundle from NDJSON.
func (s *fhirSource) indexResources() error {
	first, err := firstByte(s.data)
	if err != nil {
		return &FileError{File: s.dataName, Offset: -1, Reason: "read error", Err: err}
	}
	if first == 0 {
		return &FileError{File: s.dataName, Offset: -1, Reason: "the file is empty"}
	}
	if first != '{' {
		return &FileError{File: s.dataName, Offset: -1, Line: 1, Reason: "not FHIR JSON: the file does not begin with a JSON object"}
	}
	if !s.pair {
		isBundle, err := looksLikeBundle(s.data)
		if err != nil {
			return &FileError{File: s.dataName, Offset: -1, Reason: "read error", Err: err}
		}
		s.bundle = isBundle
	}
	if s.bundle {
		return s.indexBundle()
	}
	if _, err := s.res.Seek(0, io.SeekStart); err != nil {
		return &FileError{File: s.resName, Offset: -1, Reason: "read error", Err: err}
	}
	br := bufio.NewReaderSize(s.res, 64*1024)
	var off int64
	var skipped []int
	var buf []byte
	for line := 1; ; line++ {
		raw, n, err := readLine(br, &buf)
		if err == io.EOF && n == 0 {
			break
		}
		if err != nil && err != io.EOF {
			return s.lineError(s.resName, line, err)
		}
		start := off
		off += int64(n)
		body := bytes.TrimSpace(trimBOM(raw, start))
		if len(body) == 0 {
			continue
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal(body, &head); err != nil {
			if s.pair {
				s.badLines = append(s.badLines, line)
			}
			continue // in a file of both, the Immunization lines report themselves
		}
		switch head.ResourceType {
		case "Patient", "Practitioner", "Organization":
			s.add(head.ResourceType+"/"+head.ID, resLoc{start: start, end: off, line: line})
		default:
			if s.pair {
				skipped = append(skipped, line)
			}
		}
	}
	if len(s.badLines) > 0 {
		s.problems = append(s.problems, Problem{File: s.dataName, Rule: "patient-unreadable", Severity: Warning,
			Text: fmt.Sprintf("%s: line(s) %s are not valid JSON; Immunizations of those patients cannot be sent", s.resName, lineList(s.badLines))})
	}
	if len(skipped) > 0 {
		s.problems = append(s.problems, Problem{File: s.dataName, Rule: "resource-ignored", Severity: Warning,
			Text: fmt.Sprintf("%s: line(s) %s hold other resources than Patient; ignored", s.resName, lineList(skipped))})
	}
	return nil
}

func (s *fhirSource) add(ref string, loc resLoc) {
	k := refKey(ref)
	if prev, ok := s.index[k]; ok {
		loc.dup = prev.line
	}
	s.index[k] = loc
}

func (s *fhirSource) lineError(file string, line int, err error) error {
	if errors.Is(err, errLineTooLong) {
		return &FileError{File: file, Offset: -1, Line: line, Reason: "a line longer than 16 MiB: not FHIR NDJSON"}
	}
	return &FileError{File: file, Offset: -1, Line: line, Reason: "read error", Err: err}
}

// lineList writes up to ten line numbers.
func lineList(lines []int) string {
	var b strings.Builder
	for i, l := range lines {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(lines)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(l))
	}
	return b.String()
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (with its \n), n its length in the file; buf
// holds lines longer than the reader's buffer.
func readLine(br *bufio.Reader, buf *[]byte) ([]byte, int, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		*buf = append((*buf)[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(*buf) > maxSegment {
				return nil, 0, errLineTooLong
			}
			line, err = br.ReadSlice('\n')
			*buf = append(*buf, line...)
		}
		line = *buf
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	return line, len(line), err
}

func trimBOM(b []byte, off int64) []byte {
	if off == 0 {
		return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	}
	return b
}

// firstByte returns the file's first byte that is not white space or a
// byte-order mark (0 for none).
func firstByte(f *os.File) (byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	br := bufio.NewReader(f)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c, nil
		}
	}
}

// looksLikeBundle reports whether the file's first JSON value is a Bundle:
// its first line then does not hold a whole resource (NDJSON) or holds one
// with resourceType Bundle.
func looksLikeBundle(f *os.File) (bool, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	var buf []byte
	line, _, err := readLine(bufio.NewReaderSize(f, 64*1024), &buf)
	if err != nil && err != io.EOF && !errors.Is(err, errLineTooLong) {
		return false, err
	}
	body := bytes.TrimSpace(trimBOM(line, 0))
	if !json.Valid(body) {
		return true, nil // a value over several lines: only a Bundle is written so
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	json.Unmarshal(body, &head)
	return head.ResourceType == "Bundle", nil
}

func (s *fhirSource) indexBundle() error {
	w := newBundleWalker(s.data)
	for {
		e, err := w.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &FileError{File: s.dataName, Offset: -1, Reason: bundleReason(w, e.n, err)}
		}
		var head struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if json.Unmarshal(e.resource, &head) != nil {
			continue // reported when the entry is read
		}
		switch head.ResourceType {
		case "Patient", "Practitioner", "Organization":
			loc := resLoc{start: e.start, end: e.end, line: e.n}
			if head.ID != "" {
				s.add(head.ResourceType+"/"+head.ID, loc)
			}
			if e.fullURL != "" && e.fullURL != head.ResourceType+"/"+head.ID {
				s.add(e.fullURL, loc)
			}
		}
	}
	if w.typ != "Bundle" {
		what := "has no resourceType"
		if w.typ != "" {
			what = fmt.Sprintf("is a %s", short(w.typ))
		}
		return &FileError{File: s.dataName, Offset: -1, Reason: fmt.Sprintf("not a Bundle: the JSON object %s; izdrop reads a Bundle, or a Patient.ndjson + Immunization.ndjson pair", what)}
	}
	switch w.bundleType {
	case "collection", "transaction", "batch":
	default:
		return &FileError{File: s.dataName, Offset: -1, Reason: fmt.Sprintf("a Bundle of type %q: izdrop reads collection, transaction and batch Bundles", short(w.bundleType))}
	}
	return nil
}

// bundleReason says why a Bundle cannot be read; n is the entry being read,
// 0 when the error is between entries.
func bundleReason(w *bundleWalker, n int, err error) string {
	var se *json.SyntaxError
	switch {
	case n > 0 && errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("the Bundle is cut short in entry %d: nothing of it is sent", n)
	case n > 0:
		return fmt.Sprintf("entry %d cannot be read (%v): nothing of the Bundle is sent", n, jsonReason(err))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("the Bundle is cut short after entry %d: nothing of it is sent", w.n)
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON after entry %d (%v): nothing of it is sent", w.n, jsonReason(err))
	}
	return fmt.Sprintf("not a Bundle (%v): nothing of it is sent", jsonReason(err))
}

// bundleEntry is one entry of a Bundle as the walker found it.
type bundleEntry struct {
	n          int // 1-based
	fullURL    string
	resource   json.RawMessage
	start, end int64
}

// bundleWalker streams a Bundle's entries without holding the Bundle.
type bundleWalker struct {
	dec        *json.Decoder
	base       int64 // bytes before the JSON (a byte-order mark)
	state      int   // 0 before the Bundle, 1 in "entry", 2 elsewhere in the Bundle
	end        bool  // the Bundle was read to its end
	n          int
	typ        string
	bundleType string
}

func newBundleWalker(f *os.File) *bundleWalker {
	f.Seek(0, io.SeekStart)
	br := bufio.NewReaderSize(f, 64*1024)
	w := &bundleWalker{}
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		w.base = 3
	}
	w.dec = json.NewDecoder(br)
	return w
}

// next returns the next entry, io.EOF after the last (having read the rest
// of the Bundle's fields). On an error, the entry's n is the entry that
// could not be read, 0 for an error between entries.
func (w *bundleWalker) next() (bundleEntry, error) {
	e, err := w.step()
	if err == io.EOF && !w.end {
		err = io.ErrUnexpectedEOF
	}
	return e, err
}

func (w *bundleWalker) step() (bundleEntry, error) {
	if w.state == 0 {
		if t, err := w.dec.Token(); err != nil {
			return bundleEntry{}, err
		} else if d, ok := t.(json.Delim); !ok || d != '{' {
			return bundleEntry{}, errors.New("the file is not a JSON object")
		}
		w.state = 2
	}
	for {
		if w.state == 1 {
			if w.dec.More() {
				w.n++
				e := bundleEntry{n: w.n, start: w.dec.InputOffset() + w.base}
				var raw struct {
					FullURL  string          `json:"fullUrl"`
					Resource json.RawMessage `json:"resource"`
				}
				if err := w.dec.Decode(&raw); err != nil {
					return e, err
				}
				e.end = w.dec.InputOffset() + w.base
				e.fullURL, e.resource = raw.FullURL, raw.Resource
				return e, nil
			}
			if _, err := w.dec.Token(); err != nil { // ]
				return bundleEntry{}, err
			}
			w.state = 2
		}
		if !w.dec.More() {
			if _, err := w.dec.Token(); err != nil { // }
				return bundleEntry{}, err
			}
			if _, err := w.dec.Token(); err != io.EOF {
				if err == nil {
					err = errors.New("more JSON after the Bundle")
				}
				return bundleEntry{}, err
			}
			w.end = true
			return bundleEntry{}, io.EOF
		}
		t, err := w.dec.Token()
		if err != nil {
			return bundleEntry{}, err
		}
		key, _ := t.(string)
		switch key {
		case "resourceType", "type":
			var v string
			if err := w.dec.Decode(&v); err != nil {
				return bundleEntry{}, err
			}
			if key == "type" {
				w.bundleType = v
			} else {
				w.typ = v
			}
		case "entry":
			if t, err := w.dec.Token(); err != nil {
				return bundleEntry{}, err
			} else if d, ok := t.(json.Delim); !ok || d != '[' {
				return bundleEntry{}, errors.New("entry is not a list")
			}
			w.state = 1
		default:
			var skip json.RawMessage
			if err := w.dec.Decode(&skip); err != nil {
				return bundleEntry{}, err
			}
		}
	}
}

// item is one resource of the data file: an NDJSON line or a Bundle entry.
type item struct {
	n          int // line or entry
	start, end int64
	body       []byte
	err        error // the line or entry could not be read
}

func (s *fhirSource) nextItem() (item, error) {
	if s.bundle {
		e, err := s.walk.next()
		if err == io.EOF {
			return item{}, io.EOF
		}
		if err != nil {
			// checkBundle read the whole Bundle: this cannot happen unless
			// the file changed since.
			return item{}, &FileError{File: s.dataName, Offset: -1, Reason: bundleReason(s.walk, e.n, err)}
		}
		return item{n: e.n, start: e.start, end: e.end, body: e.resource}, nil
	}
	for {
		raw, n, err := readLine(s.br, &s.raw)
		if err == io.EOF && n == 0 {
			return item{}, io.EOF
		}
		s.line++
		if err != nil && err != io.EOF {
			return item{}, s.lineError(s.dataName, s.line, err)
		}
		it := item{n: s.line, start: s.off, end: s.off + int64(n)}
		it.body = bytes.TrimSpace(trimBOM(raw, s.off))
		s.off += int64(n)
		if len(it.body) == 0 {
			continue
		}
		return it, nil
	}
}

func (s *fhirSource) read() (*Record, error) {
	for {
		it, err := s.nextItem()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		rec := &Record{Line: it.n, Start: it.start, End: it.end}
		bad := func(rule, format string, args ...any) *Record {
			rec.syntax = true
			rec.Problems = []Problem{{File: s.r.name, Line: it.n, Where: s.place(it.n), Rule: rule, Severity: Error, Text: fmt.Sprintf(format, args...)}}
			return rec
		}
		var imm fhirImmunization
		if err := json.Unmarshal(it.body, &imm); err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) || !json.Valid(it.body) {
				return bad("json-invalid", "not valid JSON: %v; this line is not sent", jsonReason(err)), nil
			}
			return bad("fhir-unreadable", "cannot be read as a FHIR Immunization: %v; it is not sent", jsonReason(err)), nil
		}
		if imm.ResourceType != "Immunization" {
			if !s.pair {
				continue // a patient or a supporting resource of a Bundle or a file of both
			}
			what := "no resourceType"
			if imm.ResourceType != "" {
				what = "a " + short(imm.ResourceType)
			}
			return bad("not-immunization", "holds %s, not an Immunization: an Immunization file holds one Immunization per line; this line is not sent", what), nil
		}
		s.mapImmunization(rec, &imm)
		return rec, nil
	}
}

// jsonReason is a JSON error without the Go type names that mean nothing
// to a reader of the file.
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s holds a JSON %s where FHIR has another type", te.Field, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// place names a Bundle entry for a problem's Where (an NDJSON line is the
// problem's own File and Line).
func (s *fhirSource) place(n int) string {
	if s.bundle {
		return fmt.Sprintf("entry %d", n)
	}
	return ""
}

func (s *fhirSource) origin(rec *Record) string {
	if s.bundle {
		return fmt.Sprintf("entry %d", rec.Line)
	}
	return fmt.Sprintf("%s line %d", s.dataName, rec.Line)
}

// fhirElems names the FHIR element each column comes from.
var fhirElems = [numCols]string{
	PatientID: "Patient.identifier", PatientLastName: "Patient.name.family", PatientFirstName: "Patient.name.given",
	PatientMiddleName: "Patient.name.given", PatientSuffix: "Patient.name.suffix",
	MotherMaidenLastName: "Patient.extension:mothersMaidenName", PatientBirthDate: "Patient.birthDate", PatientSex: "Patient.gender",
	Race: "Patient.extension:us-core-race", Ethnicity: "Patient.extension:us-core-ethnicity",
	AddressStreet: "Patient.address.line", AddressStreet2: "Patient.address.line", AddressCity: "Patient.address.city",
	AddressState: "Patient.address.state", AddressZip: "Patient.address.postalCode", AddressCounty: "Patient.address.district",
	Phone: "Patient.telecom", Email: "Patient.telecom", Language: "Patient.communication.language",
	MultipleBirth: "Patient.multipleBirth[x]", BirthOrder: "Patient.multipleBirthInteger", DeathDate: "Patient.deceasedDateTime",
	ShareWithRegistry: "(none)", DisclosureDate: "(none)", ReminderRecall: "(none)", RegistryStatus: "(none)",
	GuardianLastName: "Patient.contact.name", GuardianFirstName: "Patient.contact.name", GuardianRelationship: "Patient.contact.relationship",
	VaccinationID: "Immunization.identifier", AdminDate: "Immunization.occurrenceDateTime", CVXCode: "Immunization.vaccineCode",
	VaccineName: "Immunization.vaccineCode", DoseML: "Immunization.doseQuantity", InfoSource: "Immunization.primarySource",
	LotNumber: "Immunization.lotNumber", LotExpiration: "Immunization.expirationDate", MVXCode: "Immunization.manufacturer",
	Route: "Immunization.route", BodySite: "Immunization.site",
	AdministeredByNPI: "Immunization.performer", AdministeredByLastName: "Immunization.performer", AdministeredByFirstName: "Immunization.performer",
	OrderingProviderNPI: "Immunization.performer", OrderingProviderLastName: "Immunization.performer", OrderingProviderFirstName: "Immunization.performer",
	EnteredBy: "(none)", SiteID: "(none)", VFCEligibility: "Immunization.programEligibility", FundingSource: "Immunization.fundingSource",
	VISDocument: "Immunization.education.documentType", VISPublicationDate: "Immunization.education.publicationDate",
	VISGivenDate: "Immunization.education.presentationDate", RefusalReason: "Immunization.statusReason",
	CompletionStatus: "Immunization.status", Action: "Immunization.status", ImmunitySNOMED: "(none)",
}

func (s *fhirSource) where(rec *Record, c Col) string {
	if c == SiteID {
		return "the inbox's site"
	}
	if c < firstVaccinationCol {
		if s.bundle {
			return fmt.Sprintf("entry %d, %s", rec.pline, fhirElems[c])
		}
		return fmt.Sprintf("%s:%d, %s", s.resName, rec.pline, fhirElems[c])
	}
	if s.bundle {
		return fmt.Sprintf("entry %d, %s", rec.Line, fhirElems[c])
	}
	return fhirElems[c]
}

// patient reads back the patient an Immunization points to.
func (s *fhirSource) patient(ref string) (*fhirPatient, resLoc, string) {
	ref = strings.TrimSpace(ref)
	if ref == s.cacheRef && ref != "" {
		return s.cachePat, s.cacheLoc, s.cacheErr
	}
	p, loc, why := s.lookupPatient(ref)
	s.cacheRef, s.cachePat, s.cacheLoc, s.cacheErr = ref, p, loc, why
	return p, loc, why
}

func (s *fhirSource) lookupPatient(ref string) (*fhirPatient, resLoc, string) {
	if ref == "" {
		return nil, resLoc{}, "the Immunization names no patient (Immunization.patient.reference)"
	}
	key := ref
	if i := strings.Index(key, "/_history/"); i >= 0 {
		key = key[:i]
	}
	loc, ok := s.index[refKey(key)]
	if !ok {
		if i := strings.LastIndex(key, "Patient/"); i > 0 { // an absolute URL
			key = key[i:]
			loc, ok = s.index[refKey(key)]
		}
	}
	in := s.resName
	if s.bundle {
		in = "the Bundle"
	}
	if !ok {
		why := fmt.Sprintf("the patient %s is not in %s", shortRef(ref), in)
		if len(s.badLines) > 0 {
			why += fmt.Sprintf(" (its line(s) %s could not be read)", lineList(s.badLines))
		}
		return nil, loc, why
	}
	if loc.dup > 0 {
		return nil, loc, fmt.Sprintf("the patient %s is in %s twice (%s %d and %d): izdrop cannot tell which is meant", shortRef(ref), in, s.unit(), loc.dup, loc.line)
	}
	var p fhirPatient
	body, err := s.readBack(loc)
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	if err != nil {
		return nil, loc, fmt.Sprintf("the patient %s (%s %d of %s) cannot be read: %s", shortRef(ref), s.unit(), loc.line, in, jsonReason(err))
	}
	if p.ResourceType != "Patient" || !strings.HasSuffix(key, "Patient/"+p.ID) && !s.bundle {
		return nil, loc, fmt.Sprintf("%s %d of %s is not the patient %s", s.unit(), loc.line, in, shortRef(ref))
	}
	return &p, loc, ""
}

func (s *fhirSource) unit() string {
	if s.bundle {
		return "entry"
	}
	return "line"
}

// resource reads back a Practitioner or Organization by reference, or from
// the Immunization's contained resources.
func (s *fhirSource) resource(imm *fhirImmunization, ref string) *fhirAny {
	if id, ok := strings.CutPrefix(ref, "#"); ok {
		for i := range imm.Contained {
			if a := &imm.Contained[i]; a.ID == id && id != "" {
				return a
			}
		}
		return nil
	}
	loc, ok := s.index[refKey(ref)]
	if !ok || loc.dup > 0 {
		return nil
	}
	body, err := s.readBack(loc)
	if err != nil {
		return nil
	}
	var a fhirAny
	if json.Unmarshal(body, &a) != nil {
		return nil
	}
	return &a
}

// readBack reads a resource the index points to.
func (s *fhirSource) readBack(loc resLoc) ([]byte, error) {
	buf := make([]byte, loc.end-loc.start)
	if _, err := s.res.ReadAt(buf, loc.start); err != nil {
		return nil, err
	}
	body := bytes.TrimLeft(trimBOM(buf, loc.start), " \t\r\n,")
	if s.bundle {
		var e struct {
			Resource json.RawMessage `json:"resource"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, err
		}
		return e.Resource, nil
	}
	return bytes.TrimSpace(body), nil
}

func shortRef(ref string) string {
	if len(ref) > 80 {
		return ref[:80] + "..."
	}
	return ref
}

// mapImmunization fills rec from an Immunization and its patient.
func (s *fhirSource) mapImmunization(rec *Record, imm *fhirImmunization) {
	b := &s.b
	b.reset()
	warn := func(sev Severity, c Col, rule, format string, args ...any) {
		rec.Problems = append(rec.Problems, Problem{File: s.r.name, Line: rec.Line, Field: c.Field(), Where: s.where(rec, c),
			Rule: rule, Severity: sev, Text: fmt.Sprintf(format, args...)})
	}
	p, loc, why := s.patient(imm.Patient.Reference)
	rec.pline = loc.line
	if p == nil {
		// The dose is mapped (for its vaccination id and the rejects
		// file) but not checked: without its patient it cannot be sent,
		// and the patient's missing values would only bury why.
		rec.syntax = true
		rec.pline = rec.Line
		rec.Problems = append(rec.Problems, Problem{File: s.r.name, Line: rec.Line, Field: "PID", Where: s.placeOf(rec, "Immunization.patient"),
			Rule: "patient-not-found", Severity: Error, Text: why})
		p = &fhirPatient{}
	}
	birth := fhirDate(p.BirthDate, s.r.opt.Location)
	s.mapPatient(b, p)

	id := imm.ID
	for _, x := range imm.Identifier {
		if x.Value != "" {
			id = x.Value
			break
		}
	}
	b.put(VaccinationID, id)
	if rec.syntax {
		rec.VaccinationID = b.get(VaccinationID)
	}
	admin := fhirDate(imm.OccurrenceDateTime, s.r.opt.Location)
	if admin == "" && imm.OccurrenceString != "" {
		warn(Warning, AdminDate, "occurrence-string", "occurrenceString is free text, not a date; give occurrenceDateTime")
	}
	b.put(AdminDate, admin)
	cvx := imm.VaccineCode.code(func(sys string) bool { return sys == systemCVX })
	if cvx == "" && len(imm.VaccineCode.Coding) > 0 {
		warn(Warning, CVXCode, "cvx-system", "vaccineCode has no coding in %s (CAIR takes CVX codes only; NDC and other systems are not mapped)", systemCVX)
	}
	b.put(CVXCode, cvx)
	if q := imm.DoseQuantity; q != nil && q.Value != "" {
		unit := q.Code
		if unit == "" {
			unit = q.Unit
		}
		if unit == "" || strings.EqualFold(unit, "mL") {
			b.put(DoseML, q.Value.String())
		} else {
			warn(Warning, DoseML, "dose-unit", "the amount is in %q, not mL; it is not sent", short(unit))
		}
	}
	switch {
	case imm.PrimarySource != nil && *imm.PrimarySource:
		b.put(InfoSource, "00")
	case imm.PrimarySource != nil || imm.ReportOrigin != nil:
		b.put(InfoSource, reportOrigin(imm.ReportOrigin))
	}
	b.put(LotNumber, imm.LotNumber)
	b.put(LotExpiration, fhirDate(imm.ExpirationDate, s.r.opt.Location))
	if m := imm.Manufacturer; m != nil {
		mvx := ""
		if m.Identifier != nil && m.Identifier.System == systemMVX {
			mvx = m.Identifier.Value
		} else if a := s.resource(imm, m.Reference); a != nil {
			mvx = a.identifier(systemMVX)
		}
		if mvx == "" {
			warn(Warning, MVXCode, "mvx-unmapped", "the manufacturer has no identifier in %s; it is not sent", systemMVX)
		}
		b.put(MVXCode, mvx)
	}
	b.put(BodySite, imm.Site.code(nil))
	b.put(Route, fhirRoute(imm.Route))
	for _, pf := range imm.Performer {
		fn := pf.Function.code(nil)
		npi, last, first := s.performer(imm, pf.Actor)
		switch {
		case fn == "OP":
			if b.get(OrderingProviderNPI)+b.get(OrderingProviderLastName) == "" {
				b.put(OrderingProviderNPI, npi)
				b.put(OrderingProviderLastName, last)
				b.put(OrderingProviderFirstName, first)
			}
		case fn == "AP" || fn == "":
			if b.get(AdministeredByNPI)+b.get(AdministeredByLastName) == "" {
				b.put(AdministeredByNPI, npi)
				b.put(AdministeredByLastName, last)
				b.put(AdministeredByFirstName, first)
			}
		}
	}
	for _, pe := range imm.ProgramEligibility {
		if v := pe.code(func(sys string) bool { return strings.Contains(strings.ToLower(sys), "0064") }); v != "" {
			b.put(VFCEligibility, v)
			break
		}
		if v := pe.code(nil); v != "" {
			b.put(VFCEligibility, v)
			break
		}
	}
	b.put(FundingSource, imm.FundingSource.code(nil))
	if len(imm.Education) > 0 {
		e := imm.Education[0]
		b.put(VISDocument, e.DocumentType)
		b.put(VISPublicationDate, fhirDate(e.PublicationDate, s.r.opt.Location))
		b.put(VISGivenDate, fhirDate(e.PresentationDate, s.r.opt.Location))
	}
	switch imm.Status {
	case "completed":
		if imm.IsSubpotent != nil && *imm.IsSubpotent {
			b.put(CompletionStatus, "PA")
		}
	case "entered-in-error":
		b.put(Action, "D")
	case "not-done":
		if reason, refused := refusal(imm.StatusReason, birth, admin); refused {
			b.put(RefusalReason, reason)
			b.put(CompletionStatus, "RE")
		} else {
			b.put(CompletionStatus, "NA")
		}
	case "":
		warn(Error, CompletionStatus, "status-missing", "Immunization.status is required (completed, not-done or entered-in-error)")
	default:
		warn(Error, CompletionStatus, "status-invalid", "Immunization.status %q is not completed, not-done or entered-in-error", short(imm.Status))
	}
	rec.Row = b.row()
}

func (s *fhirSource) placeOf(rec *Record, elem string) string {
	if s.bundle {
		return fmt.Sprintf("entry %d, %s", rec.Line, elem)
	}
	return elem
}

// performer returns an actor's NPI and name, from its identifier or the
// Practitioner it points to.
func (s *fhirSource) performer(imm *fhirImmunization, actor fhirReference) (npi, last, first string) {
	if actor.Identifier != nil && actor.Identifier.System == systemNPI {
		npi = actor.Identifier.Value
	}
	if actor.Reference == "" {
		return npi, "", ""
	}
	a := s.resource(imm, actor.Reference)
	if a == nil || a.ResourceType != "Practitioner" {
		return npi, "", ""
	}
	if npi == "" {
		npi = a.identifier(systemNPI)
	}
	var names []fhirName
	if json.Unmarshal(a.Name, &names) == nil && len(names) > 0 {
		last = names[0].Family
		if len(names[0].Given) > 0 {
			first = names[0].Given[0]
		}
	}
	return npi, last, first
}

func (s *fhirSource) mapPatient(b *rowBuilder, p *fhirPatient) {
	mrn := ""
	for _, id := range p.Identifier {
		if id.Value != "" && id.Type.code(nil) == "MR" {
			mrn = id.Value
			break
		}
	}
	for _, id := range p.Identifier {
		if mrn == "" && id.Value != "" {
			mrn = id.Value
		}
	}
	b.put(PatientID, mrn)
	var name *fhirName
	for _, use := range []string{"official", "usual", ""} {
		for i := range p.Name {
			if name == nil && (use == "" || p.Name[i].Use == use) {
				name = &p.Name[i]
			}
		}
	}
	if name != nil {
		b.put(PatientLastName, name.Family)
		if len(name.Given) > 0 {
			b.put(PatientFirstName, name.Given[0])
		}
		if len(name.Given) > 1 {
			b.put(PatientMiddleName, strings.Join(name.Given[1:], " "))
		}
		if len(name.Suffix) > 0 {
			b.put(PatientSuffix, name.Suffix[0])
		}
	}
	var races []string
	for _, x := range p.Extension {
		switch x.URL {
		case "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName":
			b.put(MotherMaidenLastName, x.ValueString)
		case "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race":
			for _, sub := range x.Extension {
				if sub.URL == "ombCategory" && sub.ValueCoding != nil && sub.ValueCoding.Code != "" {
					races = append(races, sub.ValueCoding.Code)
				}
			}
		case "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity":
			for _, sub := range x.Extension {
				if sub.URL == "ombCategory" && sub.ValueCoding != nil && b.get(Ethnicity) == "" {
					b.put(Ethnicity, sub.ValueCoding.Code)
				}
			}
		}
	}
	b.put(Race, strings.Join(races, ";"))
	b.put(PatientBirthDate, fhirDate(p.BirthDate, s.r.opt.Location))
	switch p.Gender {
	case "female":
		b.put(PatientSex, "F")
	case "male":
		b.put(PatientSex, "M")
	case "other":
		b.put(PatientSex, "X")
	case "unknown":
		b.put(PatientSex, "U")
	default:
		b.put(PatientSex, p.Gender)
	}
	for _, use := range []string{"home", ""} {
		done := false
		for _, a := range p.Address {
			if a.Use == "old" || use != "" && a.Use != use {
				continue
			}
			if len(a.Line) > 0 {
				b.put(AddressStreet, a.Line[0])
			}
			if len(a.Line) > 1 {
				b.put(AddressStreet2, a.Line[1])
			}
			b.put(AddressCity, a.City)
			b.put(AddressState, a.State)
			b.put(AddressZip, a.PostalCode)
			b.put(AddressCounty, a.District)
			done = true
			break
		}
		if done {
			break
		}
	}
	for _, t := range p.Telecom {
		switch t.System {
		case "phone":
			if b.get(Phone) == "" {
				b.put(Phone, t.Value)
			}
		case "email":
			if b.get(Email) == "" {
				b.put(Email, t.Value)
			}
		}
	}
	lang := ""
	for _, c := range p.Communication {
		if l := c.Language.code(nil); l != "" && (lang == "" || c.Preferred) {
			lang = l
		}
	}
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i] // en-US: the language, not the region
	}
	b.put(Language, lang)
	switch {
	case p.MultipleBirthInteger != nil:
		b.put(MultipleBirth, "Y")
		b.put(BirthOrder, strconv.Itoa(*p.MultipleBirthInteger))
	case p.MultipleBirthBoolean != nil && *p.MultipleBirthBoolean:
		b.put(MultipleBirth, "Y")
	case p.MultipleBirthBoolean != nil:
		b.put(MultipleBirth, "N")
	}
	b.put(DeathDate, fhirDate(p.Deceased, s.r.opt.Location))
	for _, c := range p.Contact {
		if c.Name == nil || c.Name.Family == "" {
			continue
		}
		b.put(GuardianLastName, c.Name.Family)
		if len(c.Name.Given) > 0 {
			b.put(GuardianFirstName, c.Name.Given[0])
		}
		for _, rel := range c.Relationship {
			if code := rel.code(nil); code != "" {
				if code == "GUARD" { // v3 RoleCode's guardian
					code = "GRD"
				}
				b.put(GuardianRelationship, code)
				break
			}
		}
		break
	}
}

// fhirDate returns the date of a FHIR date or dateTime as YYYY-MM-DD: a
// dateTime with a time is taken in the registry's time zone (a dose given
// in the evening stays on its day when the server writes UTC). A partial or
// malformed value is returned as it is, for the date check to refuse.
func fhirDate(s string, loc *time.Location) string {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.In(loc).Format("2006-01-02")
		}
		return s[:10]
	}
	return s
}

// reportOrigin maps Immunization.reportOrigin onto NIP001: its own codes
// when given (01-08), else FHIR's immunization-origin codes.
func reportOrigin(c *fhirConcept) string {
	code := c.code(nil)
	switch code {
	case "provider":
		return "02"
	case "record":
		return "03"
	case "recall":
		return "04"
	case "school":
		return "07"
	case "":
		return "01"
	}
	return code
}

// refusal tells, for a not-done Immunization, whether it was refused and
// why (NIP002): NIP002 codes as given; v3-ActReason PATOBJ (patient
// objection) is a parental decision for a minor on the day, the patient's
// own otherwise; RELIG a religious exemption. Other reasons (IMMUNE,
// MEDPREC, OSTOCK, none) mean not administered.
func refusal(c *fhirConcept, birth, admin string) (string, bool) {
	if c == nil {
		return "", false
	}
	for _, cd := range c.Coding {
		switch {
		case strings.Contains(strings.ToUpper(cd.System), "NIP002"):
			return cd.Code, true
		case cd.Code == "PATOBJ":
			if minor(birth, admin) {
				return "00", true
			}
			return "03", true
		case cd.Code == "RELIG":
			return "01", true
		}
	}
	return "", false
}

// minor reports whether a patient born on birth was under 18 on day (both
// YYYY-MM-DD); an unknown date counts as a minor, the usual patient.
func minor(birth, day string) bool {
	if len(birth) != 10 || len(day) != 10 {
		return true
	}
	y, err1 := strconv.Atoi(birth[:4])
	d, err2 := strconv.Atoi(day[:4])
	if err1 != nil || err2 != nil {
		return true
	}
	if d-y != 18 {
		return d-y < 18
	}
	return day[5:] < birth[5:]
}

// fhirRoute maps Immunization.route onto HL70162 (v3
// RouteOfAdministration codes) or passes NCIT and HL70162 codes on.
func fhirRoute(c *fhirConcept) string {
	code := c.code(nil)
	switch code {
	case "IM":
		return "IM"
	case "SQ":
		return "SC"
	case "IDINJ":
		return "ID"
	case "NASINHLC", "NASINHL", "NASAL":
		return "NS"
	case "IVINJ":
		return "IV"
	case "TRNSDERM":
		return "TD"
	}
	return code
}
