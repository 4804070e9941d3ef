package journal

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/izdrop/izdrop/internal/pgtest"
)

// BenchmarkMessageCycle is one message's journal work as the service does
// it: the Accepted lookup of its records, StartMessage with its bytes, FinishMessage, on
// each journal (sqlite, postgres: a server on loopback). Run it with -cpu
// 1,4,16: parallel workers share commits (group commit), so the rate grows
// with them instead of queueing for the write lock.
func BenchmarkMessageCycle(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		j, err := Open(filepath.Join(b.TempDir(), "journal.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		benchmarkMessageCycle(b, j)
	})
	b.Run("postgres", func(b *testing.B) {
		url, s := pgtest.Database(b)
		j, err := OpenPostgres(context.Background(), url, s.Password)
		if err != nil {
			b.Fatal(err)
		}
		defer j.Close()
		benchmarkMessageCycle(b, j)
	})
}

func benchmarkMessageCycle(b *testing.B, j Store) {
	ctx := context.Background()
	before := commits(j)
	j.AddFile(ctx, File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()})
	raw := make([]byte, 1300)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(seq.Add(1))
			recs := []Record{
				{Line: 2 * n, Site: "S", PatientID: fmt.Sprint("P", n), VaccinationID: fmt.Sprint("V", 2*n), Action: "A", ContentHash: "h"},
				{Line: 2*n + 1, Site: "S", PatientID: fmt.Sprint("P", n), VaccinationID: fmt.Sprint("V", 2*n+1), Action: "A", ContentHash: "h"},
			}
			if _, err := j.AcceptedAll(ctx, "R", "S", []string{recs[0].VaccinationID, recs[1].VaccinationID}); err != nil {
				b.Error(err)
				return
			}
			m := Message{Claim: "C", Seq: n, MSH10: fmt.Sprint("IZ", n), MSH7: time.Now(), Lines: []int{2 * n, 2*n + 1}, Raw: raw, State: Sending}
			if err := j.StartMessage(ctx, m, recs); err != nil {
				b.Error(err)
				return
			}
			outs := []Outcome{{Line: 2 * n, Outcome: "accepted", Stored: true}, {Line: 2*n + 1, Outcome: "accepted", Stored: true}}
			if err := j.FinishMessage(ctx, "R", "C", n, "accepted", "MSH|^~\\&|...\rMSA|AA|IZ\r", 1, outs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(2*b.N)/float64(max(commits(j)-before, 1)), "writes/commit")
}
