package codes

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEmbeddedTables(t *testing.T) {
	s := Embedded()
	rows := map[string]int{}
	for _, p := range s.Provenance() {
		rows[p.File] = p.Rows
		if p.AsOf == "" || p.Source == "" || p.Origin != "embedded" {
			t.Errorf("%s: provenance incomplete: %+v", p.File, p)
		}
	}
	// Counts from data/SOURCES.md.
	for file, want := range map[string]int{"cvx.tsv": 288, "mvx.tsv": 89, "products.tsv": 222} {
		if rows[file] != want {
			t.Errorf("%s: %d rows, want %d", file, rows[file], want)
		}
	}
	for code, want := range map[string]Status{"08": Active, "20": Active, "03": Active, "998": Inactive, "207": Inactive, "208": Inactive, "57": NeverActive, "102": NonUS} {
		c, ok := s.CVX(code)
		if !ok || c.Status != want {
			t.Errorf("CVX %s = %+v, want status %s", code, c, want)
		}
	}
	if c, _ := s.CVX("998"); !c.NonVaccine {
		t.Error("998 should be a non-vaccine code")
	}
	if m, ok := s.MVX("MSD"); !ok || m.Name != "Merck and Co., Inc." || m.Status != Active {
		t.Errorf("MSD = %+v", m)
	}
	if len(s.Products("305", "PFR")) == 0 {
		t.Error("ABRYSVO 305/PFR missing")
	}
	for _, c := range []struct{ table, code string }{{"HL70162", "IM"}, {"NCIT", "C28161"}, {"HL70163", "LD"}, {"HL70064", "V05"}, {"FUNDING", "VXC50"}, {"NIP002", "03"}, {"CA_COUNTY_FIPS", "06077"}, {"HL70001", "X"}} {
		if _, ok := s.Lookup(c.table, c.code); !ok {
			t.Errorf("%s %s missing", c.table, c.code)
		}
	}
	if v, _ := s.Lookup("CA_COUNTY_FIPS", "06037"); v != "Los Angeles" {
		t.Errorf("06037 = %q", v)
	}
	if _, ok := s.Lookup("HL70163", "XX"); ok {
		t.Error("unknown site accepted")
	}
}

func TestCheckVaccinePolicy(t *testing.T) {
	s := Embedded()
	type want struct {
		sev  Severity
		rule string
	}
	cases := []struct {
		name       string
		cvx, mvx   string
		historical bool
		want       []want
	}{
		{"active administered with its product", "08", "MSD", false, nil},
		{"active historical without mvx", "08", "", true, nil},
		{"unknown cvx", "9999", "MSD", false, []want{{Error, "cvx-unknown"}}},
		{"never active administered", "57", "", false, []want{{Error, "cvx-never-active"}}},
		{"never active historical", "57", "", true, []want{{Error, "cvx-never-active"}}},
		{"non-US administered", "102", "", false, []want{{Error, "cvx-non-us-administered"}}},
		{"non-US historical", "102", "", true, nil},
		{"inactive administered, no active product", "50", "", false, []want{{Warning, "cvx-inactive"}}},
		{"inactive administered, active product (SPIKEVAX)", "207", "MOD", false, nil},
		{"inactive historical", "50", "", true, nil},
		{"unspecified formulation administered", "45", "", false, []want{{Warning, "cvx-inactive"}, {Warning, "cvx-unspecified-administered"}}},
		{"unspecified formulation historical", "45", "", true, nil},
		{"unknown mvx", "08", "ZZZ", false, []want{{Error, "mvx-unknown"}}},
		{"pair not a product", "08", "PFR", false, []want{{Error, "cvx-mvx-pair"}}},
		{"pair not a product, historical", "08", "PFR", true, []want{{Error, "cvx-mvx-pair"}}},
		{"historical UNK manufacturer", "08", "UNK", true, nil},
		{"administered UNK manufacturer", "08", "UNK", false, []want{{Error, "cvx-mvx-pair"}}},
		{"active product of an inactive manufacturer", "163", "NOV", false, []want{{Warning, "mvx-inactive"}}},
	}
	for _, c := range cases {
		got := s.CheckVaccine(c.cvx, c.mvx, c.historical)
		var g []want
		for _, f := range got {
			g = append(g, want{f.Severity, f.Rule})
			if f.Text == "" || (f.Field != "RXA-5" && f.Field != "RXA-17") {
				t.Errorf("%s: finding without text or field: %+v", c.name, f)
			}
		}
		if fmt.Sprint(g) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, g, c.want)
		}
	}
}

func TestNormalizeCVX(t *testing.T) {
	for in, want := range map[string]string{"3": "03", " 8 ": "08", "03": "03", "998": "998", "": ""} {
		if got := NormalizeCVX(in); got != want {
			t.Errorf("NormalizeCVX(%q) = %q", in, got)
		}
	}
}

// cdcCVX renders the current CVX table as CDC's cvx.txt.
func cdcCVX(s *Set, edit func(c *CVX) bool) string {
	var b strings.Builder
	for _, code := range s.CVXCodes() {
		c, _ := s.CVX(code)
		if edit != nil && !edit(&c) {
			continue
		}
		nv := "False"
		if c.NonVaccine {
			nv = "True"
		}
		fmt.Fprintf(&b, "%-10s|%s|%s||%s|%s|%s\r\n", c.Code, c.Short, c.Full, c.Status, nv, c.Updated)
	}
	return b.String()
}

