package transform

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid administered dose with every column set.
var base = map[Col]string{
	PatientID: "P1", PatientLastName: "Rivera", PatientFirstName: "Ana", PatientMiddleName: "Luz",
	PatientBirthDate: "2020-05-01", PatientSex: "F", Race: "2106-3", Ethnicity: "2135-2",
	AddressStreet: "1 Main St", AddressCity: "Oakland", AddressState: "CA", AddressZip: "94607", AddressCounty: "Alameda",
	Phone: "510-555-0100", Email: "a@example.org", Language: "spa", ShareWithRegistry: "Y",
	VaccinationID: "V1", AdminDate: "2026-10-01", CVXCode: "08", MVXCode: "MSD", LotNumber: "L1",
	LotExpiration: "2027-05", DoseML: "0.5", Route: "C28161", BodySite: "LT", VFCEligibility: "V02",
	FundingSource: "VXC51", AdministeredByNPI: "1234567893", AdministeredByLastName: "Ng",
}

// writeCSV writes a file with every column of the default layout and one
// row per map (each applied over base).
func writeCSV(t *testing.T, rows ...map[Col]string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	var head []string
	for c := Col(0); c < numCols; c++ {
		head = append(head, c.Name())
	}
	w.Write(head)
	for _, over := range rows {
		var rec []string
		for c := Col(0); c < numCols; c++ {
			v := base[c]
			if o, ok := over[c]; ok {
				v = o
			}
			rec = append(rec, v)
		}
		w.Write(rec)
	}
	w.Flush()
	f.Close()
	return path
}

