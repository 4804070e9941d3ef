//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchCommandMeasuresTheRealPipeline runs `izdrop bench`, which runs
// `izdrop run --once` (this binary) against its sandbox, and reads its
// JSON: every record has an outcome, in patient order.
func TestBenchCommandMeasuresTheRealPipeline(t *testing.T) {
	cmd := exec.Command(izdrop(t), "bench", "-rows", "400", "-latency", "1ms", "-concurrency", "1,3", "-json")
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	var rep struct {
		Export struct{ Records, Invalid int }
		Runs   []struct {
			Concurrency     int            `json:"concurrency"`
			Outcomes        map[string]int `json:"outcomes"`
			OrderInversions int            `json:"order_inversions"`
			PeakRSS         int64          `json:"peak_rss_bytes"`
			JournalPerRec   float64        `json:"journal_bytes_per_record"`
			Connections     int64          `json:"new_connections"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Export.Records != 400 || len(rep.Runs) != 2 || rep.Runs[1].Concurrency != 3 {
		t.Fatalf("%s", out.String())
	}
	for _, r := range rep.Runs {
		total := 0
		for _, n := range r.Outcomes {
			total += n
		}
		if total != 400 || r.Outcomes["invalid"] != rep.Export.Invalid || r.OrderInversions != 0 || r.PeakRSS <= 0 || r.JournalPerRec <= 0 || r.Connections > int64(r.Concurrency)+1 {
			t.Errorf("run %+v", r)
		}
	}
	if !strings.Contains(errs.String(), "transform only:") {
		t.Errorf("no progress on stderr: %s", errs.String())
	}
}
