package transform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fhirOptions() Options {
	opt := testOptions()
	opt.Profile = fhirProfile
	return opt
}

// fhirPatientLine is a valid Patient resource with id id and MRN mrn.
func fhirPatientLine(id, mrn, birth string) string {
	return `{"resourceType":"Patient","id":"` + id + `","identifier":[{"type":{"coding":[{"code":"MR"}]},"value":"` + mrn + `"}],` +
		`"name":[{"family":"Rivera","given":["Ana"]}],"gender":"female","birthDate":"` + birth + `",` +
		`"telecom":[{"system":"phone","value":"510-555-0100"}],"address":[{"line":["1 Main St"],"city":"Oakland","state":"CA","postalCode":"94607"}],` +
		`"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"code":"2106-3"}}]},` +
		`{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity","extension":[{"url":"ombCategory","valueCoding":{"code":"2135-2"}}]}]}`
}

// fhirImmLine is a valid administered Immunization of patient id; extra
// fields (JSON members) are added or replace those given.
func fhirImmLine(vid, patient string, extra ...string) string {
	fields := map[string]string{
		"resourceType":       `"Immunization"`,
		"identifier":         `[{"value":"` + vid + `"}]`,
		"status":             `"completed"`,
		"vaccineCode":        `{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"08"}]}`,
		"patient":            `{"reference":"Patient/` + patient + `"}`,
		"occurrenceDateTime": `"2026-10-01T09:00:00-07:00"`,
		"primarySource":      `true`,
		"manufacturer":       `{"identifier":{"system":"http://hl7.org/fhir/sid/mvx","value":"MSD"}}`,
		"lotNumber":          `"L1"`,
		"doseQuantity":       `{"value":0.5,"unit":"mL"}`,
		"programEligibility": `[{"coding":[{"code":"V02"}]}]`,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(fields, extra[i])
			continue
		}
		fields[extra[i]] = extra[i+1]
	}
	var parts []string
	for _, k := range []string{"resourceType", "identifier", "status", "statusReason", "vaccineCode", "patient", "occurrenceDateTime", "primarySource", "reportOrigin",
		"manufacturer", "lotNumber", "expirationDate", "route", "site", "doseQuantity", "performer", "isSubpotent", "programEligibility", "contained"} {
		if v, ok := fields[k]; ok {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// writePair writes a pair of NDJSON files and returns the Immunization
// file's path.
func writePair(t *testing.T, prefix string, patients, imms []string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, prefix+"Patient.ndjson"), []byte(strings.Join(patients, "\n")+"\n"), 0o600)
	p := filepath.Join(dir, prefix+"Immunization.ndjson")
	os.WriteFile(p, []byte(strings.Join(imms, "\n")+"\n"), 0o600)
	return p
}

func TestFHIRFileWithoutItsPartner(t *testing.T) {
	dir := t.TempDir()
	imm := filepath.Join(dir, "clinic-Immunization.ndjson")
	os.WriteFile(imm, []byte(fhirImmLine("V1", "p1")+"\n"), 0o600)
	_, err := Open(imm, fhirOptions())
	var fe *FileError
	if !errors.As(err, &fe) || fe.File != "clinic-Immunization.ndjson" || fe.Transient() ||
		!strings.Contains(fe.Error(), "its partner clinic-Patient.ndjson is not there") {
		t.Fatalf("Immunization file alone: %v", err)
	}
	pat := filepath.Join(dir, "clinic-Patient.ndjson")
	noPhone := strings.Replace(fhirPatientLine("p1", "MRN1", "2020-05-01"), `"telecom":[{"system":"phone","value":"510-555-0100"}],`, "", 1)
	os.WriteFile(pat, []byte(noPhone+"\n"), 0o600)
	if _, err := Open(pat, fhirOptions()); !errors.As(err, &fe) || !strings.Contains(fe.Error(), "reads it with its Immunization file, clinic-Immunization.ndjson") {
		t.Fatalf("Patient file: %v", err)
	}
	// With its partner there, the pair is read; a name given by the
	// caller (the file as dropped) names both in problems.
	opt := fhirOptions()
	opt.Name = "Immunization.ndjson"
	ms := readAll(t, imm, opt)
	if len(ms) != 1 || !ms[0].Records[0].Valid() {
		t.Fatalf("pair: %+v", ms[0].Records[0].Problems)
	}
	if w := ms[0].Records[0].Warnings(); len(w) != 1 || w[0].File != "Immunization.ndjson" || w[0].Where != "Patient.ndjson:1, Patient.telecom" {
		t.Errorf("warnings %+v", w)
	}
}

