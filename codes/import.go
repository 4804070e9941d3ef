package codes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/izdrop/izdrop/internal/durable"
)

// ImportReport says what an import changed.
type ImportReport struct {
	Table    string // CVX, MVX or PRODUCTS
	Rows     int
	Added    []string // codes new in the import
	Changed  []string // codes whose status changed: "207 Active->Inactive"
	Newest   string   // newest last-updated date in the file
	Written  string   // path of the table written
	Previous int      // rows of the table it replaces
}

// ErrMissingCodes is returned when an import would drop codes the current
// table has: CDC never deletes codes, so such a file is truncated or is not
// the full export.
var ErrMissingCodes = errors.New("the file lacks codes the current table has")

// Import reads a CDC code-set export - cvx.txt, mvx.txt or TRADENAME.txt as
// CDC publishes them (pipe-delimited, no header), or a table in izdrop's own
// TSV layout - checks it, and writes it into dir, where Load will prefer it
// to the embedded table. It refuses a file that lacks codes of the current
// table unless force is set.
func Import(path, dir string, current *Set, force bool, now time.Time) (ImportReport, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ImportReport{}, err
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	table, rows, err := parseExport(raw)
	if err != nil {
		return ImportReport{}, fmt.Errorf("%s: %w", path, err)
	}
	rep := ImportReport{Table: table, Rows: len(rows)}
	var out bytes.Buffer
	var file string
	have := map[string]string{} // code -> status in the current table
	switch table {
	case "CVX":
		file = "cvx.tsv"
		for k, c := range current.cvx {
			have[k] = string(c.Status)
		}
		out.WriteString("cvx\tshort_description\tfull_name\tstatus\tnonvaccine\tlast_updated\n")
	case "MVX":
		file = "mvx.tsv"
		for k, m := range current.mvx {
			have[k] = string(m.Status)
		}
		out.WriteString("mvx\tmanufacturer\tstatus\tlast_updated\n")
	case "PRODUCTS":
		file = "products.tsv"
		for k, ps := range current.pairs {
			for _, p := range ps {
				have[p.Name+"|"+k.cvx+"|"+k.mvx] = string(p.Status)
			}
		}
		out.WriteString("product_name\tcvx\tmvx\tproduct_status\tmvx_status\tlast_updated\n")
	}
	rep.Previous = len(have)
	seen := map[string]bool{}
	for _, r := range rows {
		key := r.key
		if seen[key] {
			return rep, fmt.Errorf("%s: line %d: duplicate %s", path, r.line, key)
		}
		seen[key] = true
		if old, ok := have[key]; !ok {
			rep.Added = append(rep.Added, key)
		} else if old != r.status {
			rep.Changed = append(rep.Changed, fmt.Sprintf("%s %s->%s", key, old, r.status))
		}
		if r.date > rep.Newest {
			rep.Newest = r.date
		}
		out.WriteString(strings.Join(r.cols, "\t") + "\n")
	}
	var missing []string
	for k := range have {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(rep.Added)
	sort.Strings(rep.Changed)
	if len(missing) > 0 && !force {
		return rep, fmt.Errorf("%s: %w (%d, e.g. %s); pass force to import anyway", path, ErrMissingCodes, len(missing), strings.Join(missing[:min(5, len(missing))], ", "))
	}
	// Check the result loads together with the other tables before
	// anything is written where Load will find it.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, err
	}
	stage, err := os.MkdirTemp(dir, ".codes-import-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(stage)
	manifest := map[string]Provenance{}
	if m, err := readManifestFile(filepath.Join(dir, "manifest.tsv")); err == nil {
		manifest = m
	}
	for name, p := range manifest {
		b, err := os.ReadFile(p.Origin)
		if err != nil {
			return rep, err
		}
		if err := os.WriteFile(filepath.Join(stage, name), b, 0o600); err != nil {
			return rep, err
		}
	}
	if err := os.WriteFile(filepath.Join(stage, file), out.Bytes(), 0o600); err != nil {
		return rep, err
	}
	asOf := rep.Newest
	if asOf == "" {
		asOf = now.Format("2006-01-02")
	}
	manifest[file] = Provenance{File: file, Table: table,
		Source: fmt.Sprintf("imported %s from %s", now.Format(time.RFC3339), filepath.Base(path)),
		AsOf:   strings.ReplaceAll(asOf, "/", "-"), SHA256: sha256Hex(out.Bytes())}
	var mf bytes.Buffer
	mf.WriteString("file\ttable\tsource\tas_of\tsha256\n")
	names := make([]string, 0, len(manifest))
	for n := range manifest {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := manifest[n]
		fmt.Fprintf(&mf, "%s\t%s\t%s\t%s\t%s\n", p.File, p.Table, p.Source, p.AsOf, p.SHA256)
	}
	if err := os.WriteFile(filepath.Join(stage, "manifest.tsv"), mf.Bytes(), 0o600); err != nil {
		return rep, err
	}
	if _, err := Load(stage); err != nil {
		return rep, fmt.Errorf("%s: the imported table does not fit the others: %w", path, err)
	}
	// The table first, the manifest that points at it last: a crash in
	// between leaves the old manifest, whose hash no longer matches, and
	// Load reports it rather than mixing tables silently.
	if err := durable.WriteFile(filepath.Join(dir, file), 0o600, func(w io.Writer) error { _, err := w.Write(out.Bytes()); return err }); err != nil {
		return rep, err
	}
	if err := durable.WriteFile(filepath.Join(dir, "manifest.tsv"), 0o600, func(w io.Writer) error { _, err := w.Write(mf.Bytes()); return err }); err != nil {
		return rep, err
	}
	rep.Written = filepath.Join(dir, file)
	return rep, nil
}

type exportRow struct {
	line   int
	key    string
	status string
	date   string
	cols   []string // in izdrop's TSV layout
}

// parseExport recognises the table from the shape of its rows.
func parseExport(raw []byte) (string, []exportRow, error) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var table string
	var rows []exportRow
	sep := "|"
	lineNo := 0
	first := true
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if lineNo == 1 && strings.Contains(line, "\t") && !strings.Contains(line, "|") {
			sep = "\t"
		}
		f := strings.Split(line, sep)
		for i := range f {
			f[i] = strings.Join(strings.Fields(f[i]), " ")
		}
		if first {
			first = false
			// A header line (ours or CDC's "CVX Code|...") names no status.
			if isHeader(f) {
				switch {
				case len(f) == 6 && strings.EqualFold(f[0], "cvx"):
					table = "CVX"
				case len(f) == 4 && strings.EqualFold(f[0], "mvx"):
					table = "MVX"
				case len(f) == 6 && strings.EqualFold(f[0], "product_name"):
					table = "PRODUCTS"
				}
				continue
			}
		}
		row, t, err := exportLine(f, sep == "\t" && table != "")
		if err != nil {
			return "", nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if table == "" {
			table = t
		} else if t != table {
			return "", nil, fmt.Errorf("line %d: looks like a %s row in a %s file", lineNo, t, table)
		}
		row.line = lineNo
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return "", nil, err
	}
	if len(rows) == 0 {
		return "", nil, errors.New("no rows")
	}
	return table, rows, nil
}

