package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Writes submitted together share a commit, and one that fails undoes
// only its own changes: the others are committed.
func TestAFailedWriteInABatchLeavesTheOthersCommitted(t *testing.T) {
	eachBackend(t, testAFailedWriteInABatchLeavesTheOthersCommitted)
}

func testAFailedWriteInABatchLeavesTheOthersCommitted(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	j.AddFile(ctx, File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()})
	starts := []Start{
		{Message{Claim: "C", Seq: 1, MSH10: "IZ1", Lines: []int{1}, Raw: []byte("a"), State: Sending}, []Record{{Line: 1, VaccinationID: "V1", MSH10: "IZ1"}}},
		{Message{Claim: "C", Seq: 2, MSH10: "IZ1", Lines: []int{2}, Raw: []byte("b"), State: Sending}, []Record{{Line: 2, VaccinationID: "V2", MSH10: "IZ1"}}},
		{Message{Claim: "C", Seq: 3, MSH10: "IZ3", Lines: []int{1, 3}, Raw: []byte("c"), State: Sending}, []Record{{Line: 1}, {Line: 3}}},
		{Message{Claim: "C", Seq: 4, MSH10: "IZ4", Lines: []int{4}, Raw: []byte("d"), State: Sending}, []Record{{Line: 4, VaccinationID: "V4", MSH10: "IZ4"}}},
		{Message{Claim: "C", Seq: 1, MSH10: "IZ5", Lines: []int{5}, Raw: []byte("e"), State: Sending}, []Record{{Line: 5}}},
	}
	errs := j.StartMessages(ctx, starts)
	want := []error{nil, ErrDuplicateControlID, ErrLinesTaken, nil, ErrStarted}
	for i := range want {
		if !errors.Is(errs[i], want[i]) {
			t.Errorf("start %d: %v, want %v", i, errs[i], want[i])
		}
	}
	for seq, raw := range map[int]string{1: "a", 4: "d"} {
		if m, err := j.GetMessage(ctx, "C", seq); err != nil || string(m.Raw) != raw || m.State != Sending {
			t.Errorf("message %d: %+v %v", seq, m, err)
		}
	}
	for _, seq := range []int{2, 3} {
		if _, err := j.GetMessage(ctx, "C", seq); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused message %d was written: %v", seq, err)
		}
	}
	if n, _ := j.LinesIn(ctx, "C", 1, 9); n != 2 {
		t.Errorf("%d records journalled, want 2 (lines 1 and 4)", n)
	}
}

// Many goroutines writing at once are all committed, in fewer commits than
// writes.
func TestConcurrentWritesAreGroupCommitted(t *testing.T) {
	eachBackend(t, testConcurrentWritesAreGroupCommitted)
}

