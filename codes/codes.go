package codes

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

//go:embed data/*.tsv data/SOURCES.md
var embedded embed.FS

// Status is a CDC code status.
type Status string

// CDC's statuses.
const (
	Active      Status = "Active"
	Inactive    Status = "Inactive"
	NonUS       Status = "Non-US"
	NeverActive Status = "Never Active"
	Pending     Status = "Pending"
)

func parseStatus(s string) (Status, bool) {
	switch Status(s) {
	case Active, Inactive, NonUS, NeverActive, Pending:
		return Status(s), true
	}
	return "", false
}

// CVX is one vaccine code.
type CVX struct {
	Code, Short, Full string
	Status            Status
	NonVaccine        bool
	Updated           string // CDC's YYYY/MM/DD, may be blank
	// Unspecified marks CDC's "unspecified formulation" codes, meant for
	// historical doses of unknown product.
	Unspecified bool
}

// MVX is one manufacturer code.
type MVX struct {
	Code, Name string
	Status     Status
	Updated    string
}

// Product is one row of CDC's product (tradename) table: a CVX/MVX pair.
type Product struct {
	Name, CVX, MVX    string
	Status, MVXStatus Status
	Updated           string
}

// Provenance says where a loaded table came from.
type Provenance struct {
	File   string // file name (cvx.tsv, ...)
	Table  string // CVX, MVX, PRODUCTS, HL7
	Source string
	AsOf   string // date the data was taken
	SHA256 string
	Rows   int
	Origin string // "embedded" or the path it was loaded from
}

// Set is a loaded, immutable collection of tables; safe for concurrent use.
type Set struct {
	mvxOrder []string
	cvx      map[string]CVX
	mvx      map[string]MVX
	pairs    map[pair][]Product
	tables   map[string]map[string]string
	prov     []Provenance
	cvxOrder []string
}

type pair struct{ cvx, mvx string }

var (
	embOnce sync.Once
	embSet  *Set
	embErr  error
)

// Embedded returns the tables compiled into the binary.
func Embedded() *Set {
	embOnce.Do(func() { embSet, embErr = Load("") })
	if embErr != nil {
		// The embedded data is checked by the package tests; failing to read
		// it is a build defect, not a runtime condition.
		panic(embErr)
	}
	return embSet
}

// Load reads the embedded tables, replacing each one by its imported copy
// in dir when dir holds one (see Import). dir may be "".
func Load(dir string) (*Set, error) {
	manifest, err := readManifest(embedded, "data/manifest.tsv")
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if over, err := readManifestFile(filepath.Join(dir, "manifest.tsv")); err == nil {
			for k, p := range over {
				manifest[k] = p
			}
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	s := &Set{pairs: map[pair][]Product{}, tables: map[string]map[string]string{}}
	for _, file := range []string{"cvx.tsv", "mvx.tsv", "products.tsv", "tables.tsv"} {
		p := manifest[file]
		var b []byte
		if p.Origin != "embedded" {
			b, err = os.ReadFile(p.Origin)
		} else {
			b, err = embedded.ReadFile("data/" + file)
		}
		if err != nil {
			return nil, fmt.Errorf("codes: %s: %w", file, err)
		}
		if got := sha256Hex(b); got != p.SHA256 {
			return nil, fmt.Errorf("codes: %s (%s): content does not match its manifest (sha256 %s, manifest says %s)", file, p.Origin, got, p.SHA256)
		}
		n, err := s.read(file, bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("codes: %s (%s): %w", file, p.Origin, err)
		}
		p.Rows = n
		s.prov = append(s.prov, p)
	}
	return s, s.check()
}

func readManifest(fsys embed.FS, name string) (map[string]Provenance, error) {
	b, err := fsys.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return parseManifest(b, "embedded")
}

func readManifestFile(path string) (map[string]Provenance, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parseManifest(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("codes: %s: %w", path, err)
	}
	return m, nil
}

func parseManifest(b []byte, origin string) (map[string]Provenance, error) {
	out := map[string]Provenance{}
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 || line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("manifest line %d: want 5 columns, got %d", i+1, len(f))
		}
		p := Provenance{File: f[0], Table: f[1], Source: f[2], AsOf: f[3], SHA256: f[4], Origin: origin}
		if origin != "embedded" {
			p.Origin = filepath.Join(origin, f[0])
		}
		out[f[0]] = p
	}
	return out, nil
}

