package journal

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// What izdrop status and the status page read, from either journal.
func TestStatusReads(t *testing.T) { eachBackend(t, testStatusReads) }

func testStatusReads(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	j.SetEndpointState(ctx, EndpointState{Name: "reg", Registry: "R", State: "ok", Since: t0})
	j.SetEndpointState(ctx, EndpointState{Name: "reg", Registry: "R", State: "ok", Since: t0.Add(time.Hour)})
	st, err := j.EndpointStates(ctx)
	if err != nil || st["reg"].State != "ok" || !st["reg"].Since.Equal(t0) || st["reg"].UpdatedAt.IsZero() {
		t.Errorf("endpoint states %+v %v", st, err)
	}
	j.SetEndpointState(ctx, EndpointState{Name: "reg", Registry: "R", State: "breaker-open", Reason: "timeouts", Since: t0.Add(2 * time.Hour)})
	if st, _ := j.EndpointStates(ctx); st["reg"].State != "breaker-open" || !st["reg"].Since.Equal(t0.Add(2*time.Hour)) || st["reg"].Reason != "timeouts" {
		t.Errorf("after a change %+v", st)
	}

	now := time.Now().UTC()
	j.Beat(ctx, Heartbeat{Host: "h3", PID: 30, StartedAt: now.Add(-48 * time.Hour), At: now.Add(-25 * time.Hour)})
	j.Beat(ctx, Heartbeat{Host: "h1", PID: 10, StartedAt: now.Add(-time.Minute), At: now.Add(-30 * time.Second)})
	j.Beat(ctx, Heartbeat{Host: "h2", PID: 20, StartedAt: now.Add(-time.Minute), At: now})
	hs, err := j.Heartbeats(ctx, now.Add(-time.Minute))
	if err != nil || len(hs) != 2 || hs[0].Host != "h2" || hs[1].PID != 10 {
		t.Errorf("heartbeats %+v %v", hs, err)
	}
	if old, _ := j.Heartbeats(ctx, now.Add(-72*time.Hour)); len(old) != 2 {
		t.Errorf("a beat older than a day was kept: %+v", old)
	}

	// Three files of one inbox: archived long ago, archived now, waiting.
	for i, c := range []string{"OLD", "NEW", "WAIT"} {
		j.AddFile(ctx, File{Claim: c, Inbox: "clinic", Name: c + ".csv", WorkPath: "w", ClaimedAt: now})
		recs := []Record{
			{Line: 2, Site: "S", PatientID: "P", VaccinationID: fmt.Sprint(c, 2), Action: "A", ContentHash: "h"},
			{Line: 3, Site: "S", PatientID: "P", VaccinationID: fmt.Sprint(c, 3), Action: "A", Outcome: "invalid", Problems: `[{"rule":"lot-missing"}]`},
		}
		if err := j.StartMessage(ctx, Message{Claim: c, Seq: 1, MSH10: fmt.Sprint("IZ", i), Lines: []int{2}, Raw: []byte("x"), State: Sending}, recs); err != nil {
			t.Fatal(err)
		}
		if c != "WAIT" {
			j.FinishMessage(ctx, "R", c, 1, "accepted", "MSA|AA", 1, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}})
			j.SetFile(ctx, c, Archived, "failed", "/a/"+c, "")
		}
	}
	if fs, err := j.InboxFiles(ctx, "clinic", now.Add(-time.Hour), 0); err != nil || len(fs) != 3 || fs[0].Claim != "WAIT" {
		t.Errorf("inbox files %+v %v", fs, err)
	}
	if fs, _ := j.InboxFiles(ctx, "clinic", now.Add(time.Hour), 0); len(fs) != 1 || fs[0].Claim != "WAIT" {
		t.Errorf("inbox files since later: %+v", fs)
	}
	if fs, _ := j.InboxFiles(ctx, "clinic", now.Add(-time.Hour), 2); len(fs) != 2 {
		t.Errorf("limit 2: %+v", fs)
	}
	if c, err := j.OutcomeCounts(ctx, "clinic", now.Add(-time.Hour)); err != nil || c["accepted"] != 2 || c["invalid"] != 3 || c[""] != 1 {
		t.Errorf("outcome counts %v %v", c, err)
	}
	if c, _ := j.OutcomeCounts(ctx, "clinic", now.Add(time.Hour)); c["accepted"] != 0 || c[""] != 1 || c["invalid"] != 1 {
		t.Errorf("outcome counts since later %v", c)
	}
	n := 0
	j.Problems(ctx, "clinic", now.Add(-time.Hour), func(o, p string) error {
		if o != "invalid" || p != `[{"rule":"lot-missing"}]` {
			t.Errorf("problem %q %q", o, p)
		}
		n++
		return nil
	})
	if n != 3 {
		t.Errorf("%d problems", n)
	}
	per := map[string]int{}
	j.ArchivedCounts(ctx, "clinic", now.Add(-time.Hour), func(at time.Time, o string, k int) {
		if at.Before(now.Add(-time.Minute)) || at.After(time.Now().Add(time.Minute)) {
			t.Errorf("archived at %v", at)
		}
		per[o] += k
	})
	if per["accepted"] != 2 || per["invalid"] != 2 || len(per) != 2 {
		t.Errorf("archived counts %v", per)
	}
	if j.Size() <= 0 {
		t.Error("no size")
	}
}