func TestImportCDCExports(t *testing.T) {
	cur := Embedded()
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "cvx.txt")
	text := cdcCVX(cur, func(c *CVX) bool {
		if c.Code == "03" {
			c.Status = Inactive
		}
		return true
	}) + "335       |test vaccine 2026|a vaccine CDC added after the snapshot|new in 2026|Active|False|2026/10/01\r\n"
	if err := os.WriteFile(src, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rep, err := Import(src, dir, cur, false, now)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Table != "CVX" || rep.Rows != 289 || len(rep.Added) != 1 || rep.Added[0] != "335" || len(rep.Changed) != 1 || rep.Changed[0] != "03 Active->Inactive" || rep.Newest != "2026/10/01" {
		t.Fatalf("report = %+v", rep)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := loaded.CVX("335"); !ok || c.Status != Active {
		t.Errorf("imported code missing: %+v", c)
	}
	if c, _ := loaded.CVX("03"); c.Status != Inactive {
		t.Errorf("status change not applied: %+v", c)
	}
	var cvxProv Provenance
	for _, p := range loaded.Provenance() {
		if p.File == "cvx.tsv" {
			cvxProv = p
		}
		if p.File == "mvx.tsv" && p.Origin != "embedded" {
			t.Errorf("mvx should still be embedded: %+v", p)
		}
	}
	if cvxProv.AsOf != "2026-10-01" || !strings.Contains(cvxProv.Source, "cvx.txt") || cvxProv.Origin != filepath.Join(dir, "cvx.tsv") {
		t.Errorf("provenance = %+v", cvxProv)
	}

	// MVX export, then a TRADENAME export that uses the new manufacturer.
	mvx := filepath.Join(t.TempDir(), "mvx.txt")
	var b strings.Builder
	for k, m := range cur.mvx {
		fmt.Fprintf(&b, "%s|%s||%s|%s\n", k, m.Name, m.Status, m.Updated)
	}
	b.WriteString("NEW|New Vaccines Inc.|founded 2026|Active|2026/09/01\n")
	os.WriteFile(mvx, []byte(b.String()), 0o600)
	if rep, err := Import(mvx, dir, loaded, false, now); err != nil || rep.Table != "MVX" || len(rep.Added) != 1 {
		t.Fatalf("mvx import: %+v %v", rep, err)
	}
	loaded, _ = Load(dir)
	trade := filepath.Join(t.TempDir(), "TRADENAME.txt")
	b.Reset()
	for k, ps := range loaded.pairs {
		for _, p := range ps {
			fmt.Fprintf(&b, "%s|x|%s|m|%s|%s|%s|%s\n", p.Name, k.cvx, k.mvx, p.MVXStatus, p.Status, p.Updated)
		}
	}
	b.WriteString("NEWVAX|test vaccine 2026|335|New Vaccines Inc.|NEW|Active|Active|2026/10/02\n")
	os.WriteFile(trade, []byte(b.String()), 0o600)
	if rep, err := Import(trade, dir, loaded, false, now); err != nil || rep.Table != "PRODUCTS" || len(rep.Added) != 1 {
		t.Fatalf("tradename import: %+v %v", rep, err)
	}
	loaded, err = Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if f := loaded.CheckVaccine("335", "NEW", false); len(f) != 0 {
		t.Errorf("new product not accepted: %+v", f)
	}
}

func TestImportRefusesTruncatedAndForeignFiles(t *testing.T) {
	cur := Embedded()
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "cvx.txt")
	os.WriteFile(src, []byte(cdcCVX(cur, func(c *CVX) bool { return c.Code != "57" && c.Code != "58" })), 0o600)
	now := time.Now()
	_, err := Import(src, dir, cur, false, now)
	if !errors.Is(err, ErrMissingCodes) || !strings.Contains(err.Error(), "57") {
		t.Fatalf("truncated import: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cvx.tsv")); !os.IsNotExist(err) {
		t.Fatal("a refused import wrote a table")
	}
	if _, err := Import(src, dir, cur, true, now); err != nil {
		t.Fatalf("forced import: %v", err)
	}
	// A product table naming a CVX that does not exist is refused as a whole.
	trade := filepath.Join(t.TempDir(), "TRADENAME.txt")
	os.WriteFile(trade, []byte("GHOST|x|777|m|MSD|Active|Active|2026/01/01\n"), 0o600)
	if _, err := Import(trade, dir, cur, true, now); err == nil || !strings.Contains(err.Error(), "777") {
		t.Fatalf("dangling product accepted: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.csv")
	os.WriteFile(junk, []byte("a,b,c\n1,2,3\n"), 0o600)
	if _, err := Import(junk, dir, cur, false, now); err == nil || !strings.Contains(err.Error(), "line") {
		t.Fatalf("junk accepted: %v", err)
	}
	// A table edited behind the manifest's back is reported, not used.
	os.WriteFile(filepath.Join(dir, "cvx.tsv"), []byte("cvx\tshort_description\tfull_name\tstatus\tnonvaccine\tlast_updated\n"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "does not match its manifest") {
		t.Fatalf("tampered table loaded: %v", err)
	}
}