func testConcurrentWritesAreGroupCommitted(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	j.AddFile(ctx, File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()})
	before := commits(j)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				seq := g*100 + i
				id := fmt.Sprintf("IZ%d", seq)
				if err := j.StartMessage(ctx, Message{Claim: "C", Seq: seq, MSH10: id, Lines: []int{seq}, Raw: []byte(id), State: Sending},
					[]Record{{Line: seq, Site: "S", VaccinationID: id, ContentHash: strings.Repeat("ab", 32), MSH10: id}}); err != nil {
					errs <- err
					return
				}
				if err := j.FinishMessage(ctx, "R", "C", seq, "accepted", "MSA|AA|"+id, 1, []Outcome{{Line: seq, Outcome: "accepted", Stored: true}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	counts, _ := j.Counts(ctx, "C")
	if counts["accepted"] != 320 {
		t.Errorf("counts %v", counts)
	}
	if h, msh10, ok, _ := Accepted(ctx, j, "R", "S", "IZ1520"); ok {
		t.Errorf("accepted an id never sent: %s %s", h, msh10)
	}
	if h, msh10, ok, _ := Accepted(ctx, j, "R", "S", "IZ1519"); !ok || h != strings.Repeat("ab", 32) || msh10 != "IZ1519" {
		t.Errorf("accepted = %q %q %v", h, msh10, ok)
	}
	if n := commits(j) - before; n >= 640 {
		t.Errorf("%d commits for 640 writes", n)
	} else {
		t.Logf("%d commits for 640 writes", n)
	}
	if out := rows(t, j, "outbox"); out != 0 {
		t.Errorf("%d messages still hold their bytes after their answer", out)
	}
}

// After Close, a write says so instead of hanging.
func TestWriteAfterCloseFails(t *testing.T) { eachBackend(t, testWriteAfterCloseFails) }

func testWriteAfterCloseFails(t *testing.T, b backend) {
	j := b.open(t)
	j.Close()
	if err := j.AddFile(context.Background(), File{Claim: "C"}); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// A write whose context ended before it ran is not written.
func TestAWriteWhoseContextEndedIsNotWritten(t *testing.T) {
	eachBackend(t, testAWriteWhoseContextEndedIsNotWritten)
}

func testAWriteWhoseContextEndedIsNotWritten(t *testing.T, b backend) {
	j := b.open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.AddFile(ctx, File{Claim: "C", ClaimedAt: time.Now()}); !errors.Is(err, context.Canceled) {
		t.Errorf("write with an ended context: %v", err)
	}
	if _, err := j.GetFile(context.Background(), "C"); !errors.Is(err, ErrNotFound) {
		t.Errorf("written anyway: %v", err)
	}
}

func TestACKsAreStoredSmallAndReadBackAsReceived(t *testing.T) {
	samples, _ := filepath.Glob("../testdata/hl7-samples/ack_*.hl7")
	if len(samples) == 0 {
		t.Fatal("no sample ACKs")
	}
	sandbox := "MSH|^~\\&|CAIR IIS|CAIR IIS|izdrop 1.0|DEMO01|20261130202318-0800||ACK^V04^ACK|SBX1796098998.1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS|CAIR IIS|DEMO01\rMSA|AA|IZAGRC7V6BLZSLANHQIE\r"
	texts := []string{sandbox, "", "MSA|AA|\x01odd", "plain"}
	for _, s := range samples {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(b))
	}
	for _, text := range texts {
		if got := unpackACK(packACK(text)); got != text {
			t.Errorf("%q read back as %q", text, got)
		}
		if got := pgUnpackACK(pgPackACK(text)); got != text {
			t.Errorf("PostgreSQL: %q read back as %q", text, got)
		}
	}
	if b, ok := packACK(sandbox).([]byte); !ok || len(b) > 80 {
		t.Errorf("the sandbox's AA takes %d bytes (%T), want <= 80", len(b), packACK(sandbox))
	}
	if s, ok := packACK("MSA|AA|\x01odd").(string); !ok || s != "MSA|AA|\x01odd" {
		t.Errorf("an ACK with a control character is not kept as text: %#v", packACK("MSA|AA|\x01odd"))
	}
}

// A journal written by the izdrop before the compact layout - every table,
// messages answered and one waiting, acceptances - opens migrated: what
// find and the sidecars show is the same, the waiting message keeps its
// bytes, answered ones lose theirs.
func TestOpenMigratesAVersion1Journal(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("0f", 32)
	for _, q := range []string{
		schemaV1,
		`CREATE INDEX files_name ON files(name)`,
		`CREATE INDEX records_seq ON records(claim, seq, line)`,
		`CREATE INDEX records_vid ON records(vaccination_id)`,
		`CREATE INDEX records_msh10 ON records(msh10)`,
		`CREATE TABLE refusals (registry TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL)`,
		`INSERT INTO refusals VALUES('R1', 'fp', 'SecurityFault', '2026-01-01T00:00:00Z')`,
		`INSERT INTO files VALUES('C1', 'clinic', 'a.csv', '/w/C1--a.csv', 'abc', 10, '2026-01-01T00:00:00Z', 'archived', 'done', '/a/done/a.csv', '', '2026-01-02T00:00:00Z')`,
		`INSERT INTO files VALUES('C2', 'clinic', 'b.csv', '/w/C2--b.csv', 'def', 10, '2026-01-03T00:00:00Z', 'pending', '', '', '', '2026-01-03T00:00:00Z')`,
		`INSERT INTO messages VALUES('C1', 1, 'IZA', '2026-01-01T10:00:00-08:00', '2,3', 'done', 'accepted', 1, 'MSA|AA|IZA', x'00ff', '2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z', 'R1', '')`,
		`INSERT INTO messages VALUES('C2', 1, 'IZB', '2026-01-03T10:00:00-08:00', '2', 'sending', '', 3, '', CAST('MSH|B' AS BLOB), '2026-01-03T00:00:01Z', '', '', 'timeout')`,
		`INSERT INTO records VALUES('C1', 2, 1, 'S1', 'P1', 'V1', 'A', '` + hash + `', 'accepted', 'IZA', '', 10, 20)`,
		`INSERT INTO records VALUES('C1', 3, 1, 'S1', 'P1', 'V2', 'A', '` + hash + `', 'accepted', 'IZA', '[{"code":"w"}]', 20, 30)`,
		`INSERT INTO records VALUES('C1', 4, 1, 'S1', 'P1', 'V3', 'A', '', 'invalid', '', '[{"code":"e"}]', 30, 40)`,
		`INSERT INTO records VALUES('C2', 2, 1, 'S1', 'P2', 'V9', 'A', '` + hash + `', '', 'IZB', '', 10, 20)`,
		`INSERT INTO records VALUES('C2', 3, 1, 'S1', 'P2', 'V1', 'A', '` + hash + `', 'already_accepted', 'IZA', '', 20, 30)`,
		`INSERT INTO accepted VALUES('R1', 'S1', 'V1', '` + hash + `', 'IZA', 'C1', '2026-01-01T00:00:02Z')`,
		`INSERT INTO accepted VALUES('', 'S1', 'V0', 'h0', 'IZOLD', 'C0', '2025-01-01T00:00:02Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var version int
	j.db.QueryRow(`PRAGMA user_version`).Scan(&version)
	if version != schemaVersion {
		t.Errorf("user_version %d", version)
	}
	if f, err := j.GetFile(ctx, "C1"); err != nil || f.State != Archived || f.ArchivePath != "/a/done/a.csv" || f.SHA256 != "abc" {
		t.Errorf("file %+v %v", f, err)
	}
	m, err := j.GetMessage(ctx, "C1", 1)
	if err != nil || m.MSH10 != "IZA" || m.ACK != "MSA|AA|IZA" || len(m.Raw) != 0 || m.Registry != "R1" || fmt.Sprint(m.Lines) != "[2 3]" || m.Site != "S1" {
		t.Errorf("answered message %+v %v", m, err)
	}
	sending, err := j.SendingMessages(ctx, "C2")
	if err != nil || len(sending) != 1 || string(sending[0].Raw) != "MSH|B" || sending[0].LastError != "timeout" || sending[0].Attempts != 3 ||
		!sending[0].MSH7.Equal(time.Date(2026, 1, 3, 18, 0, 0, 0, time.UTC)) {
		t.Errorf("waiting message %+v %v", sending, err)
	}
	var recs []Record
	j.Records(ctx, "C1", func(r Record) error { recs = append(recs, r); return nil })
	if len(recs) != 3 || recs[0].MSH10 != "IZA" || recs[1].Problems != `[{"code":"w"}]` || recs[2].MSH10 != "" || recs[2].Outcome != "invalid" || recs[0].Start != 10 {
		t.Errorf("records %+v", recs)
	}
	j.Records(ctx, "C2", func(r Record) error { recs = append(recs, r); return nil })
	if r := recs[3]; r.ContentHash != hash || r.MSH10 != "IZB" {
		t.Errorf("waiting record %+v", r)
	}
	if r := recs[4]; r.MSH10 != "IZA" || r.Outcome != "already_accepted" {
		t.Errorf("already accepted record %+v", r)
	}
	if rs, _ := j.RecordsByMSH10(ctx, "IZA"); len(rs) != 3 {
		t.Errorf("records by MSH-10 IZA: %+v", rs)
	}
	if h, msh10, ok, _ := Accepted(ctx, j, "R1", "S1", "V1"); !ok || h != hash || msh10 != "IZA" {
		t.Errorf("accepted %q %q %v", h, msh10, ok)
	}
	if n, _ := j.LegacyAccepted(ctx); n != 1 {
		t.Errorf("legacy acceptances %d", n)
	}
	if r, ok, _ := j.Refused(ctx, "R1"); !ok || r.Reason != "SecurityFault" {
		t.Errorf("refusal %+v %v", r, ok)
	}
	// The waiting message is answered as any other.
	if err := j.FinishMessage(ctx, "R1", "C2", 1, "accepted", "MSA|AA|IZB", 1, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}}); err != nil {
		t.Fatal(err)
	}
	if _, msh10, ok, _ := Accepted(ctx, j, "R1", "S1", "V9"); !ok || msh10 != "IZB" {
		t.Errorf("accepted after migration: %q %v", msh10, ok)
	}
}

// Forgetting an archived file removes its rows and keeps what the registry
// holds; a file not archived is left alone.
func TestForgetRemovesAnArchivedFileButNotWhatTheRegistryHolds(t *testing.T) {
	eachBackend(t, testForgetRemovesAnArchivedFileButNotWhatTheRegistryHolds)
}

func testForgetRemovesAnArchivedFileButNotWhatTheRegistryHolds(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	defer func(n int) { forgetChunk = n }(forgetChunk)
	forgetChunk = 25
	for _, c := range []string{"OLD", "NEW"} {
		j.AddFile(ctx, File{Claim: c, Inbox: "clinic", Name: c + ".csv", WorkPath: "w", ClaimedAt: time.Now()})
		for seq := 1; seq <= 2*forgetChunk+10; seq++ {
			id := fmt.Sprintf("%s-%d", c, seq)
			if err := j.StartMessage(ctx, Message{Claim: c, Seq: seq, MSH10: id, Lines: []int{seq}, Raw: []byte("x"), State: Sending},
				[]Record{{Line: seq, Site: "S", VaccinationID: id, ContentHash: "h", MSH10: id}}); err != nil {
				t.Fatal(err)
			}
			j.FinishMessage(ctx, "R", c, seq, "accepted", "MSA|AA", 1, []Outcome{{Line: seq, Outcome: "accepted", Stored: true}})
		}
	}
	j.SetFile(ctx, "OLD", Archived, "done", "/a/OLD.csv", "")
	if _, err := j.Forget(ctx, "NEW"); !errors.Is(err, ErrNotArchived) {
		t.Errorf("forgetting a file not archived: %v", err)
	}
	old, err := j.ArchivedBefore(ctx, "clinic", time.Now().Add(time.Minute))
	if err != nil || len(old) != 1 || old[0].Claim != "OLD" {
		t.Fatalf("archived before now: %+v %v", old, err)
	}
	if none, _ := j.ArchivedBefore(ctx, "clinic", time.Now().Add(-time.Hour)); len(none) != 0 {
		t.Errorf("archived an hour ago: %+v", none)
	}
	n, err := j.Forget(ctx, "OLD")
	if err != nil || n != 2*forgetChunk+10 {
		t.Fatalf("forgot %d records: %v", n, err)
	}
	if _, err := j.GetFile(ctx, "OLD"); !errors.Is(err, ErrNotFound) {
		t.Errorf("file row kept: %v", err)
	}
	if rs, _ := j.RecordsByVaccination(ctx, "OLD-7"); len(rs) != 0 {
		t.Errorf("records kept: %+v", rs)
	}
	if _, _, ok, _ := Accepted(ctx, j, "R", "S", "OLD-7"); !ok {
		t.Error("what the registry holds was forgotten too")
	}
	if c, _ := j.Counts(ctx, "NEW"); c["accepted"] != 2*forgetChunk+10 {
		t.Errorf("the other file: %v", c)
	}
	// A file forgotten can be written again under its claim (a new row).
	if err := j.StartMessage(ctx, Message{Claim: "OLD", Seq: 1, MSH10: "again", State: Sending}, nil); err != nil {
		t.Errorf("after forgetting: %v", err)
	}
}
