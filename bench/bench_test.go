package bench_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/bench"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/service"
)

// TestMain makes the test binary the pipeline too: started with
// IZDROP_BENCH_CHILD set to a config file, it runs the service once on it,
// as `izdrop run --once` does, and exits 0, 1 (some records failed) or 3.
func TestMain(m *testing.M) {
	if cfg := os.Getenv("IZDROP_BENCH_CHILD"); cfg != "" {
		os.Exit(child(cfg))
	}
	os.Exit(m.Run())
}

func child(path string) int {
	c, err := config.Load(path)
	if err != nil {
		return 2
	}
	s, err := service.New(c, service.Options{Log: zerolog.New(os.Stderr).Level(zerolog.WarnLevel), Version: "bench-test"})
	if err != nil {
		return 4
	}
	defer s.Close()
	sum, err := s.RunOnce(context.Background())
	switch {
	case err != nil:
		return 4
	case sum.Pending > 0:
		return 3
	case sum.Failed > 0:
		return 1
	}
	return 0
}

func selfCommand(config string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IZDROP_BENCH_CHILD="+config)
	return cmd
}

// A bench runs the pipeline once per concurrency against its own sandbox
// and accounts for every record of the export: each has an outcome, the
// invalid ones are those the export made invalid, the registry got each
// patient's messages in file order, one connection per slot.
func TestMeasureRunsThePipelinePerConcurrency(t *testing.T) {
	var progress bytes.Buffer
	rep, err := bench.Measure(context.Background(), bench.Options{Rows: 600, Concurrency: []int{1, 4}, Latency: time.Millisecond,
		ConnectDelay: 20 * time.Millisecond, Command: selfCommand, Progress: &progress, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.Export
	if e.Records != 600 || e.Invalid == 0 || e.Historical == 0 || e.Refusals == 0 || e.Later == 0 || e.Administered+e.Historical+e.Refusals+e.Invalid != 600 {
		t.Errorf("export %+v", e)
	}
	if rep.TransformRate <= 0 || len(rep.Runs) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Runs {
		if r.Outcomes["invalid"] != e.Invalid || r.Outcomes["accepted"]+r.Outcomes["accepted_with_warnings"] != 600-e.Invalid {
			t.Errorf("concurrency %d: outcomes %v (%d invalid in the export)", r.Concurrency, r.Outcomes, e.Invalid)
		}
		if r.OrderInversions != 0 || r.ExitStatus != 1 || r.Messages == 0 || r.Calls < r.Messages {
			t.Errorf("concurrency %d: %+v", r.Concurrency, r)
		}
		// The plain client posted the same messages: its rate is measured
		// as the pipeline's is, and compared.
		if r.PlainRate <= 0 || math.Abs(r.VsPlain-r.MessageRate/r.PlainRate) > 1e-9 {
			t.Errorf("concurrency %d: plain client %.0f msgs/s, vs plain %.3f", r.Concurrency, r.PlainRate, r.VsPlain)
		}
		// On Linux the process's own memory is sampled too: some, and
		// less than its RSS, which adds the executable's mapped pages.
		if runtime.GOOS == "linux" && (r.PeakAnon <= 0 || r.PeakAnon >= r.PeakRSS) {
			t.Errorf("concurrency %d: peak anon %d bytes, peak RSS %d", r.Concurrency, r.PeakAnon, r.PeakRSS)
		}
		if r.Connections < 1 || r.Connections > int64(r.Concurrency)+1 {
			t.Errorf("concurrency %d: %d connections", r.Concurrency, r.Connections)
		}
		// The calls that opened a connection waited 20 ms more: more than
		// 1% of the calls at 4 in flight, so p99 shows it.
		if r.P99 < 20*time.Millisecond && float64(r.Connections) > 0.011*float64(r.Calls) || r.P50 >= 20*time.Millisecond || r.CPU <= 0 || r.JournalPerRec <= 0 || r.Rate <= 0 || r.IdealPercent <= 0 {
			t.Errorf("concurrency %d: p50 %v p99 %v, cpu %v, %.0f B/record, %.0f records/s, %.1f%% of ideal", r.Concurrency, r.P50, r.P99, r.CPU, r.JournalPerRec, r.Rate, r.IdealPercent)
		}
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if lines := strings.Split(strings.TrimSpace(table.String()), "\n"); len(lines) != 7 || !strings.HasPrefix(strings.TrimSpace(lines[5]), "1 ") || !strings.Contains(lines[5], "x ") {
		t.Errorf("table:\n%s", table.String())
	}
}

// The export has the default layout's header and the shares asked for,
// and a seed gives the same file.
func TestExportIsRealisticAndRepeatable(t *testing.T) {
	var a, b bytes.Buffer
	today := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st, err := bench.Export(&a, 5000, 0.05, 7, today)
	if err != nil {
		t.Fatal(err)
	}
	bench.Export(&b, 5000, 0.05, 7, today)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same seed gave another export")
	}
	rows, err := csv.NewReader(&a).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5001 || rows[0][0] != "patient_id" || rows[0][16] != "vaccination_id" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	if share := float64(st.Invalid) / 5000; share < 0.03 || share > 0.07 {
		t.Errorf("invalid share %.3f", share)
	}
	if st.Patients < 1000 || st.Later < 100 {
		t.Errorf("export %+v", st)
	}
}
