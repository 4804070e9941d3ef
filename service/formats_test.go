package service_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/izdrop/izdrop/sandbox"
)

// TestHL7BatchAndFHIRPairEndToEnd drops an HL7 batch into one inbox and a
// FHIR NDJSON pair into another, on a running service, and sees every
// record accepted by the registry; the FHIR Immunization file is not taken
// while its Patient file is missing, and the two are archived together.
func TestHL7BatchAndFHIRPairEndToEnd(t *testing.T) {
	fhirInbox := filepath.Join(t.TempDir(), "fhir")
	fhirArchive := filepath.Join(t.TempDir(), "fhir-archive")
	f := newFixture(t, fmt.Sprintf(`profile = "hl7"

[inboxes.fhir]
path = %q
archive = %q
site = "demo"
endpoint = "reg"
profile = "fhir"
stable_for = "150ms"
rescan = "500ms"

[profiles.hl7]
format = "hl7"

[profiles.fhir]
format = "fhir-ndjson"
`, fhirInbox, fhirArchive), sandbox.Faults{})
	if err := os.MkdirAll(fhirInbox, 0o700); err != nil {
		t.Fatal(err)
	}
	s := f.service(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	archivedIn := func(root, name string) (string, bool) {
		for _, r := range []string{"done", "failed"} {
			if m, _ := filepath.Glob(filepath.Join(root, r, "*", name)); len(m) == 1 {
				return m[0], true
			}
		}
		return "", false
	}

	f.drop(t, "clinic-day-batch.hl7", example(t, "clinic-day-batch.hl7"))
	// The FHIR export holds the same visits: other vaccination ids, so that
	// the registry does not take them for the HL7 batch's doses again.
	imms := strings.ReplaceAll(string(example(t, "clinic-day-Immunization.ndjson")), `"value":"CD-`, `"value":"FH-`)
	if err := os.WriteFile(filepath.Join(fhirInbox, "clinic-day-Immunization.ndjson"), []byte(imms), 0o644); err != nil {
		t.Fatal(err)
	}
	// A Bundle dropped after it is taken, the Immunization file is not:
	// files are taken oldest first, so it waits for its partner.
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[` +
		`{"fullUrl":"urn:uuid:8f14e45f-ceea-467f-a0e4-0c1a2b3c4d5e","resource":{"resourceType":"Patient","id":"b1","identifier":[{"value":"MRN20009"}],"name":[{"family":"Ostrowski","given":["Lena"]}],"gender":"female","birthDate":"1990-04-02","telecom":[{"system":"phone","value":"415-555-0166"}]}},` +
		`{"resource":{"resourceType":"Immunization","identifier":[{"value":"BU-1"}],"status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"140"}]},` +
		`"patient":{"reference":"urn:uuid:8f14e45f-ceea-467f-a0e4-0c1a2b3c4d5e"},"occurrenceDateTime":"2026-11-20","primarySource":true,"lotNumber":"3PZ7T",` +
		`"manufacturer":{"identifier":{"system":"http://hl7.org/fhir/sid/mvx","value":"SKB"}},"doseQuantity":{"value":0.5,"unit":"mL"},"programEligibility":[{"coding":[{"code":"V01"}]}]}}]}`
	if err := os.WriteFile(filepath.Join(fhirInbox, "flu-clinic.json"), []byte(bundle), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the Bundle archived", 20*time.Second, func() bool { _, ok := archivedIn(fhirArchive, "flu-clinic.json"); return ok })
	if _, err := os.Stat(filepath.Join(fhirInbox, "clinic-day-Immunization.ndjson")); err != nil {
		t.Fatalf("the Immunization file was taken without its Patient file: %v", err)
	}
	// Its partner arrives: both are taken and filed together.
	if err := os.WriteFile(filepath.Join(fhirInbox, "clinic-day-Patient.ndjson"), example(t, "clinic-day-Patient.ndjson"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The data file is moved first, its partner just after: both are
	// waited for.
	waitFor(t, "the HL7 batch and the FHIR pair archived", 30*time.Second, func() bool {
		_, a := f.archived("clinic-day-batch.hl7")
		imm, b := archivedIn(fhirArchive, "clinic-day-Immunization.ndjson")
		return a && b && exists(filepath.Join(filepath.Dir(imm), "clinic-day-Patient.ndjson"))
	})

	batch, _ := f.archived("clinic-day-batch.hl7")
	imm, _ := archivedIn(fhirArchive, "clinic-day-Immunization.ndjson")
	bun, _ := archivedIn(fhirArchive, "flu-clinic.json")
	for _, c := range []struct {
		path    string
		records int
	}{{batch, 10}, {imm, 10}, {bun, 1}} {
		sc := readSidecar(t, c.path)
		if !strings.Contains(filepath.ToSlash(c.path), "/done/") || sc.Result != "done" || len(sc.Records) != c.records {
			t.Errorf("%s: %s with %d records, counts %v", filepath.Base(c.path), sc.Result, len(sc.Records), sc.Counts)
		}
		for _, r := range sc.Records {
			if r.Outcome != "accepted" && r.Outcome != "accepted_with_warnings" || r.MSH10 == "" {
				t.Errorf("%s line %d: %s %+v", filepath.Base(c.path), r.Line, r.Outcome, r.Errors)
			}
		}
	}
	// The batch's messages went out under their own MSH-10s, one message
	// per input message; the records are named by their RXA lines.
	sc := readSidecar(t, batch)
	if r := sc.Records[0]; r.Line != 10 || r.VaccinationID != "CD-20001-1" || r.MSH10 != "ACME2611200001" {
		t.Errorf("first HL7 record %+v", r)
	}
	if r := sc.Records[9]; r.Line != 59 || r.MSH10 != "ACME2611200004" {
		t.Errorf("last HL7 record %+v", r)
	}
	// The Patient file was claimed and archived with its Immunization file.
	if _, err := os.Stat(filepath.Join(filepath.Dir(imm), "clinic-day-Patient.ndjson")); err != nil {
		t.Errorf("the Patient file is not beside its Immunization file: %v", err)
	}
	for _, dir := range []string{fhirInbox, filepath.Join(fhirInbox, "work"), filepath.Join(f.inbox, "work")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				t.Errorf("%s left in %s", e.Name(), dir)
			}
		}
	}
	seen := receivedOnce(t, f.sb)
	if len(seen) != 21 {
		t.Errorf("the registry received %d doses, want 21", len(seen))
	}
}

// TestHL7RejectsAndErrorsNameMessages: a batch with an ADT message and an
// invalid dose is filed as failed; ack.json names each by message and
// field, and the rejects file holds them as rows of the default layout.
func TestHL7RejectsAndErrorsNameMessages(t *testing.T) {
	f := newFixture(t, "profile = \"hl7\"\n\n[profiles.hl7]\nformat = \"hl7\"\n", sandbox.Faults{})
	s := f.service(t)
	ex := string(example(t, "clinic-day-batch.hl7"))
	adt := "MSH|^~\\&|Acme EHR 9.1|DEMOORG|CAIR IIS|CAIRBA|20261120160000-0800||ADT^A08^ADT_A01|ACMEADT1|P|2.5.1\nEVN|A08|20261120\nPID|1||MRN20004^^^DEMOORG^MR||Whitfield^Jonah\n"
	ex = strings.Replace(ex, "BTS|4", adt+"BTS|5", 1)
	ex = strings.Replace(ex, "|Y009457|", "||", 1) // the Hib dose without its lot
	f.drop(t, "day.hl7", []byte(ex))
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Failed != 1 || sum.Records["invalid"] != 2 || sum.Records["accepted"]+sum.Records["accepted_with_warnings"] != 9 {
		t.Fatalf("%+v %v", sum, err)
	}
	p, _ := f.archived("day.hl7")
	sc := readSidecar(t, p)
	var notes []string
	for _, r := range sc.Records {
		if r.Outcome == "invalid" {
			notes = append(notes, fmt.Sprintf("%d %s %s", r.Line, r.Errors[0].Code, r.Errors[0].Text))
		}
	}
	if len(notes) != 2 || !strings.HasPrefix(notes[0], "19 lot-missing ") || !strings.HasPrefix(notes[1], "63 not-vxu message 5 is ADT^A08, not VXU^V04") {
		t.Errorf("invalid records:\n%s", strings.Join(notes, "\n"))
	}
	rej, err := os.ReadFile(p + ".rejects.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rej)), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], ",izdrop_source,izdrop_errors") ||
		!strings.Contains(lines[1], "MRN20001,Tran,Mai,") || !strings.Contains(lines[1], `"message 1, line 19"`) || !strings.Contains(lines[1], "message 1, RXA[2]-15 (RXA-15) lot-missing") ||
		!strings.Contains(lines[2], `"message 5, line 63"`) || strings.Contains(lines[2], "Whitfield") {
		t.Errorf("rejects:\n%s", rej)
	}
}

// TestHL7ControlIDKeptOnlyWhileUnique: a message keeps its own MSH-10 the
// first time; dropped again with a change, it gets a new one, so the
// registry never sees one MSH-10 with two contents.
func TestHL7ControlIDKeptOnlyWhileUnique(t *testing.T) {
	f := newFixture(t, "profile = \"hl7\"\n\n[profiles.hl7]\nformat = \"hl7\"\n", sandbox.Faults{})
	s := f.service(t)
	ex := string(example(t, "clinic-day-batch.hl7"))
	f.drop(t, "a.hl7", []byte(ex))
	if sum, err := s.RunOnce(context.Background()); err != nil || sum.Done != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	f.drop(t, "b.hl7", []byte(strings.Replace(ex, "|7K2R9|", "|7K2R8|", 1)))
	if sum, err := s.RunOnce(context.Background()); err != nil || sum.Done != 1 || sum.Records["already_accepted"] != 9 {
		t.Fatalf("%+v %v", sum, err)
	}
	p, _ := f.archived("b.hl7")
	sc := readSidecar(t, p)
	if r := sc.Records[0]; r.Outcome == "already_accepted" || !strings.HasPrefix(r.MSH10, "IZ") {
		t.Errorf("the changed dose: %+v", r)
	}
	if r := sc.Records[1]; r.Outcome != "already_accepted" || r.MSH10 != "ACME2611200001" {
		t.Errorf("an unchanged dose: %+v", r)
	}
	if st := f.sb.Stats(); st.ReusedControlIDs != 0 {
		t.Errorf("%d MSH-10s reached the registry twice", st.ReusedControlIDs)
	}
}