func readAll(t *testing.T, path string, opt Options) []*Message {
	t.Helper()
	r, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*Message
	for {
		m, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

func TestValidRecordHasNoProblems(t *testing.T) {
	ms := readAll(t, writeCSV(t, nil), testOptions())
	if len(ms) != 1 || len(ms[0].Records) != 1 {
		t.Fatalf("messages: %+v", ms)
	}
	if p := ms[0].Records[0].Problems; len(p) != 0 {
		t.Fatalf("base row has problems: %v", p)
	}
}

func TestValidationRules(t *testing.T) {
	sj := testOptions()
	sj.Sites = map[string]Site{"SJ01": {ID: "SJ01", Region: "CAIRCV", County: "San Joaquin"}}
	reject := testOptions()
	reject.Profile.NamePolicy = "reject"
	cases := []struct {
		rule  string
		sev   Severity
		col   Col
		field string
		row   map[Col]string
		opt   *Options
	}{
		{"patient-id-missing", Error, PatientID, "PID-3", map[Col]string{PatientID: ""}, nil},
		{"patient-name-missing", Error, PatientLastName, "PID-5.1", map[Col]string{PatientLastName: ""}, nil},
		{"patient-name-missing", Error, PatientFirstName, "PID-5.2", map[Col]string{PatientFirstName: ""}, nil},
		{"name-stripped", Warning, PatientLastName, "PID-5.1", map[Col]string{PatientLastName: "Rivera2"}, nil},
		{"name-invalid-chars", Error, PatientLastName, "PID-5.1", map[Col]string{PatientLastName: "Rivera2"}, &reject},
		{"name-invalid-chars", Error, PatientFirstName, "PID-5.2", map[Col]string{PatientFirstName: "123"}, nil},
		{"name-temporary", Warning, PatientFirstName, "PID-5.2", map[Col]string{PatientFirstName: "Baby Girl"}, nil},
		{"name-test", Warning, PatientLastName, "PID-5.1", map[Col]string{PatientLastName: "Test"}, nil},
		{"birth-date-missing", Error, PatientBirthDate, "PID-7", map[Col]string{PatientBirthDate: ""}, nil},
		{"birth-date-invalid", Error, PatientBirthDate, "PID-7", map[Col]string{PatientBirthDate: "2020-02-30"}, nil},
		{"birth-date-invalid", Error, PatientBirthDate, "PID-7", map[Col]string{PatientBirthDate: "May 1 2020"}, nil},
		{"birth-date-future", Error, PatientBirthDate, "PID-7", map[Col]string{PatientBirthDate: "2027-01-01"}, nil},
		{"birth-date-old", Warning, PatientBirthDate, "PID-7", map[Col]string{PatientBirthDate: "1890-01-01"}, nil},
		{"sex-missing", Error, PatientSex, "PID-8", map[Col]string{PatientSex: ""}, nil},
		{"sex-invalid", Error, PatientSex, "PID-8", map[Col]string{PatientSex: "Female"}, nil},
		{"race-missing", Warning, Race, "PID-10", map[Col]string{Race: ""}, nil},
		{"race-invalid", Warning, Race, "PID-10", map[Col]string{Race: "2106-3;9999-9"}, nil},
		{"ethnicity-missing", Warning, Ethnicity, "PID-22", map[Col]string{Ethnicity: ""}, nil},
		{"ethnicity-invalid", Warning, Ethnicity, "PID-22", map[Col]string{Ethnicity: "H"}, nil},
		{"state-invalid", Warning, AddressState, "PID-11.4", map[Col]string{AddressState: "Calif"}, nil},
		{"zip-invalid", Warning, AddressZip, "PID-11.5", map[Col]string{AddressZip: "946"}, nil},
		{"county-invalid", Warning, AddressCounty, "PID-11.9", map[Col]string{AddressCounty: "Gotham"}, nil},
		{"phone-missing", Warning, Phone, "PID-13", map[Col]string{Phone: ""}, nil},
		{"phone-invalid", Warning, Phone, "PID-13", map[Col]string{Phone: "555-0100"}, nil},
		{"email-invalid", Warning, Email, "PID-13", map[Col]string{Email: "nobody"}, nil},
		{"language-invalid", Warning, Language, "PID-15", map[Col]string{Language: "Spanish"}, nil},
		{"multiple-birth-invalid", Warning, MultipleBirth, "PID-24", map[Col]string{MultipleBirth: "twin"}, nil},
		{"birth-order-missing", Warning, BirthOrder, "PID-25", map[Col]string{MultipleBirth: "Y"}, nil},
		{"birth-order-invalid", Warning, BirthOrder, "PID-25", map[Col]string{MultipleBirth: "Y", BirthOrder: "second"}, nil},
		{"death-date-invalid", Error, DeathDate, "PID-29", map[Col]string{DeathDate: "13/01/2025"}, nil},
		{"death-date-future", Error, DeathDate, "PID-29", map[Col]string{DeathDate: "2030-01-01"}, nil},
		{"death-before-birth", Error, DeathDate, "PID-29", map[Col]string{DeathDate: "2019-01-01"}, nil},
		{"admin-after-death", Error, AdminDate, "RXA-3", map[Col]string{DeathDate: "2025-01-01"}, nil},
		{"protection-invalid", Error, ShareWithRegistry, "PD1-12", map[Col]string{ShareWithRegistry: "maybe"}, nil},
		{"disclosure-date-invalid", Error, DisclosureDate, "PD1-13", map[Col]string{DisclosureDate: "soon"}, nil},
		{"disclosure-date-future", Error, DisclosureDate, "PD1-13", map[Col]string{DisclosureDate: "2031-01-01"}, nil},
		{"publicity-invalid", Warning, ReminderRecall, "PD1-11", map[Col]string{ReminderRecall: "99"}, nil},
		{"registry-status-invalid", Error, RegistryStatus, "PD1-16", map[Col]string{RegistryStatus: "Z"}, nil},
		{"relationship-invalid", Warning, GuardianRelationship, "NK1-3", map[Col]string{GuardianLastName: "Rivera", GuardianRelationship: "MOM"}, nil},
		{"guardian-incomplete", Warning, GuardianLastName, "NK1-2", map[Col]string{GuardianFirstName: "Rosa"}, nil},
		{"vaccination-id-missing", Error, VaccinationID, "ORC-3", map[Col]string{VaccinationID: ""}, nil},
		{"vaccination-id-missing", Error, VaccinationID, "ORC-3", map[Col]string{VaccinationID: "", Action: "U"}, nil},
		{"vaccination-id-missing", Error, VaccinationID, "ORC-3", map[Col]string{VaccinationID: "", Action: "D"}, nil},
		{"action-invalid", Error, Action, "RXA-21", map[Col]string{Action: "X"}, nil},
		{"admin-date-missing", Error, AdminDate, "RXA-3", map[Col]string{AdminDate: ""}, nil},
		{"admin-date-invalid", Error, AdminDate, "RXA-3", map[Col]string{AdminDate: "2026-13-01"}, nil},
		{"admin-date-future", Error, AdminDate, "RXA-3", map[Col]string{AdminDate: "2026-11-26"}, nil},
		{"admin-before-birth", Error, AdminDate, "RXA-3", map[Col]string{AdminDate: "2020-04-30"}, nil},
		{"cvx-missing", Error, CVXCode, "RXA-5", map[Col]string{CVXCode: ""}, nil},
		{"cvx-unknown", Error, CVXCode, "RXA-5", map[Col]string{CVXCode: "9999"}, nil},
		{"cvx-never-active", Error, CVXCode, "RXA-5", map[Col]string{CVXCode: "57", MVXCode: ""}, nil},
		{"cvx-non-us-administered", Error, CVXCode, "RXA-5", map[Col]string{CVXCode: "102", MVXCode: ""}, nil},
		{"cvx-inactive", Warning, CVXCode, "RXA-5", map[Col]string{CVXCode: "50", MVXCode: "PMC"}, nil},
		{"cvx-998-given", Error, CVXCode, "RXA-5", map[Col]string{CVXCode: "998"}, nil},
		{"mvx-unknown", Error, MVXCode, "RXA-17", map[Col]string{MVXCode: "ZZZ"}, nil},
		{"cvx-mvx-pair", Error, MVXCode, "RXA-17", map[Col]string{MVXCode: "PFR"}, nil},
		{"lot-missing", Error, LotNumber, "RXA-15", map[Col]string{LotNumber: ""}, nil},
		{"mvx-missing", Error, MVXCode, "RXA-17", map[Col]string{MVXCode: ""}, nil},
		{"vfc-missing", Error, VFCEligibility, "OBX-5 (64994-7)", map[Col]string{VFCEligibility: ""}, nil},
		{"vfc-invalid", Error, VFCEligibility, "OBX-5 (64994-7)", map[Col]string{VFCEligibility: "V9"}, nil},
		{"info-source-invalid", Error, InfoSource, "RXA-9", map[Col]string{InfoSource: "card"}, nil},
		{"dose-invalid", Error, DoseML, "RXA-6", map[Col]string{DoseML: "half"}, nil},
		{"dose-missing", Warning, DoseML, "RXA-6", map[Col]string{DoseML: ""}, nil},
		{"completion-status-invalid", Error, CompletionStatus, "RXA-20", map[Col]string{CompletionStatus: "OK"}, nil},
		{"refusal-reason-missing", Error, RefusalReason, "RXA-18", map[Col]string{CompletionStatus: "RE"}, nil},
		{"refusal-reason-invalid", Error, RefusalReason, "RXA-18", map[Col]string{RefusalReason: "09"}, nil},
		{"refusal-completion-conflict", Error, CompletionStatus, "RXA-20", map[Col]string{RefusalReason: "00", CompletionStatus: "CP"}, nil},
		{"refusal-lot-ignored", Warning, LotNumber, "RXA-15", map[Col]string{RefusalReason: "01"}, nil},
		{"immunity-with-cvx", Error, CVXCode, "RXA-5", map[Col]string{ImmunitySNOMED: "38907003"}, nil},
		{"immunity-completion", Error, CompletionStatus, "RXA-20", map[Col]string{ImmunitySNOMED: "38907003", CVXCode: "", CompletionStatus: "CP"}, nil},
		{"immunity-invalid", Error, ImmunitySNOMED, "OBX-5 (59784-9)", map[Col]string{ImmunitySNOMED: "chickenpox", CVXCode: ""}, nil},
		{"immunity-unlisted", Warning, ImmunitySNOMED, "OBX-5 (59784-9)", map[Col]string{ImmunitySNOMED: "123456789", CVXCode: ""}, nil},
		{"lot-expiration-invalid", Warning, LotExpiration, "RXA-16", map[Col]string{LotExpiration: "next year"}, nil},
		{"lot-expired", Warning, LotExpiration, "RXA-16", map[Col]string{LotExpiration: "2026-09"}, nil},
		{"route-invalid", Warning, Route, "RXR-1", map[Col]string{Route: "ARM"}, nil},
		{"site-invalid", Warning, BodySite, "RXR-2", map[Col]string{BodySite: "LEFT"}, nil},
		{"npi-invalid", Warning, AdministeredByNPI, "RXA-10.1", map[Col]string{AdministeredByNPI: "1234567890"}, nil},
		{"funding-invalid", Warning, FundingSource, "OBX-5 (30963-3)", map[Col]string{FundingSource: "CASH"}, nil},
		{"vis-document-invalid", Warning, VISDocument, "OBX-5 (69764-9)", map[Col]string{VISDocument: "12345"}, nil},
		{"vis-date-invalid", Warning, VISGivenDate, "OBX-5 (29769-7)", map[Col]string{VISGivenDate: "today"}, nil},
		{"san-joaquin-region", Error, SiteID, "RXA-11.4", map[Col]string{SiteID: "SJ01"}, &sj},
		{"too-long", Error, LotNumber, "RXA-15", map[Col]string{LotNumber: strings.Repeat("L", 21)}, nil},
		{"too-long", Error, VaccineName, "RXA-5.2", map[Col]string{VaccineName: strings.Repeat("x", 5<<20)}, nil},
		{"too-long", Error, PatientLastName, "PID-5.1", map[Col]string{PatientLastName: strings.Repeat("Ñ", 51)}, nil},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.col.Name(), func(t *testing.T) {
			opt := testOptions()
			if c.opt != nil {
				opt = *c.opt
			}
			// The rule's row is the third line: a valid other patient comes first.
			ms := readAll(t, writeCSV(t, map[Col]string{PatientID: "P0", VaccinationID: "V0"}, c.row), opt)
			if len(ms) != 2 {
				t.Fatalf("%d messages", len(ms))
			}
			if !ms[0].Records[0].Valid() {
				t.Fatalf("unrelated record affected: %v", ms[0].Records[0].Problems)
			}
			rec := ms[1].Records[0]
			var found *Problem
			for i, p := range rec.Problems {
				if p.Rule == c.rule && p.Column == c.col.Name() {
					found = &rec.Problems[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s on %s; got %v", c.rule, c.col.Name(), rec.Problems)
			}
			if found.Severity != c.sev || found.Field != c.field || found.Line != 3 || found.File != "in.csv" || found.Text == "" {
				t.Errorf("problem = %+v, want severity %s field %s line 3", *found, c.sev, c.field)
			}
			if rec.Valid() != (c.sev == Warning) {
				t.Errorf("Valid() = %v with problems %v", rec.Valid(), rec.Problems)
			}
			for _, p := range rec.Problems {
				if strings.Contains(p.Text, "Rivera") || strings.Contains(p.Text, "510") || strings.Contains(p.Text, "2020-05-01") {
					t.Errorf("problem text echoes patient data: %q", p.Text)
				}
			}
		})
	}
}

func TestInvalidRecordIsNotSentButTheRestIs(t *testing.T) {
	path := writeCSV(t,
		map[Col]string{VaccinationID: "V1"},
		map[Col]string{VaccinationID: "V2", LotNumber: ""},
		map[Col]string{VaccinationID: "V3", CVXCode: "03", MVXCode: "MSD"},
	)
	ms := readAll(t, path, testOptions())
	if len(ms) != 1 || len(ms[0].Records) != 3 {
		t.Fatalf("want one message of three records, got %d", len(ms))
	}
	send := ms[0].Sendable()
	if len(send) != 2 || send[0].VaccinationID != "V1" || send[1].VaccinationID != "V3" {
		t.Fatalf("sendable = %v", send)
	}
	vxu := string(ms[0].Encode(newEnc(), Header{ControlID: "C1", Time: testNow}, send))
	if !strings.Contains(vxu, "V1^") || !strings.Contains(vxu, "V3^") || strings.Contains(vxu, "V2^") {
		t.Errorf("encoded message has the wrong doses:\n%s", vxu)
	}
	if strings.Count(vxu, "\rRXA|") != 2 {
		t.Errorf("want 2 RXA:\n%s", vxu)
	}
}

func TestPatientProblemInvalidatesTheWholeGroup(t *testing.T) {
	ms := readAll(t, writeCSV(t,
		map[Col]string{VaccinationID: "V1", PatientBirthDate: "2099-01-01"},
		map[Col]string{VaccinationID: "V2", PatientBirthDate: "2099-01-01"},
	), testOptions())
	for _, r := range ms[0].Records {
		if r.Valid() {
			t.Errorf("line %d valid despite the patient's bad birth date", r.Line)
		}
	}
}

func TestPatientDataDiffersIsAWarningOnThatRow(t *testing.T) {
	ms := readAll(t, writeCSV(t,
		map[Col]string{VaccinationID: "V1"},
		map[Col]string{VaccinationID: "V2", Phone: "510-555-0199"},
	), testOptions())
	r := ms[0].Records[1]
	if len(r.Problems) != 1 || r.Problems[0].Rule != "patient-data-differs" || r.Problems[0].Line != 3 || r.Problems[0].Column != "phone" || !r.Valid() {
		t.Fatalf("problems = %v", r.Problems)
	}
}

func TestGrouping(t *testing.T) {
	opt := testOptions()
	opt.MaxDoses = 3
	ms := readAll(t, writeCSV(t,
		map[Col]string{PatientID: "A", VaccinationID: "1"},
		map[Col]string{PatientID: "A", VaccinationID: "2"},
		map[Col]string{PatientID: "B", VaccinationID: "3"},
		map[Col]string{PatientID: "A", VaccinationID: "4"},                   // not consecutive: a new message
		map[Col]string{PatientID: "A", VaccinationID: "4", Action: "U"},      // same dose again: a new message after it
		map[Col]string{PatientID: "A", VaccinationID: "5", SiteID: "OTHER1"}, // another site: a new message
		map[Col]string{PatientID: "C", VaccinationID: "6"},
		map[Col]string{PatientID: "C", VaccinationID: "7"},
		map[Col]string{PatientID: "C", VaccinationID: "8"},
		map[Col]string{PatientID: "C", VaccinationID: "9"}, // over MaxDoses
	), opt)
	var got []string
	for _, m := range ms {
		var ids []string
		for _, r := range m.Records {
			ids = append(ids, r.VaccinationID)
		}
		got = append(got, m.PatientID+"@"+m.SiteID+":"+strings.Join(ids, ","))
	}
	want := "A@DEMO01:1,2 B@DEMO01:3 A@DEMO01:4 A@DEMO01:4 A@OTHER1:5 C@DEMO01:6,7,8 C@DEMO01:9"
	if strings.Join(got, " ") != want {
		t.Errorf("groups:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	for i, m := range ms {
		if m.Seq != i+1 {
			t.Errorf("message %d has Seq %d", i, m.Seq)
		}
	}
	vxu := string(ms[4].Encode(newEnc(), Header{ControlID: "C", Time: testNow}, ms[4].Sendable()))
	if !strings.Contains(vxu, "|OTHER1\r") || !strings.Contains(vxu, "^^^OTHER1|") {
		t.Errorf("record's site_id not used for MSH-22 and RXA-11.4:\n%s", vxu)
	}
}

func TestCSVSyntaxErrorIsOneInvalidRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.csv")
	good := strings.Join(rowValues(nil), ",")
	bad := strings.Join(rowValues(map[Col]string{VaccinationID: "V9"}), ",")
	bad = strings.Replace(bad, "Rivera", `Riv"era`, 1)
	os.WriteFile(path, []byte(strings.Join(headerNames(), ",")+"\n"+good+"\n"+bad+"\n"+strings.Replace(good, "V1", "V2", 1)+"\n"), 0o600)
	ms := readAll(t, path, testOptions())
	var rules []string
	for _, m := range ms {
		for _, r := range m.Records {
			for _, p := range r.Problems {
				rules = append(rules, p.Rule)
				if p.Rule == "csv-syntax" && (p.Line != 3 || !strings.Contains(p.Text, "line 3")) {
					t.Errorf("syntax problem = %+v", p)
				}
			}
		}
	}
	if len(ms) != 3 || strings.Join(rules, ",") != "csv-syntax" {
		t.Fatalf("messages %d, rules %v", len(ms), rules)
	}
	if !ms[2].Records[0].Valid() || ms[2].Records[0].VaccinationID != "V2" {
		t.Errorf("the row after the broken one was not read")
	}
	// The broken row is kept, as written, for the rejects file.
	var raw []string
	sent := false
	RawRows(path, testOptions(), func() (int64, int64, bool) {
		if sent {
			return 0, 0, false
		}
		sent = true
		return ms[1].Records[0].Start, ms[1].Records[0].End, true
	}, func(b []byte) error {
		raw = append(raw, string(b))
		return nil
	})
	if len(raw) != 1 || raw[0] != bad {
		t.Errorf("raw = %q, want %q", raw, bad)
	}
}

func TestFileLevelErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	header := []byte(strings.Join(headerNames(), ","))
	row := []byte(strings.Join(rowValues(nil), ","))
	latin := append(append(append([]byte{}, header...), '\n'), []byte(strings.Replace(string(row), "Rivera", "Rivera\xe9", 1))...)
	cases := []struct {
		name, reason string
		offset       int64
		data         []byte
	}{
		{"latin1.csv", "not valid UTF-8", int64(len(header) + 1 + strings.Index(string(row), "Rivera") + 6), latin},
		{"noheader.csv", "no header row", -1, row},
		{"missing.csv", "lacks required column(s) cvx", -1, []byte(strings.Replace(string(header), ",cvx,", ",cvx_code,", 1) + "\n" + string(row))},
		{"dup.csv", "twice", -1, []byte(strings.Replace(string(header), "vaccine_name", "cvx", 1) + "\n")},
		{"binary.csv", "this is a ZIP archive, not a text export izdrop reads (an .xlsx", -1, []byte{0x50, 0x4b, 0x03, 0x04, 0xff, 0x00}},
		{"image.csv", "this is a PNG image", -1, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
		{"report.csv", "this is a PDF document", -1, []byte("%PDF-1.7\n%...")},
		{"utf16.csv", "this is UTF-16 text, not a text export izdrop reads (save the export as UTF-8", -1, append([]byte{0xff, 0xfe}, utf16(string(header))...)},
		{"utf16-nobom.csv", "UTF-16 text or binary data", -1, utf16(string(header))},
		{"nul.csv", "binary data (a zero byte at offset 3)", -1, []byte("abc\x00def,ghi\n")},
		{"semicolon.csv", `seems to be delimited by ";": set delimiter = ";"`, -1, []byte(strings.ReplaceAll(string(header), ",", ";") + "\n")},
		{"tabs.csv", `delimited by "\t" (tab): set delimiter = "\t"`, -1, []byte(strings.ReplaceAll(string(header), ",", "\t") + "\n")},
	}
	for _, c := range cases {
		_, err := Open(write(c.name, c.data), testOptions())
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want *FileError", c.name, err)
			continue
		}
		if !strings.Contains(fe.Error(), c.reason) || fe.File != c.name || fe.Offset != c.offset {
			t.Errorf("%s: %q (offset %d), want %q at %d", c.name, fe.Error(), fe.Offset, c.reason, c.offset)
		}
	}
	// The same Windows-1252 file is read when the profile says so, and a BOM
	// is skipped.
	opt := testOptions()
	opt.Profile.Encoding = "windows-1252"
	ms := readAll(t, write("latin1.csv", latin), opt)
	if got := ms[0].patient.Get(PatientLastName); got != "Rivera\u00e9" {
		t.Errorf("windows-1252 name = %q", got)
	}
	ms = readAll(t, write("bom.csv", append([]byte("\xef\xbb\xbf"), append(append(header, '\n'), row...)...)), testOptions())
	if len(ms) != 1 || !ms[0].Records[0].Valid() {
		t.Errorf("BOM file: %v", ms)
	}
}

func TestProfileMappingAndUnknownColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(path, []byte("MRN\tLast\tFirst\tDOB\tGender\tShot\tWhen\tCVX\tMfr\tLot\tVFC\tFavourite Colour\n"+
		"7\tLee\tKim\t20190501\tFemale\tS1\t20261001\t08\tMSD\tL1\tV01\tblue\n"), 0o600)
	opt := testOptions()
	opt.Profile = Profile{Name: "tabbed", Delimiter: '\t', DateFormat: "YYYYMMDD",
		Columns: map[string]string{"patient_id": "mrn", "patient_last_name": "Last", "patient_first_name": "First",
			"patient_birth_date": "DOB", "patient_sex": "Gender", "vaccination_id": "Shot", "admin_date": "When",
			"mvx": "Mfr", "lot_number": "Lot", "vfc_eligibility": "VFC"},
		Values: map[string]map[string]string{"patient_sex": {"FEMALE": "F"}}}
	if err := opt.Profile.Validate(opt.Codes); err != nil && opt.Codes != nil {
		t.Fatal(err)
	}
	r, err := Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if fp := r.FileProblems(); len(fp) != 1 || fp[0].Rule != "unknown-columns" || !strings.Contains(fp[0].Text, "Favourite Colour") {
		t.Errorf("file problems = %v", fp)
	}
	m, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	rec := m.Records[0]
	for _, p := range rec.Errors() {
		t.Errorf("unexpected error %v", p)
	}
	if rec.Row.Get(PatientSex) != "F" || rec.Row.Get(PatientBirthDate) != "20190501" {
		t.Errorf("sex %q birth %q", rec.Row.Get(PatientSex), rec.Row.Get(PatientBirthDate))
	}
	// A pinned date format refuses the others.
	opt.Profile.DateFormat = "MM/DD/YYYY"
	ms := readAll(t, path, opt)
	if ms[0].Records[0].Valid() {
		t.Errorf("YYYYMMDD accepted under a pinned MM/DD/YYYY")
	}
}

func TestProfileAndSiteValidate(t *testing.T) {
	cs := testOptionsCodes()
	bad := Profile{Name: "p", Columns: map[string]string{"nope": "x", "cvx": "A", "mvx": "a"}, Delimiter: ':', Encoding: "latin9", DateFormat: "DD.MM.YYYY", IDType: "ZZ", NamePolicy: "drop"}
	err := bad.Validate(cs)
	for _, want := range []string{`"nope"`, `both map to header`, `delimiter`, `encoding`, `date_format`, `id_type`, `name_policy`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("profile error lacks %s: %v", want, err)
		}
	}
	if err := (Site{ID: "S1", Region: "CAIRCV", County: "Stanislaus"}).Validate(cs, true); err == nil || !strings.Contains(err.Error(), "San Joaquin region") {
		t.Errorf("San Joaquin county accepted for CAIR2: %v", err)
	}
	if err := (Site{ID: "S1", Region: "CAIRCV", County: "06099"}).Validate(cs, false); err != nil {
		t.Errorf("San Joaquin county refused for its regional registry: %v", err)
	}
	if err := (Site{ID: "S1", Region: "CAIRLO", County: "Los Angeles"}).Validate(cs, true); err != nil {
		t.Error(err)
	}
	if err := (Site{Region: "LA", County: "Atlantis"}).Validate(cs, true); err == nil || !strings.Contains(err.Error(), "id") || !strings.Contains(err.Error(), "region") || !strings.Contains(err.Error(), "Atlantis") {
		t.Errorf("site errors: %v", err)
	}
}

