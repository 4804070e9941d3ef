package transform

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dryRunVXU runs DryRun on the named examples (copied into a fresh folder;
// the first is the file read) and returns the VXUs it would send.
func dryRunVXU(t *testing.T, opt Options, names ...string) ([]byte, *Report) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("../examples", n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n), b, 0o600)
	}
	return dryRunFile(t, opt, filepath.Join(dir, names[0]))
}

func dryRunFile(t *testing.T, opt Options, path string) ([]byte, *Report) {
	t.Helper()
	var out bytes.Buffer
	rep, err := DryRun(path, opt, &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Error != "" || rep.Invalid > 0 {
		t.Fatalf("%s: %s\n%s", filepath.Base(path), rep.Error, out.String())
	}
	stem := strings.TrimSuffix(path, filepath.Ext(path))
	b, err := os.ReadFile(stem + ".vxu.hl7")
	if err != nil {
		t.Fatal(err)
	}
	// The records are in the report file, not in memory: read them back.
	j, err := os.ReadFile(stem + ".report.json")
	if err != nil {
		t.Fatal(err)
	}
	var full Report
	if err := json.Unmarshal(j, &full); err != nil {
		t.Fatal(err)
	}
	if len(full.Items) != rep.Records {
		t.Fatalf("%s: the report holds %d records, the summary says %d", filepath.Base(path), len(full.Items), rep.Records)
	}
	rep.Items = full.Items
	return b, rep
}

// maskHeader blanks MSH-7 and MSH-10 of every message: what differs
// between two sends of the same vaccinations.
func maskHeader(vxus []byte) string {
	var out []string
	for _, seg := range strings.FieldsFunc(string(vxus), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.HasPrefix(seg, "MSH|") {
			f := strings.Split(seg, "|")
			if len(f) > 10 {
				f[6], f[9] = "<MSH-7>", "<MSH-10>"
			}
			seg = strings.Join(f, "|")
		}
		out = append(out, seg)
	}
	return strings.Join(out, "\n")
}

// TestSameVaccinationsAnyFormat reads one clinic day's vaccinations given
// as CSV, as an HL7 batch, as a FHIR NDJSON pair and as a FHIR Bundle, and
// finds the registry would get the same messages, byte for byte, from each
// (apart from MSH-7 and MSH-10, which belong to the send).
func TestSameVaccinationsAnyFormat(t *testing.T) {
	csvVXU, csvRep := dryRunVXU(t, testOptions(), "clinic-day.csv")
	want := maskHeader(csvVXU)
	if csvRep.Records != 10 || csvRep.Messages != 4 {
		t.Fatalf("the CSV example has %d records in %d messages", csvRep.Records, csvRep.Messages)
	}

	opt := testOptions()
	opt.Profile = hl7Profile
	hl7VXU, hl7Rep := dryRunVXU(t, opt, "clinic-day-batch.hl7")

	opt.Profile = fhirProfile
	fhirVXU, fhirRep := dryRunVXU(t, opt, "clinic-day-Immunization.ndjson", "clinic-day-Patient.ndjson")

	bundle := filepath.Join(t.TempDir(), "clinic-day-bundle.json")
	os.WriteFile(bundle, bundleOf(t, "transaction", "../examples/clinic-day-Patient.ndjson", "../examples/clinic-day-Immunization.ndjson"), 0o600)
	bundleVXU, bundleRep := dryRunFile(t, opt, bundle)

	for _, c := range []struct {
		name string
		vxu  []byte
		rep  *Report
	}{{"HL7 batch", hl7VXU, hl7Rep}, {"FHIR NDJSON", fhirVXU, fhirRep}, {"FHIR Bundle", bundleVXU, bundleRep}} {
		if got := maskHeader(c.vxu); got != want {
			t.Errorf("%s: the VXUs differ from the CSV's:\n%s", c.name, firstDiff([]byte(got), []byte(want)))
		}
		if c.rep.Records != csvRep.Records || c.rep.Messages != csvRep.Messages || c.rep.WithWarnings != 0 {
			t.Errorf("%s: %d records in %d messages (%d with warnings)", c.name, c.rep.Records, c.rep.Messages, c.rep.WithWarnings)
		}
		for i, it := range c.rep.Items {
			if it.VaccinationID != csvRep.Items[i].VaccinationID || it.PatientID != csvRep.Items[i].PatientID {
				t.Errorf("%s: record %d is %s/%s", c.name, i, it.PatientID, it.VaccinationID)
			}
		}
	}
	// MSH-10 is the only field set apart from the send time: the masks
	// above must not hide a difference of anything else.
	if strings.Count(want, "<MSH-10>") != 4 || strings.Count(want, "<MSH-7>") != 4 {
		t.Errorf("masked %d MSH-10s", strings.Count(want, "<MSH-10>"))
	}
}

// bundleOf wraps the resources of NDJSON files into a Bundle whose
// references are fullUrls (urn:uuid), as a transaction Bundle has them.
func bundleOf(t *testing.T, typ string, files ...string) []byte {
	t.Helper()
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
	}
	var entries []entry
	ids := map[string]string{}
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var head struct{ ResourceType, ID string }
			json.Unmarshal([]byte(line), &head)
			ids[head.ResourceType+"/"+head.ID] = "urn:uuid:" + strings.Repeat("0", 8) + "-0000-4000-8000-" + head.ID[len(head.ID)-5:] + strings.Repeat("0", 7)
			all = append(all, line)
		}
	}
	for _, line := range all {
		var head struct{ ResourceType, ID string }
		json.Unmarshal([]byte(line), &head)
		for ref, url := range ids {
			line = strings.ReplaceAll(line, `"reference":"`+ref+`"`, `"reference":"`+url+`"`)
		}
		entries = append(entries, entry{ids[head.ResourceType+"/"+head.ID], json.RawMessage(line)})
	}
	b, err := json.MarshalIndent(map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPartner(t *testing.T) {
	for _, c := range []struct {
		name, partner string
		data, ok      bool
	}{
		{"Immunization.ndjson", "Patient.ndjson", true, true},
		{"Patient.ndjson", "Immunization.ndjson", false, true},
		{"clinic-2026-11-20.Immunization.ndjson", "clinic-2026-11-20.Patient.ndjson", true, true},
		{"20261120T0101--immunization.ndjson", "20261120T0101--patient.ndjson", true, true},
		{"IMMUNIZATION.NDJSON", "PATIENT.NDJSON", true, true},
		{"bundle.json", "", false, false},
		{"Observation.ndjson", "", false, false},
		{"Immunization.csv", "", false, false},
	} {
		p, data, ok := Partner(c.name)
		if p != c.partner || data != c.data || ok != c.ok {
			t.Errorf("Partner(%q) = %q %v %v", c.name, p, data, ok)
		}
	}
}

func TestFormatProfileChecks(t *testing.T) {
	cs := testOptionsCodes()
	for _, c := range []struct {
		p    Profile
		want string
	}{
		{Profile{Format: "xml"}, `format "xml"`},
		{Profile{Format: FormatHL7, Columns: map[string]string{"patient_id": "MRN"}}, "columns apply to format"},
		{Profile{Format: FormatHL7, DateFormat: "YYYYMMDD"}, "date_format applies"},
		{Profile{Format: FormatHL7, Delimiter: '|'}, "delimiter applies"},
		{Profile{Format: FormatHL7, MSH10: "renumber"}, `msh10 "renumber"`},
		{Profile{Format: FormatFHIR, SetSiteFields: true}, "apply to format"},
		{Profile{Format: FormatFHIR, Encoding: "windows-1252"}, "always UTF-8"},
		{Profile{SetSiteFields: true}, "set_site_fields applies"},
		{Profile{MSH10: "keep"}, "msh10 applies"},
	} {
		err := c.p.Validate(cs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.p, err, c.want)
		}
	}
	for _, p := range []Profile{{Format: FormatHL7, MSH10: "replace", SetSiteFields: true, Values: map[string]map[string]string{"patient_sex": {"W": "F"}}}, {Format: FormatFHIR}, {Format: FormatCSV}} {
		if err := p.Validate(cs); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}
