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

// BenchmarkRunOnce is the whole path for one file of 5000 records (2500
// patients, 2500 messages) against the in-process sandbox on loopback:
// read, check, journal, send with 4 and 16 in flight, archive. What it
// measures is izdrop's own cost (CPU, the journal's synced commits) - a
// real registry's latency is measured by outbound's BenchmarkDeliver, and
// both by `izdrop bench`.
func BenchmarkRunOnce(b *testing.B) {
	const records = 5000
	var sb strings.Builder
	sb.WriteString("patient_id,patient_last_name,patient_first_name,patient_birth_date,patient_sex,race,ethnicity,phone,vaccination_id,admin_date,cvx,mvx,lot_number,dose_ml,route,body_site,vfc_eligibility\n")
	for i := 0; i < records; i++ {
		fmt.Fprintf(&sb, "P%06d,Garcia,Ana,2020-01-15,F,2106-3,2186-5,415-555-0100,V%06d,2026-10-01,08,MSD,L%d,0.5,IM,LA,V02\n", i/2, i, i)
	}
	file := []byte(sb.String())
	for _, conc := range []int{4, 16} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				f := newFixture(b, "", sandbox.Faults{})
				f.cfg.Endpoints["reg"].Concurrency = conc
				os.MkdirAll(f.inbox, 0o700)
				f.drop(b, "big.csv", file)
				// Written long ago: taken at once, not after stable_for.
				old := time.Now().Add(-time.Hour)
				os.Chtimes(filepath.Join(f.inbox, "big.csv"), old, old)
				s := f.service(b)
				b.StartTimer()
				sum, err := s.RunOnce(context.Background())
				b.StopTimer()
				if err != nil || sum.Done != 1 || sum.Records["accepted"] != records {
					b.Fatalf("%+v %v", sum, err)
				}
				s.Close()
				f.sb.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(records/2*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
