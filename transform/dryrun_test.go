package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dry run of a big file streams its report: every record is in
// NAME.report.json, counts first, and the problems printed stop at
// maxShown with a line saying how many more the report holds.
func TestDryRunStreamsItsReport(t *testing.T) {
	ex, err := os.ReadFile("../examples/mixed-with-errors.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(ex), "\n"), "\n")
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	const copies = 400 // 4 records each, some invalid
	for i := 0; i < copies; i++ {
		for _, l := range lines[1:] {
			f := strings.Split(l, ",")
			f[0] = fmt.Sprintf("%s-%d", f[0], i)   // patient_id
			f[22] = fmt.Sprintf("%s-%d", f[22], i) // vaccination_id
			b.WriteString(strings.Join(f, ",") + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "big.csv")
	os.WriteFile(path, []byte(b.String()), 0o600)
	var out bytes.Buffer
	rep, err := DryRun(path, testOptions(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != copies*4 || rep.Invalid < copies || len(rep.Items) != 0 {
		t.Fatalf("report %d records, %d invalid, %d items in memory", rep.Records, rep.Invalid, len(rep.Items))
	}
	if n := strings.Count(out.String(), "\n  error "); n+strings.Count(out.String(), "\n  warning ") != maxShown {
		t.Errorf("%d problems printed", n)
	}
	if !strings.Contains(out.String(), "more problem(s): see big.report.json") {
		t.Errorf("no line for the problems not printed:\n%s", out.String()[len(out.String())-300:])
	}
	j, err := os.ReadFile(strings.TrimSuffix(path, ".csv") + ".report.json")
	if err != nil {
		t.Fatal(err)
	}
	var full Report
	if err := json.Unmarshal(j, &full); err != nil {
		t.Fatalf("the report is not JSON: %v", err)
	}
	if last := full.Items[len(full.Items)-1]; len(full.Items) != copies*4 || last.Line != 1+copies*4 || !strings.HasSuffix(last.PatientID, fmt.Sprint("-", copies-1)) || full.Invalid != rep.Invalid {
		t.Errorf("the report holds %d records, the last %+v", len(full.Items), full.Items[len(full.Items)-1])
	}
	if strings.Index(string(j), `"records_detail"`) < strings.Index(string(j), `"invalid"`) {
		t.Error("the counts do not come first")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp")); len(m) != 0 {
		t.Errorf("spool left behind: %v", m)
	}
	// A file with no records has an empty list, as before.
	empty := filepath.Join(t.TempDir(), "empty.csv")
	os.WriteFile(empty, []byte(lines[0]+"\n"), 0o600)
	if _, err := DryRun(empty, testOptions(), &out); err != nil {
		t.Fatal(err)
	}
	if j, _ := os.ReadFile(strings.TrimSuffix(empty, ".csv") + ".report.json"); !bytes.Contains(j, []byte(`"records_detail": []`)) {
		t.Errorf("empty file's report:\n%s", j)
	}
}