func isHeader(f []string) bool {
	for _, v := range f {
		if _, ok := parseStatus(v); ok {
			return false
		}
	}
	return true
}

// exportLine maps one row of a CDC export (or of izdrop's TSV layout) to
// izdrop's layout.
func exportLine(f []string, ours bool) (exportRow, string, error) {
	st := func(i int) bool {
		if i >= len(f) {
			return false
		}
		_, ok := parseStatus(f[i])
		return ok
	}
	switch {
	case ours && len(f) == 6 && st(3) && (f[4] == "True" || f[4] == "False"):
		return exportRow{key: f[0], status: f[3], date: f[5], cols: f}, "CVX", nil
	case ours && len(f) == 4 && st(2):
		return exportRow{key: f[0], status: f[2], date: f[3], cols: f}, "MVX", nil
	case ours && len(f) == 6 && st(3) && st(4):
		return exportRow{key: f[0] + "|" + f[1] + "|" + f[2], status: f[3], date: f[5], cols: f}, "PRODUCTS", nil
	case len(f) == 7 && st(4) && (f[5] == "True" || f[5] == "False"):
		// cvx.txt: code|short|full|notes|status|nonvaccine|updated
		return exportRow{key: f[0], status: f[4], date: f[6], cols: []string{f[0], f[1], f[2], f[4], f[5], f[6]}}, "CVX", nil
	case len(f) == 8 && st(4) && (f[6] == "True" || f[6] == "False"):
		// older cvx.txt with CDC's internal id before nonvaccine
		return exportRow{key: f[0], status: f[4], date: f[7], cols: []string{f[0], f[1], f[2], f[4], f[6], f[7]}}, "CVX", nil
	case len(f) == 5 && st(3):
		// mvx.txt: code|name|notes|status|updated
		return exportRow{key: f[0], status: f[3], date: f[4], cols: []string{f[0], f[1], f[3], f[4]}}, "MVX", nil
	case len(f) == 8 && st(5) && st(6):
		// TRADENAME.txt: product|short|cvx|manufacturer|mvx|mvx status|product status|updated
		return exportRow{key: f[0] + "|" + f[2] + "|" + f[4], status: f[6], date: f[7], cols: []string{f[0], f[2], f[4], f[6], f[5], f[7]}}, "PRODUCTS", nil
	}
	return exportRow{}, "", fmt.Errorf("not a row of a CDC CVX, MVX or TRADENAME export (%d columns)", len(f))
}