func TestFHIRMalformedLinesNameFileAndLine(t *testing.T) {
	path := writePair(t, "",
		[]string{fhirPatientLine("p1", "MRN1", "2020-05-01"), `{"resourceType":"Patient","id":"p2",`, fhirPatientLine("p3", "MRN3", "2020-05-01"), `{"resourceType":"Observation","id":"o1"}`},
		[]string{
			fhirImmLine("V1", "p1"),
			`{"resourceType":"Immunization","status":"completed",`,
			`{"resourceType":"Observation","id":"o9"}`,
			fhirImmLine("V4", "p2"),
			"",
			fhirImmLine("V6", "p3", "lotNumber", "12"),
			fhirImmLine("V7", "p9"),
			fhirImmLine("V8", "p3", "status", `"on-hold"`),
		})
	r, err := Open(path, fhirOptions())
	if err != nil {
		t.Fatal(err)
	}
	fp := r.FileProblems()
	r.Close()
	if len(fp) != 2 || !strings.Contains(fp[0].Error(), "Patient.ndjson: line(s) 2 are not valid JSON") || !strings.Contains(fp[1].Error(), "Patient.ndjson: line(s) 4 hold other resources") {
		t.Errorf("file problems %v", fp)
	}
	var got []string
	for _, m := range readAll(t, path, fhirOptions()) {
		for _, rec := range m.Records {
			s := "ok"
			if errs := rec.Errors(); len(errs) > 0 {
				s = errs[0].Error()
				if len(errs) > 1 {
					s += fmt.Sprintf(" (and %d more)", len(errs)-1)
				}
			}
			got = append(got, s)
			if rec.Line == 4 && rec.VaccinationID != "V4" {
				t.Errorf("a dose without its patient keeps its vaccination id: %q", rec.VaccinationID)
			}
		}
	}
	want := []string{
		"ok",
		"Immunization.ndjson:2: json-invalid: not valid JSON: unexpected end of JSON input; this line is not sent",
		"Immunization.ndjson:3: not-immunization: holds a Observation, not an Immunization",
		"Immunization.ndjson:4: Immunization.patient: patient-not-found: the patient Patient/p2 is not in Patient.ndjson (its line(s) 2 could not be read)" + "\x00",
		"Immunization.ndjson:6: fhir-unreadable: cannot be read as a FHIR Immunization: lotNumber holds a JSON number",
		"Immunization.ndjson:7: Immunization.patient: patient-not-found: the patient Patient/p9 is not in Patient.ndjson (its line(s) 2 could not be read)" + "\x00",
		`Immunization.ndjson:8: Immunization.status: status-invalid: Immunization.status "on-hold" is not completed`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d records:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if w, whole := strings.CutSuffix(want[i], "\x00"); whole && got[i] != w || !whole && !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("record %d:\ngot  %s\nwant %s", i+1, got[i], want[i])
		}
	}
}

