package service_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

// TestRetentionPurgesWhatWasArchivedLongAgoAndNothingElse files a done
// file, a failed one (with its rejects) and a FHIR pair, each with what was
// filed beside it, leaves a fourth waiting in work/ for the registry, and
// runs again 31 days later with [retention] days = 30: the archived files,
// their sidecars, markers and partner, and their journal rows are gone,
// with an audit line each; the waiting file is untouched; and the records
// the registry holds are still not sent again when the file comes back.
func TestRetentionPurgesWhatWasArchivedLongAgoAndNothingElse(t *testing.T) {
	fhirInbox, fhirArchive := filepath.Join(t.TempDir(), "fhir"), filepath.Join(t.TempDir(), "fhir-archive")
	f := newFixture(t, fmt.Sprintf(`marker = "done"

[inboxes.fhir]
path = %q
create = true
archive = %q
site = "demo"
endpoint = "reg"
profile = "fhir"
stable_for = "150ms"

[profiles.fhir]
format = "fhir-ndjson"

[retention]
days = 30
`, fhirInbox, fhirArchive), sandbox.Faults{})
	// A clock ahead by skip: files still settle as time passes.
	run := func(skip time.Duration, log *bytes.Buffer) service.Summary {
		t.Helper()
		s, err := service.New(f.cfg, service.Options{Log: zerolog.New(zerolog.SyncWriter(log)), Version: "test", Now: func() time.Time { return time.Now().Add(skip) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sum, err := s.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	for _, n := range []string{"a.csv", "mixed.csv"} {
		src := map[string]string{"a.csv": "visit-administered.csv", "mixed.csv": "mixed-with-errors.csv"}[n]
		f.drop(t, n, example(t, src))
		f.drop(t, n+".done", nil)
	}
	os.MkdirAll(fhirInbox, 0o700)
	for _, n := range []string{"clinic-day-Patient.ndjson", "clinic-day-Immunization.ndjson"} {
		os.WriteFile(filepath.Join(fhirInbox, n), example(t, n), 0o600)
	}
	var log bytes.Buffer
	if sum := run(0, &log); sum.Done != 2 || sum.Failed != 1 {
		t.Fatalf("first run: %+v\n%s", sum, log.String())
	}
	var filed []string
	for _, root := range []string{f.archive, fhirArchive} {
		m, _ := filepath.Glob(filepath.Join(root, "*", "*", "*"))
		filed = append(filed, m...)
	}
	for _, want := range []string{"a.csv", "a.csv.done", "a.csv.ack.json", "a.csv.ack.hl7", "mixed.csv.rejects.csv", "mixed.csv.done",
		"clinic-day-Patient.ndjson", "clinic-day-Immunization.ndjson.ack.json"} {
		if !strings.Contains(strings.Join(filed, "\n"), string(filepath.Separator)+want+"\n") && !strings.HasSuffix(strings.Join(filed, "\n"), string(filepath.Separator)+want) {
			t.Fatalf("%s not filed: %v", want, filed)
		}
	}
	// A file that waits for the registry, older than 30 days when the
	// purge comes.
	f.sb.SetFaults(sandbox.Faults{Rate503: 1})
	f.drop(t, "late.csv", example(t, "historical.csv"))
	f.drop(t, "late.csv.done", nil)
	if sum := run(0, &log); sum.Pending != 1 {
		t.Fatalf("registry down: %+v", sum)
	}
	log.Reset()
	const later = 31 * 24 * time.Hour
	run(later, &log)
	for _, root := range []string{f.archive, fhirArchive} {
		for _, r := range []string{"done", "failed"} {
			if m, _ := filepath.Glob(filepath.Join(root, r, "*")); len(m) != 0 {
				t.Errorf("left in %s/%s: %v", filepath.Base(root), r, m)
			}
		}
	}
	if audits := strings.Count(log.String(), `"audit":"retention"`); audits != 3 {
		t.Errorf("%d audit lines, want 3:\n%s", audits, log.String())
	}
	for _, leak := range []string{"Rivera", "Garcia", "2020-"} {
		if strings.Contains(log.String(), leak) {
			t.Errorf("the log holds patient data (%q)", leak)
		}
	}
	var out bytes.Buffer
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	found, _ := service.Find(context.Background(), s.Journal(), "a.csv", &out)
	late, _ := service.Find(context.Background(), s.Journal(), "late.csv", &out)
	s.Close()
	if found || !late {
		t.Errorf("journal: a.csv found %v, late.csv found %v", found, late)
	}
	if m, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*late.csv")); len(m) != 1 {
		t.Errorf("the waiting file was touched: %v", m)
	}
	// The registry is back: the waiting file goes through, and a.csv
	// dropped again is not sent again.
	f.sb.SetFaults(sandbox.Faults{})
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	f.drop(t, "a.csv.done", nil)
	if sum := run(later, &log); sum.Done != 2 {
		t.Fatalf("after the purge: %+v", sum)
	}
	p, _ := f.archived("a.csv")
	sc := readSidecar(t, p)
	if len(sc.Records) == 0 || sc.Counts["already_accepted"] != len(sc.Records) {
		t.Errorf("a.csv dropped again: %v", sc.Counts)
	}
}