func TestNPICheckDigit(t *testing.T) {
	for n, ok := range map[string]bool{"1234567893": true, "1987654328": true, "1234567890": false, "123456789": false, "12345678a3": false} {
		if validNPI(n) != ok {
			t.Errorf("validNPI(%s) != %v", n, ok)
		}
	}
}

func utf16(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), 0)
	}
	return b
}

// What used to read wrong now reads, or says plainly why not.
func TestAwkwardFilesReadOrSayWhy(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	header := strings.Join(headerNames(), ",")
	row := func(vid string) string { return strings.Join(rowValues(map[Col]string{VaccinationID: vid}), ",") }

	// Lines that end in CR alone are read as lines, with a warning.
	ms := readAll(t, write("cr.csv", []byte(header+"\r"+row("V1")+"\r"+row("V2")+"\r")), testOptions())
	if len(ms) != 1 || len(ms[0].Records) != 2 || !ms[0].Records[1].Valid() || ms[0].Records[1].Line != 3 {
		t.Fatalf("CR line ends: %d messages", len(ms))
	}
	r, _ := Open(filepath.Join(dir, "cr.csv"), testOptions())
	if ps := r.FileProblems(); len(ps) != 1 || ps[0].Rule != "cr-line-ends" {
		t.Errorf("CR file problems: %v", ps)
	}
	r.Close()
	var raw []string
	recs := ms[0].Records
	i := 0
	if err := RawRows(filepath.Join(dir, "cr.csv"), testOptions(), func() (int64, int64, bool) {
		if i == len(recs) {
			return 0, 0, false
		}
		i++
		return recs[i-1].Start, recs[i-1].End, true
	}, func(b []byte) error { raw = append(raw, string(b)); return nil }); err != nil || len(raw) != 2 || raw[1] != row("V2") {
		t.Errorf("raw rows of a CR file: %q %v", raw, err)
	}

	// A quote never closed: the error says where it opened and how many
	// lines were swallowed.
	lines := []string{header, row("V1"), strings.Replace(row("V2"), "Rivera", "\"Rivera", 1)}
	for k := 3; k < 1000; k++ {
		lines = append(lines, row(fmt.Sprintf("V%d", k)))
	}
	ms = readAll(t, write("quote.csv", []byte(strings.Join(lines, "\n")+"\n")), testOptions())
	last := ms[len(ms)-1].Records[0]
	if last.Valid() || last.Line != 3 || !strings.Contains(last.Problems[0].Text, "opened at line 3") || !strings.Contains(last.Problems[0].Text, "997 line(s) after it") {
		t.Errorf("unclosed quote: line %d: %v", last.Line, last.Problems)
	}

	// An empty file and a header-only file hold no records: not an error.
	for name, b := range map[string][]byte{"empty.csv": nil, "header.csv": []byte(header + "\n")} {
		r, err := Open(write(name, b), testOptions())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Errorf("%s: %v, want EOF", name, err)
		}
		if name == "empty.csv" && (len(r.FileProblems()) != 1 || r.FileProblems()[0].Rule != "empty-file") {
			t.Errorf("empty file problems: %v", r.FileProblems())
		}
		r.Close()
	}
}
