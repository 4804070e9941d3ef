package journal

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

func TestAcceptedIsPerRegistry(t *testing.T) { eachBackend(t, testAcceptedIsPerRegistry) }

func testAcceptedIsPerRegistry(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	recs := []Record{{Line: 2, Site: "S1", PatientID: "P1", VaccinationID: "V1", Action: "A", ContentHash: "h1", MSH10: "IZ1"}}
	if err := j.StartMessage(ctx, Message{Claim: "C1", Seq: 1, MSH10: "IZ1", Lines: []int{2}, State: Sending}, recs); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishMessage(ctx, "staging#ORG", "C1", 1, "accepted", "MSA|AA|IZ1", 1, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := Accepted(ctx, j, "staging#ORG", "S1", "V1"); !ok {
		t.Error("the registry that accepted the record does not hold it")
	}
	if _, _, ok, _ := Accepted(ctx, j, "production#ORG", "S1", "V1"); ok {
		t.Error("another registry is said to hold a record only staging accepted")
	}
	m, err := j.GetMessage(ctx, "C1", 1)
	if err != nil || m.Registry != "staging#ORG" {
		t.Errorf("message answered by %q, %v", m.Registry, err)
	}
}

// A journal written before acceptances named their registry is migrated:
// its rows are kept (for find) and stop no send to any registry.
func TestOldJournalMigratesAcceptedWithoutRegistry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE messages (claim TEXT NOT NULL, seq INTEGER NOT NULL, msh10 TEXT UNIQUE, msh7 TEXT NOT NULL DEFAULT '', lines TEXT NOT NULL DEFAULT '',
			state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, ack TEXT NOT NULL DEFAULT '',
			raw BLOB NOT NULL DEFAULT x'', sent_at TEXT NOT NULL DEFAULT '', done_at TEXT NOT NULL DEFAULT '', PRIMARY KEY (claim, seq))`,
		`INSERT INTO messages(claim, seq, msh10, state, outcome) VALUES('C0', 1, 'IZOLD', 'done', 'accepted')`,
		`CREATE TABLE accepted (site TEXT NOT NULL, vaccination_id TEXT NOT NULL, content_hash TEXT NOT NULL, msh10 TEXT NOT NULL,
			claim TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (site, vaccination_id))`,
		`INSERT INTO accepted VALUES('S1', 'V1', 'h1', 'IZOLD', 'C0', '2026-01-01T00:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if n, err := j.LegacyAccepted(ctx); n != 1 || err != nil {
		t.Errorf("legacy acceptances = %d, %v", n, err)
	}
	for _, reg := range []string{"embedded-sandbox", "https://cair.example/CAPRD-WS/IISService#ORG"} {
		if _, _, ok, _ := Accepted(ctx, j, reg, "S1", "V1"); ok {
			t.Errorf("an acceptance of unknown origin stops a send to %s", reg)
		}
	}
	m, err := j.GetMessage(ctx, "C0", 1)
	if err != nil || m.MSH10 != "IZOLD" || m.Registry != "" {
		t.Errorf("old message = %+v, %v", m, err)
	}
}

func TestRefusalsAndTestplanRuns(t *testing.T) { eachBackend(t, testRefusalsAndTestplanRuns) }

func testRefusalsAndTestplanRuns(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	if _, ok, _ := j.Refused(ctx, "R"); ok {
		t.Fatal("refused before anything happened")
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	if err := j.SetRefused(ctx, Refusal{Registry: "R", Fingerprint: "fp1", Reason: "SecurityFault: bad password", At: at}); err != nil {
		t.Fatal(err)
	}
	r, ok, err := j.Refused(ctx, "R")
	if !ok || err != nil || r.Fingerprint != "fp1" || !r.At.Equal(at) || r.Reason == "" {
		t.Errorf("refusal = %+v %v %v", r, ok, err)
	}
	if err := j.ClearRefused(ctx, "R"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.Refused(ctx, "R"); ok {
		t.Error("refusal still there after a passed credentials check")
	}

	if _, _, okLast, okPassed, err := j.LastTestplanRun(ctx, "staging"); okLast || okPassed || err != nil {
		t.Fatalf("runs before any: %v %v %v", okLast, okPassed, err)
	}
	j.AddTestplanRun(ctx, TestplanRun{Endpoint: "cair", Registry: "R", Environment: "staging", Site: "DEMO01", At: at, Cases: 12})
	j.AddTestplanRun(ctx, TestplanRun{Endpoint: "cair", Registry: "R", Environment: "staging", Site: "DEMO01", At: at.Add(time.Hour), Cases: 12, Failed: []string{"update", "delete"}})
	last, passed, okLast, okPassed, err := j.LastTestplanRun(ctx, "staging")
	if !okLast || !okPassed || err != nil || len(last.Failed) != 2 || last.Passed() || !passed.Passed() || !passed.At.Equal(at) {
		t.Errorf("last = %+v, passed = %+v, %v %v %v", last, passed, okLast, okPassed, err)
	}
	if _, _, okLast, _, _ := j.LastTestplanRun(ctx, "production"); okLast {
		t.Error("a staging run counted for production")
	}
}