// read loads one table file in izdrop's TSV layout.
func (s *Set) read(file string, r *bytes.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	n, lineNo := 0, 0
	header := true
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		f := strings.Split(line, "\t")
		bad := func(msg string) error { return fmt.Errorf("line %d: %s", lineNo, msg) }
		switch file {
		case "cvx.tsv":
			if len(f) != 6 {
				return n, bad("want 6 columns")
			}
			st, ok := parseStatus(f[3])
			if !ok {
				return n, bad("unknown status " + f[3])
			}
			if _, dup := s.cvx[f[0]]; dup {
				return n, bad("duplicate CVX " + f[0])
			}
			if s.cvx == nil {
				s.cvx = map[string]CVX{}
			}
			s.cvx[f[0]] = CVX{Code: f[0], Short: f[1], Full: f[2], Status: st, NonVaccine: f[4] == "True", Updated: f[5],
				Unspecified: strings.Contains(strings.ToLower(f[1]+" "+f[2]), "unspecified")}
			s.cvxOrder = append(s.cvxOrder, f[0])
		case "mvx.tsv":
			if len(f) != 4 {
				return n, bad("want 4 columns")
			}
			st, ok := parseStatus(f[2])
			if !ok {
				return n, bad("unknown status " + f[2])
			}
			if s.mvx == nil {
				s.mvx = map[string]MVX{}
			}
			if _, dup := s.mvx[f[0]]; dup {
				return n, bad("duplicate MVX " + f[0])
			}
			s.mvx[f[0]] = MVX{Code: f[0], Name: f[1], Status: st, Updated: f[3]}
			s.mvxOrder = append(s.mvxOrder, f[0])
		case "products.tsv":
			if len(f) != 6 {
				return n, bad("want 6 columns")
			}
			ps, ok1 := parseStatus(f[3])
			ms, ok2 := parseStatus(f[4])
			if !ok1 || !ok2 {
				return n, bad("unknown status")
			}
			k := pair{f[1], f[2]}
			s.pairs[k] = append(s.pairs[k], Product{Name: f[0], CVX: f[1], MVX: f[2], Status: ps, MVXStatus: ms, Updated: f[5]})
		case "tables.tsv":
			if len(f) != 3 {
				return n, bad("want 3 columns")
			}
			t := s.tables[f[0]]
			if t == nil {
				t = map[string]string{}
				s.tables[f[0]] = t
			}
			t[f[1]] = f[2]
		}
		n++
	}
	return n, sc.Err()
}

// check enforces what the tables promise one another.
func (s *Set) check() error {
	var problems []string
	for k := range s.pairs {
		if _, ok := s.cvx[k.cvx]; !ok {
			problems = append(problems, fmt.Sprintf("product pair %s/%s: CVX not in the CVX table", k.cvx, k.mvx))
		}
		if _, ok := s.mvx[k.mvx]; !ok && k.mvx != "" {
			problems = append(problems, fmt.Sprintf("product pair %s/%s: MVX not in the MVX table", k.cvx, k.mvx))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("codes: tables disagree: %s", strings.Join(problems, "; "))
	}
	return nil
}

// CVX looks up a vaccine code as CDC writes it ("08", "998").
func (s *Set) CVX(code string) (CVX, bool) { c, ok := s.cvx[code]; return c, ok }

// MVX looks up a manufacturer code.
func (s *Set) MVX(code string) (MVX, bool) { m, ok := s.mvx[code]; return m, ok }

// Products returns the product rows for a CVX/MVX pair (nil when none).
func (s *Set) Products(cvx, mvx string) []Product { return s.pairs[pair{cvx, mvx}] }

// Lookup returns the text of code in an HL7/CDC value set (see data/tables.tsv
// for the table names: HL70162, NCIT, HL70163, HL70064, FUNDING, NIP001, ...).
func (s *Set) Lookup(table, code string) (string, bool) {
	t, ok := s.tables[table]
	if !ok {
		return "", false
	}
	v, ok := t[code]
	return v, ok
}

// Table returns a whole value set (code -> text), for callers that look up
// many codes in it; nil when there is no such table. Do not modify it.
func (s *Set) Table(name string) map[string]string { return s.tables[name] }

// Provenance lists where each loaded table came from.
func (s *Set) Provenance() []Provenance { return append([]Provenance(nil), s.prov...) }

// CVXCodes returns every CVX code in table order.
func (s *Set) CVXCodes() []string { return append([]string(nil), s.cvxOrder...) }

// MVXCodes returns every MVX code in table order.
func (s *Set) MVXCodes() []string { return append([]string(nil), s.mvxOrder...) }

// NormalizeCVX pads a one-digit CVX to CDC's two digits ("3" -> "03"), the
// most common way exports mangle the code.
func NormalizeCVX(code string) string {
	code = strings.TrimSpace(code)
	if len(code) == 1 && code[0] >= '0' && code[0] <= '9' {
		return "0" + code
	}
	return code
}

func sha256Hex(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
