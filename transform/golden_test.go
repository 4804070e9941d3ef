package transform

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// la is the registry's zone; tests pin it so that goldens do not depend on
// the machine.
var la = func() *time.Location {
	l, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return time.FixedZone("PST", -8*3600)
	}
	return l
}()

var testNow = time.Date(2026, 11, 25, 9, 30, 0, 0, la)

func testOptions() Options {
	return Options{
		Site:        Site{ID: "DEMO01", SendingFacility: "DEMOORG", Region: "CAIRBA", County: "San Francisco"},
		Now:         func() time.Time { return testNow },
		Location:    la,
		FileDate:    time.Date(2026, 11, 24, 0, 0, 0, 0, la),
		Application: "izdrop",
	}
}

// acmeProfile is the profile config.toml ships for examples/acme-ehr-export.txt.
var acmeProfile = Profile{
	Name: "acme",
	Columns: map[string]string{
		"patient_id": "MRN", "patient_last_name": "Last", "patient_first_name": "First",
		"patient_birth_date": "DOB", "patient_sex": "Gender", "vaccination_id": "Shot ID",
		"admin_date": "Given On", "cvx": "CVX Code", "mvx": "Mfr", "lot_number": "Lot",
		"dose_ml": "Dose", "vfc_eligibility": "VFC", "route": "Route", "body_site": "Site", "phone": "Phone Number",
	},
	Values:     map[string]map[string]string{"patient_sex": {"Female": "F", "Male": "M"}},
	Delimiter:  '|',
	DateFormat: "MM/DD/YYYY",
}

// hl7Profile and fhirProfile are the profiles config.toml ships for the
// HL7 and FHIR examples.
var (
	hl7Profile  = Profile{Name: "hl7", Format: FormatHL7}
	fhirProfile = Profile{Name: "fhir", Format: FormatFHIR}
)

func TestGoldenExamples(t *testing.T) {
	examples, err := filepath.Glob("../examples/*")
	if err != nil || len(examples) < 9 {
		t.Fatalf("examples: %v %v", examples, err)
	}
	for _, ex := range examples {
		name := filepath.Base(ex)
		if strings.HasSuffix(name, ".vxu.hl7") || strings.HasSuffix(name, ".report.json") {
			continue // what `izdrop validate examples/...` (the README's step) writes beside them
		}
		partner, data, paired := Partner(name)
		if paired && !data {
			// The Patient file of a FHIR pair is read with its
			// Immunization file.
			if _, err := os.Stat(filepath.Join("../examples", partner)); err != nil {
				t.Errorf("%s has no partner %s in examples/", name, partner)
			}
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, name)
			b, err := os.ReadFile(ex)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(in, b, 0o600)
			opt := testOptions()
			switch {
			case strings.HasPrefix(name, "acme"):
				opt.Profile = acmeProfile
			case strings.HasSuffix(name, ".hl7"):
				opt.Profile = hl7Profile
			case paired:
				opt.Profile = fhirProfile
				b, err := os.ReadFile(filepath.Join("../examples", partner))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, partner), b, 0o600)
			}
			var out bytes.Buffer
			rep, err := DryRun(in, opt, &out)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Error != "" {
				t.Fatalf("example unreadable: %s", rep.Error)
			}
			stem := strings.TrimSuffix(name, filepath.Ext(name))
			for _, suffix := range []string{".vxu.hl7", ".report.json"} {
				got, err := os.ReadFile(filepath.Join(dir, stem+suffix))
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", "golden", stem+suffix)
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./transform -run Golden -update, then review the diff)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s:\n%s", stem+suffix, golden, firstDiff(got, want))
				}
			}
			// Only the deliberately bad example has invalid records.
			if (rep.Invalid > 0) != strings.HasPrefix(name, "mixed") {
				t.Errorf("%d invalid records:\n%s", rep.Invalid, out.String())
			}
		})
	}
}

func firstDiff(a, b []byte) string {
	al := strings.Split(strings.ReplaceAll(string(a), "\r", "\n"), "\n")
	bl := strings.Split(strings.ReplaceAll(string(b), "\r", "\n"), "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "got:  " + x + "\nwant: " + y
		}
	}
	return ""
}
