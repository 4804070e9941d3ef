package journal

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFileMessageRecordLifeCycle(t *testing.T) { eachBackend(t, testFileMessageRecordLifeCycle) }

func testFileMessageRecordLifeCycle(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	f := File{Claim: "C1", Inbox: "clinic", Name: "a.csv", WorkPath: "/w/C1--a.csv", ClaimedAt: time.Now()}
	if err := j.AddFile(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := j.AddFile(ctx, f); err != nil {
		t.Fatal("adding a known claim again must be a no-op:", err)
	}
	sent := time.Date(2026, 11, 25, 10, 0, 0, 123, time.UTC)
	recs := []Record{{Line: 2, Site: "S1", PatientID: "P1", VaccinationID: "V1", Action: "A", ContentHash: "h1", MSH10: "IZ1"},
		{Line: 3, Site: "S1", PatientID: "P1", VaccinationID: "V2", Action: "A", ContentHash: "h2", Outcome: "invalid", Problems: `[{"rule":"lot-missing"}]`}}
	m := Message{Claim: "C1", Seq: 1, MSH10: "IZ1", MSH7: sent, Lines: []int{2}, State: Sending}
	if err := j.StartMessage(ctx, m, recs); err != nil {
		t.Fatal(err)
	}
	// Starting again (a resumed run) changes nothing.
	if err := j.StartMessage(ctx, Message{Claim: "C1", Seq: 1, MSH10: "IZ9", State: Sending, Lines: []int{2, 3}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := j.GetMessage(ctx, "C1", 1)
	if err != nil || got.MSH10 != "IZ1" || !got.MSH7.Equal(sent) || len(got.Lines) != 1 || got.Lines[0] != 2 || got.State != Sending {
		t.Fatalf("message = %+v, %v", got, err)
	}
	// Another file may not reuse the control id.
	if err := j.StartMessage(ctx, Message{Claim: "C2", Seq: 1, MSH10: "IZ1", State: Sending}, nil); !errors.Is(err, ErrDuplicateControlID) {
		t.Fatalf("reused MSH-10: %v", err)
	}
	if _, _, ok, _ := Accepted(ctx, j, "R1", "S1", "V1"); ok {
		t.Fatal("accepted before the answer")
	}
	if n, _ := j.OpenMessages(ctx, "C1"); n != 1 {
		t.Errorf("open messages %d", n)
	}
	if err := j.FinishMessage(ctx, "R1", "C1", 1, "accepted", "MSH|...\rMSA|AA|IZ1\r", 2, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}}); err != nil {
		t.Fatal(err)
	}
	if h, msh10, ok, err := Accepted(ctx, j, "R1", "S1", "V1"); !ok || h != "h1" || msh10 != "IZ1" || err != nil {
		t.Errorf("accepted = %s %s %v %v", h, msh10, ok, err)
	}
	if n, _ := j.OpenMessages(ctx, "C1"); n != 0 {
		t.Errorf("open messages %d after finish", n)
	}
	counts, _ := j.Counts(ctx, "C1")
	if counts["accepted"] != 1 || counts["invalid"] != 1 {
		t.Errorf("counts %v", counts)
	}
	var lines []int
	j.Records(ctx, "C1", func(r Record) error { lines = append(lines, r.Line); return nil })
	if fmt.Sprint(lines) != "[2 3]" {
		t.Errorf("records %v", lines)
	}
	for _, c := range []struct {
		outcomes []string
		want     string
	}{{[]string{"rejected", "invalid"}, "[3]"}, {[]string{"accepted"}, "[2]"}, {[]string{"invalid", "accepted"}, "[2 3]"}, {[]string{"rejected"}, "[]"}, {nil, "[]"}} {
		lines = nil
		if err := j.RecordsWithOutcome(ctx, "C1", c.outcomes, func(r Record) error { lines = append(lines, r.Line); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(lines) != c.want {
			t.Errorf("records with outcome %v: %v, want %s", c.outcomes, lines, c.want)
		}
	}
	var acks []string
	j.ACKs(ctx, "C1", func(m, a string) error { acks = append(acks, m+"="+a); return nil })
	if len(acks) != 1 || acks[0][:4] != "IZ1=" {
		t.Errorf("acks %v", acks)
	}
	if err := j.SetFile(ctx, "C1", Archived, "done", "/a/done/2026-11-25/a.csv", ""); err != nil {
		t.Fatal(err)
	}
	j.Close()
	// Everything is still there after a reopen.
	j2 := b.open(t)
	ff, err := j2.GetFile(ctx, "C1")
	if err != nil || ff.State != Archived || ff.Result != "done" || ff.ArchivePath == "" || ff.Name != "a.csv" {
		t.Fatalf("file after reopen = %+v, %v", ff, err)
	}
	if byName, _ := j2.FilesByName(ctx, "a.csv"); len(byName) != 1 {
		t.Errorf("by name: %v", byName)
	}
	if rs, _ := j2.RecordsByVaccination(ctx, "V2"); len(rs) != 1 || rs[0].Outcome != "invalid" {
		t.Errorf("by vaccination: %+v", rs)
	}
	if _, err := j2.GetFile(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown claim: %v", err)
	}
}

// AcceptedAll answers for the ids a registry holds for the site, in
// queries of up to acceptedIDs ids, and for nothing else: not another
// site's, not another registry's, not an id never sent.
func TestAcceptedAll(t *testing.T) { eachBackend(t, testAcceptedAll) }

func testAcceptedAll(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	const n = 2*acceptedIDs + 3 // three queries on SQLite, the last one short
	var recs []Record
	var lines []int
	var outs []Outcome
	var ids []string
	for i := range n {
		site := "S1"
		if i == 5 {
			site = "S2" // same id space, another site
		}
		id := fmt.Sprintf("V%02d", i)
		ids = append(ids, id)
		recs = append(recs, Record{Line: i + 2, Site: site, PatientID: "P", VaccinationID: id, Action: "A", ContentHash: "h" + id})
		lines = append(lines, i+2)
		// Every third record is rejected: the registry holds nothing for it.
		outs = append(outs, Outcome{Line: i + 2, Outcome: map[bool]string{true: "rejected", false: "accepted"}[i%3 == 0], Stored: i%3 != 0})
	}
	if err := j.StartMessage(ctx, Message{Claim: "C", Seq: 1, MSH10: "IZ1", Lines: lines, State: Sending}, recs); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishMessage(ctx, "R1", "C", 1, "partial", "MSA|AE|IZ1", 1, outs); err != nil {
		t.Fatal(err)
	}
	// Another registry holds one of them, from another message.
	if err := j.StartMessage(ctx, Message{Claim: "C", Seq: 2, MSH10: "IZ2", Lines: []int{100}, State: Sending},
		[]Record{{Line: 100, Site: "S1", PatientID: "P", VaccinationID: "V00", Action: "A", ContentHash: "other"}}); err != nil {
		t.Fatal(err)
	}
	if err := j.FinishMessage(ctx, "R2", "C", 2, "accepted", "MSA|AA|IZ2", 1, []Outcome{{Line: 100, Outcome: "accepted", Stored: true}}); err != nil {
		t.Fatal(err)
	}

	held, err := j.AcceptedAll(ctx, "R1", "S1", append(ids, "NEVER"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, id := range ids {
		if i%3 != 0 && i != 5 {
			want = append(want, id)
		}
	}
	var got []string
	for id, a := range held {
		got = append(got, id)
		if a.Hash != "h"+id || a.MSH10 != "IZ1" {
			t.Errorf("%s: %+v, want hash h%s from IZ1", id, a, id)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("R1 holds %v for S1, want %v", got, want)
	}
	if held, err := j.AcceptedAll(ctx, "R2", "S1", ids); err != nil || len(held) != 1 || held["V00"] != (Acceptance{"other", "IZ2"}) {
		t.Errorf("R2 holds %+v, %v; want V00 only", held, err)
	}
	if held, err := j.AcceptedAll(ctx, "R1", "S2", []string{"V05", "V04"}); err != nil || len(held) != 1 || held["V05"].MSH10 != "IZ1" {
		t.Errorf("R1 holds %+v for S2, %v; want V05 only", held, err)
	}
	if held, err := j.AcceptedAll(ctx, "R3", "S1", ids); err != nil || len(held) != 0 {
		t.Errorf("a registry never sent to holds %+v, %v", held, err)
	}
}

// Two handles on one file stand for two izdrop processes sharing a journal.
func TestTwoWritersShareOneJournal(t *testing.T) { eachBackend(t, testTwoWritersShareOneJournal) }

func testTwoWritersShareOneJournal(t *testing.T, be backend) {
	ctx := context.Background()
	a, b := be.open(t), be.open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w, j := range []Store{a, b} {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func(w, g int, j Store) {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					claim := fmt.Sprintf("W%d-G%d", w, g)
					msh10 := fmt.Sprintf("IZ-%d-%d-%d", w, g, i)
					if err := j.StartMessage(ctx, Message{Claim: claim, Seq: i, MSH10: msh10, State: Sending, Lines: []int{i}},
						[]Record{{Line: i, Site: "S", VaccinationID: msh10, ContentHash: "h"}}); err != nil {
						errs <- err
						return
					}
					if err := j.FinishMessage(ctx, "R1", claim, i, "accepted", "ack", 1, []Outcome{{Line: i, Outcome: "accepted", Stored: true}}); err != nil {
						errs <- err
						return
					}
				}
			}(w, g, j)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := rows(t, a, "accepted"); n != 400 {
		t.Errorf("%d accepted rows, want 400", n)
	}
}

func TestMessagesKeepTheirBytesAndLines(t *testing.T) {
	eachBackend(t, testMessagesKeepTheirBytesAndLines)
}

func testMessagesKeepTheirBytesAndLines(t *testing.T, b backend) {
	ctx := context.Background()
	j := b.open(t)
	j.AddFile(ctx, File{Claim: "C1", Inbox: "clinic", Name: "a.csv", WorkPath: "/w/C1--a.csv", ClaimedAt: time.Now()})
	j.AddFile(ctx, File{Claim: "C2", Inbox: "other", Name: "b.csv", WorkPath: "/w/C2--b.csv", ClaimedAt: time.Now()})
	raw := []byte("MSH|^~\\&|izdrop 1.0|...\rPID|...\r")
	recs := []Record{
		{Line: 2, Site: "S1", PatientID: "P1", VaccinationID: "V1", Action: "A", Problems: `[{"code":"w1"}]`},
		{Line: 3, Site: "S1", PatientID: "P1", VaccinationID: "V2", Action: "A"},
	}
	if err := j.StartMessage(ctx, Message{Claim: "C1", Seq: 1, MSH10: "IZ1", Lines: []int{2, 3}, Raw: raw, State: Sending}, recs); err != nil {
		t.Fatal(err)
	}
	m, err := j.GetMessage(ctx, "C1", 1)
	if err != nil || string(m.Raw) != string(raw) || m.Site != "S1" || m.PatientID != "P1" {
		t.Fatalf("message %+v %v", m, err)
	}
	if first, last, n, err := j.MessageSpan(ctx, "C1", 1); first != 2 || last != 3 || n != 2 || err != nil {
		t.Errorf("span %d-%d (%d) %v", first, last, n, err)
	}
	// A message whose lines overlap one already started is refused, and
	// writes nothing: the file now reads differently.
	over := []Record{{Line: 3, Site: "S1", PatientID: "P1", VaccinationID: "V2"}, {Line: 4, Site: "S1", PatientID: "P1", VaccinationID: "V3"}}
	if err := j.StartMessage(ctx, Message{Claim: "C1", Seq: 2, MSH10: "IZ2", Lines: []int{3, 4}, Raw: raw, State: Sending}, over); !errors.Is(err, ErrLinesTaken) {
		t.Fatalf("overlapping message: %v", err)
	}
	if _, err := j.GetMessage(ctx, "C1", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused message was written: %v", err)
	}
	sending, err := j.SendingMessages(ctx, "C1")
	if err != nil || len(sending) != 1 || sending[0].MSH10 != "IZ1" || string(sending[0].Raw) != string(raw) {
		t.Fatalf("sending %+v %v", sending, err)
	}
	// The registry's problems join those recorded at the start.
	if err := j.FinishMessage(ctx, "R1", "C1", 1, "accepted", "MSA|AA|IZ1", 1, []Outcome{
		{Line: 2, Outcome: "accepted", Problems: `[{"code":"r1"}]`, Stored: true},
		{Line: 3, Outcome: "accepted", Problems: `[{"code":"r2"}]`, Stored: true},
	}); err != nil {
		t.Fatal(err)
	}
	probs := map[int]string{}
	j.Records(ctx, "C1", func(r Record) error { probs[r.Line] = r.Problems; return nil })
	if probs[2] != `[{"code":"w1"},{"code":"r1"}]` || probs[3] != `[{"code":"r2"}]` {
		t.Errorf("problems %v", probs)
	}
	if sending, _ := j.SendingMessages(ctx, "C1"); len(sending) != 0 {
		t.Errorf("still sending: %+v", sending)
	}
	j.SetFile(ctx, "C1", Archiving, "done", "/a/done/x/a.csv", "")
	j.SetFile(ctx, "C2", Archiving, "done", "/a/done/x/b.csv", "")
	fs, err := j.FilesInState(ctx, "clinic", Archiving)
	if err != nil || len(fs) != 1 || fs[0].Claim != "C1" || fs[0].ArchivePath != "/a/done/x/a.csv" {
		t.Errorf("files archiving in clinic: %+v %v", fs, err)
	}
}

// A journal written before raw bytes were kept opens, and gains the column.
func TestOpenMigratesAnOlderJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE messages (claim TEXT NOT NULL, seq INTEGER NOT NULL, msh10 TEXT UNIQUE, msh7 TEXT NOT NULL DEFAULT '',
		lines TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
		ack TEXT NOT NULL DEFAULT '', sent_at TEXT NOT NULL DEFAULT '', done_at TEXT NOT NULL DEFAULT '', PRIMARY KEY (claim, seq));
		INSERT INTO messages(claim, seq, msh10, lines, state) VALUES('C0', 1, 'IZ0', '2', 'sending')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m, err := j.GetMessage(context.Background(), "C0", 1)
	if err != nil || m.MSH10 != "IZ0" || len(m.Raw) != 0 || m.State != Sending {
		t.Fatalf("old message %+v %v", m, err)
	}
}

// Processes starting together open (and create) one journal at once: each
// waits its turn, none fails with "database is locked". The test runs
// itself as the processes, all opening at the same instant.
func TestProcessesOpenOneNewJournalAtOnce(t *testing.T) {
	if path := os.Getenv("IZDROP_JOURNAL_CHILD"); path != "" {
		at, _ := strconv.ParseInt(os.Getenv("IZDROP_JOURNAL_AT"), 10, 64)
		time.Sleep(time.Until(time.Unix(0, at)))
		j, err := Open(path)
		if err == nil {
			err = j.AddFile(context.Background(), File{Claim: path, Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()})
			j.Close()
		}
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	for round := 0; round < 10; round++ {
		path := filepath.Join(t.TempDir(), "journal.db")
		at := time.Now().Add(300 * time.Millisecond).UnixNano()
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for i := 0; i < 4; i++ {
			cmd := exec.Command(os.Args[0], "-test.run=^TestProcessesOpenOneNewJournalAtOnce$")
			cmd.Env = append(os.Environ(), "IZDROP_JOURNAL_CHILD="+path, fmt.Sprint("IZDROP_JOURNAL_AT=", at))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, &out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Errorf("round %d: a process could not open the journal: %v: %s", round, err, outs[i])
			}
		}
		if t.Failed() {
			return
		}
	}
}

// A message's lookups use indexes: a scan of a file's records per message
// made a 10 000-record file quadratic (and twice as slow as it is). The
// file's records by message go through records_seq: the planner, without
// statistics, would otherwise take the primary key's file prefix - every
// record of the file.
func TestMessageLookupsUseIndexes(t *testing.T) {
	j, err := Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const claim = `(SELECT id FROM files WHERE claim = 'c')`
	for _, tc := range []struct{ q, uses string }{
		{`SELECT ` + messageCols + messageFrom + ` WHERE m.file = ` + claim + ` AND m.seq = 1`, "records_seq"},
		{`SELECT ` + messageCols + openFrom + ` WHERE m.file = ` + claim + ` AND m.state != 'done' ORDER BY m.seq`, "messages_open"},
		{`SELECT COUNT(*) FROM messages INDEXED BY messages_open WHERE file = ` + claim + ` AND state != 'done'`, "messages_open"},
		{`SELECT COALESCE(MIN(line), 0), COALESCE(MAX(line), 0), COUNT(*) FROM records INDEXED BY records_seq WHERE file = ` + claim + ` AND seq = 1`, "records_seq"},
		{`SELECT COUNT(*) FROM records WHERE file = 1 AND line BETWEEN 1 AND 9 AND seq != 1`, "line>? AND line<?"},
		{`SELECT ` + recordCols + ` FROM records r JOIN files f ON f.id = r.file WHERE r.vaccination_id = 'v' ORDER BY f.claim DESC, r.line`, "records_vid"},
		{`SELECT ` + recordCols + ` FROM messages m0 JOIN records r ON r.file = m0.file AND r.seq = m0.seq AND r.sent AND r.msh10 = ''
			JOIN files f ON f.id = r.file WHERE m0.msh10 = 'x'`, "msh10"},
		{strings.ReplaceAll(acceptedQuery[1], "?", "'v'"), "PRIMARY KEY"},
		{strings.ReplaceAll(acceptedQuery[acceptedIDs], "?", "'v'"), "PRIMARY KEY"},
		{`UPDATE records INDEXED BY records_seq SET outcome = 'a', content_hash = '' WHERE file = 1 AND seq = 2 AND sent`, "records_seq"},
		{`INSERT INTO accepted(registry, site, vaccination_id, content_hash, msh10, file, at)
			SELECT 1, site, vaccination_id, content_hash, msh10, file, 1 FROM records INDEXED BY records_seq
			WHERE file = 1 AND seq = 2 AND sent AND vaccination_id != '' ON CONFLICT(registry, site, vaccination_id) DO NOTHING`, "records_seq"},
	} {
		rows, err := j.db.Query(`EXPLAIN QUERY PLAN ` + tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN") && !strings.Contains(step, "INDEX") {
				t.Errorf("%s\nscans: %v", tc.q, plan)
			}
		}
		if !strings.Contains(strings.Join(plan, "\n"), tc.uses) {
			t.Errorf("%s\ndoes not use %s: %v", tc.q, tc.uses, plan)
		}
	}
}
