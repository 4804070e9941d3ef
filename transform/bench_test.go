package transform

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// GenerateCSV writes rows valid records in the default layout: patients of
// one to three doses each, as a clinic's daily export looks.
func generateCSV(w io.Writer, rows int) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := csv.NewWriter(bw)
	cw.Write(headerNames())
	vaccines := [][2]string{{"08", "MSD"}, {"20", "SKB"}, {"10", "PMC"}, {"133", "PFR"}, {"03", "MSD"}, {"116", "MSD"}, {"150", "SKB"}, {"115", "PMC"}}
	p, dose := 0, 0
	for i := 0; i < rows; i++ {
		if dose == 0 {
			p++
			dose = 1 + p%3
		}
		dose--
		v := vaccines[i%len(vaccines)]
		cw.Write(rowValues(map[Col]string{
			PatientID: fmt.Sprintf("MRN%08d", p), PatientLastName: lastNames[p%len(lastNames)], PatientFirstName: firstNames[p%len(firstNames)],
			PatientBirthDate: fmt.Sprintf("20%02d-%02d-%02d", 10+p%14, 1+p%12, 1+p%28),
			VaccinationID:    fmt.Sprintf("V%09d", i), CVXCode: v[0], MVXCode: v[1], LotNumber: fmt.Sprintf("L%06d", i%99991),
			Phone: fmt.Sprintf("415-555-%04d", p%10000), AddressStreet: fmt.Sprintf("%d Market St", p%900+1),
		}))
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

var lastNames = []string{"Garcia", "Nguyen", "Smith", "O'Brien", "Kim", "Hernandez-Lopez", "Patel", "Johnson"}
var firstNames = []string{"Ana", "Bao", "Chris", "Dana", "Eli", "Fatima", "Grace", "Hiro"}

var (
	benchOnce sync.Once
	benchPath string
)

// TestMain removes the benchmark's generated file when the run ends.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchPath != "" {
		os.RemoveAll(filepath.Dir(benchPath))
	}
	os.Exit(code)
}

const benchRows = 100_000

func benchFile(b *testing.B) string {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp("", "izdrop-bench-")
		if err != nil {
			b.Fatal(err)
		}
		benchPath = filepath.Join(dir, "100k.csv")
		f, err := os.Create(benchPath)
		if err != nil {
			b.Fatal(err)
		}
		if err := generateCSV(f, benchRows); err != nil {
			b.Fatal(err)
		}
		f.Close()
	})
	return benchPath
}

// BenchmarkTransform reads, validates and encodes every message of a 100k
// row file: the work transform does before anything is sent.
func BenchmarkTransform(b *testing.B) {
	path := benchFile(b)
	opt := testOptions()
	enc := newEnc()
	b.ResetTimer()
	var records, bytes int
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
			bytes += len(m.Encode(enc, Header{ControlID: "BENCH", Time: testNow}, send))
			records += len(m.Records)
		}
		r.Close()
	}
	b.StopTimer()
	if records != benchRows*b.N {
		b.Fatalf("read %d records, want %d", records, benchRows*b.N)
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(bytes)/float64(records), "hl7-bytes/record")
}

// BenchmarkCSVRead only reads the same file with encoding/csv: the floor
// BenchmarkTransform is compared with.
func BenchmarkCSVRead(b *testing.B) {
	path := benchFile(b)
	b.ResetTimer()
	records := 0
	for i := 0; i < b.N; i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		c := csv.NewReader(bufio.NewReaderSize(f, 64*1024))
		c.ReuseRecord = true
		c.FieldsPerRecord = -1
		if _, err := c.Read(); err != nil {
			b.Fatal(err)
		}
		for {
			_, err := c.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records++
		}
		f.Close()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

// TestReadingIsFlatInMemory reads a file ten times longer than another and
// checks the live heap does not grow with it: records are streamed, never
// collected.
func TestReadingIsFlatInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 300k rows")
	}
	peak := func(rows int) uint64 {
		path := filepath.Join(t.TempDir(), "m.csv")
		f, _ := os.Create(path)
		generateCSV(f, rows)
		f.Close()
		r, err := Open(path, testOptions())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		enc := newEnc()
		var max uint64
		var ms runtime.MemStats
		for n := 0; ; n++ {
			m, err := r.Next()
			if err == io.EOF {
				break
			}
			m.Encode(enc, Header{ControlID: "X", Time: testNow}, m.Sendable())
			if n%5000 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > max {
					max = ms.HeapAlloc
				}
			}
		}
		return max
	}
	small, large := peak(30_000), peak(300_000)
	t.Logf("live heap: 30k rows %d KiB, 300k rows %d KiB", small/1024, large/1024)
	if large > small+4<<20 {
		t.Errorf("live heap grew from %d to %d KiB for a 10x longer file", small/1024, large/1024)
	}
}

// BenchmarkEncodeOnly encodes already-read messages: the encoder alone.
func BenchmarkEncodeOnly(b *testing.B) {
	path := benchFile(b)
	r, _ := Open(path, testOptions())
	var ms []*Message
	for i := 0; i < 2000; i++ {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		ms = append(ms, m)
	}
	enc := newEnc()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		m := ms[i%len(ms)]
		n += len(m.Encode(enc, Header{ControlID: "X", Time: testNow}, m.Records))
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkCSVReaderOwn reads the benchmark file with transform's own CSV
// reader only, to compare with BenchmarkCSVRead (encoding/csv).
func BenchmarkCSVReaderOwn(b *testing.B) {
	path := benchFile(b)
	b.ResetTimer()
	records := 0
	for i := 0; i < b.N; i++ {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		c := newCSVReader(f, ',')
		for {
			_, err := c.read()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			records++
		}
		f.Close()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