func TestFHIRPatientProblemsNameThePatientLine(t *testing.T) {
	path := writePair(t, "x-", []string{fhirPatientLine("p1", "MRN1", "2031-01-01")}, []string{fhirImmLine("V1", "p1")})
	rec := readAll(t, path, fhirOptions())[0].Records[0]
	errs := rec.Errors()
	if len(errs) != 1 || errs[0].Rule != "birth-date-future" || errs[0].Where != "x-Patient.ndjson:1, Patient.birthDate" ||
		errs[0].Error() != "x-Immunization.ndjson:1: x-Patient.ndjson:1, Patient.birthDate: birth-date-future: the birth date is in the future" {
		t.Errorf("%+v", errs)
	}
}

// TestFHIRMapping covers what the example does not: statuses, reasons,
// origins, routes and time zones.
func TestFHIRMapping(t *testing.T) {
	adultRef := fhirPatientLine("a1", "MRN2", "1980-01-01")
	for _, c := range []struct {
		name    string
		patient string
		extra   []string
		col     Col
		want    string
	}{
		{"refused by a minor's parent", "p1", []string{"status", `"not-done"`, "statusReason", `{"coding":[{"code":"PATOBJ"}]}`}, RefusalReason, "00"},
		{"refused by an adult", "a1", []string{"status", `"not-done"`, "statusReason", `{"coding":[{"code":"PATOBJ"}]}`}, RefusalReason, "03"},
		{"refused: religious", "p1", []string{"status", `"not-done"`, "statusReason", `{"coding":[{"code":"RELIG"}]}`}, CompletionStatus, "RE"},
		{"refused: NIP002 code", "p1", []string{"status", `"not-done"`, "statusReason", `{"coding":[{"system":"urn:NIP002","code":"02"}]}`}, RefusalReason, "02"},
		{"not done: immune", "p1", []string{"status", `"not-done"`, "statusReason", `{"coding":[{"code":"IMMUNE"}]}`}, CompletionStatus, "NA"},
		{"entered in error", "p1", []string{"status", `"entered-in-error"`}, Action, "D"},
		{"subpotent", "p1", []string{"isSubpotent", "true"}, CompletionStatus, "PA"},
		{"historical, school record", "p1", []string{"primarySource", "false", "reportOrigin", `{"coding":[{"code":"school"}]}`}, InfoSource, "07"},
		{"historical, unknown source", "p1", []string{"primarySource", "false"}, InfoSource, "01"},
		{"UTC evening is the day before in California", "p1", []string{"occurrenceDateTime", `"2026-10-02T05:30:00Z"`}, AdminDate, "20261001"},
		{"subcutaneous", "p1", []string{"route", `{"coding":[{"code":"SQ"}]}`}, Route, "SC"},
		{"NCIT route", "p1", []string{"route", `{"coding":[{"system":"http://ncithesaurus-stage.nci.nih.gov","code":"C28161"}]}`}, Route, "C28161"},
		{"contained manufacturer", "p1", []string{"manufacturer", `{"reference":"#m"}`, "contained", `[{"resourceType":"Organization","id":"m","name":"Merck","identifier":[{"system":"http://hl7.org/fhir/sid/mvx","value":"MSD"}]}]`}, MVXCode, "MSD"},
		{"identifier, else id", "p1", []string{"identifier", `[]`, "resourceType", `"Immunization","id":"imm-77"`}, VaccinationID, "imm-77"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := writePair(t, "", []string{fhirPatientLine("p1", "MRN1", "2020-05-01"), adultRef}, []string{fhirImmLine("V1", c.patient, c.extra...)})
			rec := readAll(t, path, fhirOptions())[0].Records[0]
			if got := rec.Row.Get(c.col); got != c.want {
				t.Errorf("%s = %q, want %q (problems %v)", c.col.Name(), got, c.want, rec.Problems)
			}
			if !rec.Valid() {
				t.Errorf("invalid: %v", rec.Errors())
			}
		})
	}
}

