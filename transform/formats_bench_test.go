package transform

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var (
	formatsOnce              sync.Once
	benchHL7Path, benchFHIRs string
)

// benchFormats writes the benchmark's records (benchFile) again as an HL7
// batch - izdrop's own VXUs of them inside FHS/BHS, segments ending in CR -
// and as a FHIR NDJSON pair, beside the CSV file (TestMain removes them).
func benchFormats(b *testing.B) (hl7Path, fhirPath string) {
	csvPath := benchFile(b)
	formatsOnce.Do(func() {
		dir := filepath.Dir(csvPath)
		benchHL7Path = filepath.Join(dir, "100k.hl7")
		benchFHIRs = filepath.Join(dir, "100k-Immunization.ndjson")
		hf, _ := os.Create(benchHL7Path)
		pf, _ := os.Create(filepath.Join(dir, "100k-Patient.ndjson"))
		imf, _ := os.Create(benchFHIRs)
		hw, pw, iw := bufio.NewWriterSize(hf, 1<<16), bufio.NewWriterSize(pf, 1<<16), bufio.NewWriterSize(imf, 1<<16)
		r, err := Open(csvPath, testOptions())
		if err != nil {
			b.Fatal(err)
		}
		enc := newEnc()
		hw.WriteString("FHS|^~\\&|bench|DEMOORG\rBHS|^~\\&|bench|DEMOORG\r")
		n := 0
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
			hw.Write(m.Encode(enc, Header{ControlID: fmt.Sprintf("B%d", m.Seq), Time: testNow}, m.Records))
			writeFHIR(pw, iw, m)
		}
		r.Close()
		fmt.Fprintf(hw, "BTS|%d\rFTS|1\r", n)
		for _, w := range []*bufio.Writer{hw, pw, iw} {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
		hf.Close()
		pf.Close()
		imf.Close()
	})
	return benchHL7Path, benchFHIRs
}

func isoOf(yyyymmdd string) string {
	if len(yyyymmdd) != 8 {
		return yyyymmdd
	}
	return yyyymmdd[:4] + "-" + yyyymmdd[4:6] + "-" + yyyymmdd[6:]
}

// writeFHIR writes a message's patient and doses as FHIR resources, the way
// a bulk export has them.
func writeFHIR(pw, iw io.Writer, m *Message) {
	p := m.patient
	pid := "pt-" + p.Get(PatientID)
	fmt.Fprintf(pw, `{"resourceType":"Patient","id":%q,"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"value":%q}],`+
		`"name":[{"use":"official","family":%q,"given":[%q]}],"gender":"female","birthDate":%q,"telecom":[{"system":"phone","value":%q}],`+
		`"address":[{"use":"home","line":[%q],"city":%q,"state":%q,"postalCode":%q}],`+
		`"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory","valueCoding":{"code":%q}}]},`+
		`{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity","extension":[{"url":"ombCategory","valueCoding":{"code":%q}}]}]}`+"\n",
		pid, p.Get(PatientID), p.Get(PatientLastName), p.Get(PatientFirstName), isoOf(p.Get(PatientBirthDate)), p.Get(Phone),
		p.Get(AddressStreet), p.Get(AddressCity), p.Get(AddressState), p.Get(AddressZip), p.Get(Race), p.Get(Ethnicity))
	for _, rec := range m.Records {
		r := &rec.Row
		fmt.Fprintf(iw, `{"resourceType":"Immunization","id":%q,"identifier":[{"system":"https://ehr.example/imm","value":%q}],"status":"completed",`+
			`"vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":%q}]},"patient":{"reference":"Patient/%s"},`+
			`"occurrenceDateTime":"%sT10:00:00-07:00","primarySource":true,"manufacturer":{"identifier":{"system":"http://hl7.org/fhir/sid/mvx","value":%q}},`+
			`"lotNumber":%q,"expirationDate":%q,"site":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActSite","code":%q}]},`+
			`"route":{"coding":[{"system":"http://ncithesaurus-stage.nci.nih.gov","code":%q}]},"doseQuantity":{"value":%s,"unit":"mL"},`+
			`"contained":[{"resourceType":"Practitioner","id":"ap","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":%q}],"name":[{"family":%q}]}],`+
			`"performer":[{"function":{"coding":[{"code":"AP"}]},"actor":{"reference":"#ap"}}],`+
			`"programEligibility":[{"coding":[{"code":%q}]}],"fundingSource":{"coding":[{"code":%q}]}}`+"\n",
			"imm-"+r.Get(VaccinationID), r.Get(VaccinationID), r.Get(CVXCode), pid, isoOf(r.Get(AdminDate)), r.Get(MVXCode),
			r.Get(LotNumber), isoOf(r.Get(LotExpiration)), r.Get(BodySite), r.Get(Route), r.Get(DoseML),
			r.Get(AdministeredByNPI), r.Get(AdministeredByLastName), r.Get(VFCEligibility), r.Get(FundingSource))
	}
}

// benchRead reads, validates and encodes every message of path, as
// BenchmarkTransform does for the CSV file.
func benchRead(b *testing.B, path string, opt Options) {
	enc := newEnc()
	b.ResetTimer()
	var records int
	for i := 0; i < b.N; i++ {
		r, err := Open(path, opt)
		if err != nil {
			b.Fatal(err)
		}
		for {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			send := m.Sendable()
			if len(send) != len(m.Records) {
				b.Fatalf("invalid record in generated data: %v", m.Records[0].Problems)
			}
			m.Encode(enc, Header{ControlID: "BENCH", Time: testNow}, send)
			records += len(m.Records)
		}
		r.Close()
	}
	b.StopTimer()
	if records != benchRows*b.N {
		b.Fatalf("read %d records, want %d", records, benchRows*b.N)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkTransformHL7 is BenchmarkTransform for the same 100k records
// given as an HL7 batch.
func BenchmarkTransformHL7(b *testing.B) {
	path, _ := benchFormats(b)
	benchRead(b, path, hl7Options())
}

// BenchmarkTransformFHIR is BenchmarkTransform for the same 100k records
// given as a FHIR NDJSON pair.
func BenchmarkTransformFHIR(b *testing.B) {
	_, path := benchFormats(b)
	benchRead(b, path, fhirOptions())
}