func TestFHIRBundles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "b.json")
	os.WriteFile(p, bundleOf(t, "collection", "../examples/clinic-day-Patient.ndjson", "../examples/clinic-day-Immunization.ndjson"), 0o600)
	ms := readAll(t, p, fhirOptions())
	n := 0
	for _, m := range ms {
		for _, r := range m.Records {
			n++
			if !r.Valid() || r.Line != n+4 { // four Patient entries come first
				t.Errorf("entry %d: %v", r.Line, r.Problems)
			}
		}
	}
	if n != 10 || len(ms) != 4 {
		t.Errorf("%d records in %d messages", n, len(ms))
	}
	for name, c := range map[string]struct{ content, want string }{
		"wrong type":      {string(bundleOf(t, "searchset", "../examples/clinic-day-Patient.ndjson")), `a Bundle of type "searchset"`},
		"not a Bundle":    {"{\n\"resourceType\": \"Parameters\"\n}\n", "not a Bundle: the JSON object is a Parameters"},
		"cut short":       {`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}},`, "the Bundle is cut short in entry 2"},
		"bad entry":       {`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}},{"resource":[}]}`, "entry 2 cannot be read (invalid character '}' looking for beginning of value)"},
		"entry of a kind": {`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}},{"fullUrl":7}]}`, "entry 2 cannot be read (fullUrl holds a JSON number where FHIR has another type)"},
		"cut between":     {`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}}`, "the Bundle is cut short after entry 1"},
		"not JSON":        {"MSH|^~\\&|\n", "does not begin with a JSON object"},
		"two Bundles":     {`{"resourceType":"Bundle","type":"batch"}{"resourceType":"Bundle"}`, "more JSON after the Bundle"},
		"a Bundle entry":  {`{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Immunization","status":"completed","patient":{"reference":"Patient/x"}}}]}`, ""},
	} {
		p := filepath.Join(dir, "x.json")
		os.WriteFile(p, []byte(c.content), 0o600)
		r, err := Open(p, fhirOptions())
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			m, err := r.Next()
			r.Close()
			if err != nil || m.Records[0].Valid() || m.Records[0].Errors()[0].Where != "entry 1, Immunization.patient" {
				t.Errorf("%s: %v %+v", name, err, m.Records[0].Problems)
			}
			continue
		}
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(fe.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestFHIRMixedNDJSON reads one NDJSON file holding both resources.
func TestFHIRMixedNDJSON(t *testing.T) {
	var lines []string
	for _, f := range []string{"../examples/clinic-day-Patient.ndjson", "../examples/clinic-day-Immunization.ndjson"} {
		b, _ := os.ReadFile(f)
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	p := filepath.Join(t.TempDir(), "export.ndjson")
	os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o600)
	n := 0
	for _, m := range readAll(t, p, fhirOptions()) {
		for _, r := range m.Records {
			n++
			if !r.Valid() {
				t.Errorf("line %d: %v", r.Line, r.Problems)
			}
		}
	}
	if n != 10 {
		t.Errorf("%d records", n)
	}
}

func TestFHIRRejectsRows(t *testing.T) {
	path := writePair(t, "", []string{fhirPatientLine("p1", "MRN1", "2020-05-01")}, []string{fhirImmLine("V1", "p1"), "{broken", fhirImmLine("V3", "p1", "lotNumber", "")})
	var recs []*Record
	for _, m := range readAll(t, path, fhirOptions()) {
		recs = append(recs, m.Records...)
	}
	var rows []string
	i := 1
	err := RawRows(path, fhirOptions(), func() (int64, int64, bool) {
		if i >= len(recs) {
			return 0, 0, false
		}
		i++
		return recs[i-1].Start, recs[i-1].End, true
	}, func(raw []byte) error { rows = append(rows, string(raw)); return nil })
	if err != nil || len(rows) != 2 || !strings.HasSuffix(rows[0], ",Immunization.ndjson line 2") || !strings.Contains(rows[1], "MRN1,Rivera,Ana") ||
		!strings.HasSuffix(rows[1], ",Immunization.ndjson line 3") {
		t.Errorf("%v\n%s", err, strings.Join(rows, "\n"))
	}
}
