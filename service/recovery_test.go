package service_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/watcher"
)

// Marker files follow their data file into the archive under its archived
// name, in both marker forms, and none stays behind in work/.
func TestMarkersAreArchivedBesideTheirFile(t *testing.T) {
	f := newFixture(t, `marker = "done"`, sandbox.Faults{})
	s := f.service(t)
	f.drop(t, "a.csv", example(t, "guardian.csv"))
	f.drop(t, "a.csv.done", nil)
	f.drop(t, "b.csv", example(t, "historical.csv"))
	f.drop(t, "b.done", nil)
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 2 {
		t.Fatalf("%+v %v", sum, err)
	}
	for _, name := range []string{"a.csv", "b.csv"} {
		p, ok := f.archived(name)
		if !ok {
			t.Fatalf("%s not archived", name)
		}
		marker := p + ".done"
		if name == "b.csv" {
			marker = filepath.Join(filepath.Dir(p), "b.done")
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("marker of %s: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(f.inbox, "work")); len(ents) != 0 {
		t.Errorf("%d files left in work/ (%s ...)", len(ents), ents[0].Name())
	}
}

// registryOrder lists what the registry took, in arrival order.
func registryOrder(sb *sandbox.Server) []string {
	var out []string
	for _, r := range sb.Received() {
		for _, d := range r.Doses {
			out = append(out, d.ID+"/"+d.Action+"="+string(r.Outcome))
		}
	}
	return out
}

// An older claimed file that this process cannot take (another process
// holds its lock) keeps the newer files waiting: a newer file's update or
// delete must not overtake the doses of the older one.
func TestANewerFileWaitsForAnOlderOneHeldElsewhere(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	work := filepath.Join(f.inbox, "work")
	os.MkdirAll(work, 0o700)
	older := filepath.Join(work, watcher.NewClaimID(time.Now().Add(-time.Minute))+"--a.csv")
	os.WriteFile(older, example(t, "visit-administered.csv"), 0o600)
	release, ok, err := watcher.Lock(older) // another open of the file: as another process would hold it
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	f.drop(t, "c.csv", example(t, "visit-corrections.csv"))
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Pending != 1 || sum.Done+sum.Failed != 0 {
		t.Fatalf("with the older file held: %+v %v", sum, err)
	}
	if got := registryOrder(f.sb); len(got) != 0 {
		t.Fatalf("sent while an older file was held: %v", got)
	}
	release()
	sum, err = s.RunOnce(context.Background())
	if err != nil || sum.Done != 2 || sum.Pending != 0 {
		t.Fatalf("after release: %+v %v", sum, err)
	}
	// The two corrections are for different patients, so either may go
	// first; both come after every dose of the older file.
	got := registryOrder(f.sb)
	last := map[string]bool{}
	if len(got) == 6 {
		last[got[4]], last[got[5]] = true, true
	}
	if !last["V-2026-0004/U=accepted"] || !last["V-2026-0003/D=accepted"] {
		t.Errorf("registry order %v: the corrections must come after the doses, and be accepted", got)
	}
}

// Two processes on one inbox take turns: while one is in a pass, the
// other's run --once waits for it rather than working beside it.
func TestPassesOnOneInboxTakeTurnsAcrossProcesses(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	// "The other process": the inbox's pass lock, held.
	unlock, ok, err := watcher.LockPath(filepath.Join(f.inbox, ".izdrop.lock"))
	if err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	type result struct {
		sum service.Summary
		err error
	}
	done := make(chan result, 1)
	go func() { sum, err := s.RunOnce(context.Background()); done <- result{sum, err} }()
	select {
	case r := <-done:
		t.Fatalf("run --once did not wait for the other pass: %+v %v", r.sum, r.err)
	case <-time.After(700 * time.Millisecond):
	}
	if n := len(f.sb.Received()); n != 0 {
		t.Fatalf("%d messages sent while another process was in a pass", n)
	}
	unlock()
	r := <-done
	if r.err != nil || r.sum.Done != 1 {
		t.Fatalf("after the other pass: %+v %v", r.sum, r.err)
	}
}

// A message whose answer was lost is resent after a restart with the bytes
// first sent, even when what would be encoded now differs (here izdrop's
// version in MSH-3): the registry sees a retry, not a new message under a
// used MSH-10.
func TestResendAfterRestartCarriesTheFirstBytes(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{RateDrop: 1})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	for _, v := range []string{"1.0", "1.1"} {
		s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: v})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := s.RunOnce(context.Background())
		s.Close()
		if v == "1.0" && (err != nil || sum.Pending != 1) {
			t.Fatalf("answers lost: %+v %v", sum, err)
		}
		if v == "1.1" && (err != nil || sum.Done != 1) {
			t.Fatalf("after the upgrade: %+v %v", sum, err)
		}
		f.sb.SetFaults(sandbox.Faults{})
	}
	st := f.sb.Stats()
	if st.ReusedControlIDs != 0 || st.Duplicates != 0 || st.Resends == 0 {
		t.Errorf("registry saw %d reused MSH-10s, %d duplicates, %d resends", st.ReusedControlIDs, st.Duplicates, st.Resends)
	}
}

// A file waiting for the registry that no longer reads as it did (its
// profile changed meanwhile) has its started messages finished from the
// journal, with their first bytes, and goes to failed/ saying so.
func TestAFileThatNoLongerReadsTheSameIsFinishedFromTheJournal(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{RateDrop: 1})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.RunOnce(context.Background())
	s.Close()
	if err != nil || sum.Pending != 1 {
		t.Fatalf("answers lost: %+v %v", sum, err)
	}
	started := f.sb.Stats().Messages - f.sb.Stats().Resends
	f.sb.SetFaults(sandbox.Faults{})
	f.cfg.Profiles = map[string]*config.Profile{"alt": {Delimiter: ";"}}
	f.cfg.Inboxes["clinic"].Profile = "alt"
	s = f.service(t)
	sum, err = s.RunOnce(context.Background())
	if err != nil || sum.Failed != 1 || sum.Pending != 0 {
		t.Fatalf("after the profile change: %+v %v", sum, err)
	}
	p, ok := f.archived("v.csv")
	if !ok || !strings.Contains(p, "/failed/") {
		t.Fatalf("archived at %s %v", p, ok)
	}
	sc := readSidecar(t, p)
	for _, r := range sc.Records {
		if r.Outcome == "" {
			t.Errorf("line %d archived without an outcome", r.Line)
		}
	}
	if len(sc.Records) == 0 {
		t.Error("the records handled are not in ack.json")
	}
	b, _ := os.ReadFile(p + ".error.txt")
	if !strings.Contains(string(b), "no longer reads") || !strings.Contains(string(b), "records had been handled") {
		t.Errorf("error.txt: %s", b)
	}
	st := f.sb.Stats()
	if st.ReusedControlIDs != 0 || st.Duplicates != 0 || st.Messages-st.Resends != started {
		t.Errorf("registry: %+v (first sends before: %d)", st, started)
	}
}

// A stop after the move into the archive, before the journal learnt of it,
// is finished at the next pass: markers filed, journal updated, nothing
// processed twice.
func TestAStopAfterTheMoveIsFinished(t *testing.T) {
	f := newFixture(t, `marker = "done"`, sandbox.Faults{})
	s := f.service(t)
	f.drop(t, "a.csv", example(t, "guardian.csv"))
	f.drop(t, "a.csv.done", nil)
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	s.Close()
	p, _ := f.archived("a.csv")
	// Undo the last steps: the marker back in work/, the journal back to
	// "archiving" - as if the process had stopped right after the move.
	work := filepath.Join(f.inbox, "work")
	db, err := sql.Open("sqlite", filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	var claim string
	if err := db.QueryRow(`SELECT claim FROM files`).Scan(&claim); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".done", filepath.Join(work, claim+"--a.csv.done")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE files SET state = 'archiving'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	calls := f.sb.Stats().Calls
	s = f.service(t)
	sum, err = s.RunOnce(context.Background())
	if err != nil || sum.Done != 1 || sum.Pending != 0 {
		t.Fatalf("restart: %+v %v", sum, err)
	}
	if _, err := os.Stat(p + ".done"); err != nil {
		t.Errorf("marker not filed: %v", err)
	}
	if ents, _ := os.ReadDir(work); len(ents) != 0 {
		t.Errorf("left in work/: %s", ents[0].Name())
	}
	if f.sb.Stats().Calls != calls {
		t.Error("the registry was called again")
	}
	var fs []string
	filepath.WalkDir(f.archive, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".csv") {
			fs = append(fs, path)
		}
		return nil
	})
	if len(fs) != 1 {
		t.Errorf("archived copies: %v", fs)
	}
	db, _ = sql.Open("sqlite", filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	defer db.Close()
	var state string
	db.QueryRow(`SELECT state FROM files`).Scan(&state)
	if state != "archived" {
		t.Errorf("journal state %q", state)
	}
}

// runOnce runs a fresh service once, as a restart does.
func runOnce(t *testing.T, f *fixture) service.Summary {
	t.Helper()
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sum
}

func journalFile(t *testing.T, f *fixture) (claim, state, work, errText string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT claim, state, work_path, error FROM files`).Scan(&claim, &state, &work, &errText); err != nil {
		t.Fatal(err)
	}
	return
}

func journalExec(t *testing.T, f *fixture, q string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// A stop inside a move that links (or copies) the file into the archive
// before removing it from work/ leaves both copies: the next pass removes
// the work/ one, having checked the archived copy is the file.
func TestAStopBetweenLinkAndRemoveIsFinished(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "a.csv", example(t, "guardian.csv"))
	if sum := runOnce(t, f); sum.Done != 1 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("a.csv")
	_, _, work, _ := journalFile(t, f)
	if err := os.Link(p, work); err != nil { // as a link move leaves it
		t.Fatal(err)
	}
	journalExec(t, f, `UPDATE files SET state = 'archiving'`)
	calls := f.sb.Stats().Calls
	if sum := runOnce(t, f); sum.Done != 1 || sum.Pending != 0 {
		t.Fatalf("restart: %+v", sum)
	}
	if exists(work) {
		t.Error("the work/ copy is still there")
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != string(example(t, "guardian.csv")) {
		t.Errorf("archived copy: %v", err)
	}
	if _, state, _, _ := journalFile(t, f); state != "archived" || f.sb.Stats().Calls != calls {
		t.Errorf("journal %s; %d registry calls after the restart", state, f.sb.Stats().Calls-calls)
	}
}

// A message started by an izdrop whose journal kept no bytes, in a file
// that no longer reads the same, cannot be sent again as it was: its
// records are marked unknown, for a person to check, and the file is filed
// instead of waiting forever.
func TestALostAnswerThatCannotBeResentIsMarkedUnknown(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{RateDrop: 1})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); sum.Pending != 1 {
		t.Fatalf("%+v", sum)
	}
	journalExec(t, f, `DELETE FROM outbox`) // no bytes kept, as in an older izdrop's journal
	f.sb.SetFaults(sandbox.Faults{})
	f.cfg.Profiles = map[string]*config.Profile{"alt": {Delimiter: ";"}}
	f.cfg.Inboxes["clinic"].Profile = "alt"
	sum := runOnce(t, f)
	if sum.Failed != 1 || sum.Pending != 0 || sum.Records["unknown"] == 0 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("v.csv")
	for _, r := range readSidecar(t, p).Records {
		if r.Outcome == "unknown" && (len(r.Errors) == 0 || r.Errors[0].Code != "answer-lost") {
			t.Errorf("line %d: unknown without saying why: %+v", r.Line, r.Errors)
		}
	}
}

// A file in work/ whose bytes changed since it was taken up is not read
// again as if it were the same file.
func TestAFileChangedInWorkIsNotReadAgain(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{RateDrop: 1})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); sum.Pending != 1 {
		t.Fatalf("%+v", sum)
	}
	_, _, work, _ := journalFile(t, f)
	b, _ := os.ReadFile(work)
	os.WriteFile(work, append(b, b[strings.IndexByte(string(b), '\n')+1:]...), 0o600) // rows added
	f.sb.SetFaults(sandbox.Faults{})
	sum := runOnce(t, f)
	if sum.Failed != 1 || sum.Pending != 0 {
		t.Fatalf("%+v", sum)
	}
	if _, _, _, e := journalFile(t, f); !strings.Contains(e, "not the one taken up") {
		t.Errorf("journal error %q", e)
	}
	if st := f.sb.Stats(); st.ReusedControlIDs != 0 || st.Duplicates != 0 {
		t.Errorf("registry %+v", st)
	}
}

// A file taken out of work/ by hand before it was archived is not waited
// for forever: the journal records what happened.
func TestAFileTakenOutOfWorkByHandIsNotWaitedFor(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	os.MkdirAll(f.inbox, 0o700)
	f.drop(t, "a.csv", example(t, "guardian.csv"))
	if sum := runOnce(t, f); sum.Done != 1 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("a.csv")
	os.Rename(p, filepath.Join(f.dir, "elsewhere.csv"))
	journalExec(t, f, `UPDATE files SET state = 'archiving'`)
	if sum := runOnce(t, f); sum.Pending != 0 {
		t.Fatalf("restart: %+v", sum)
	}
	if _, state, _, e := journalFile(t, f); state != "archived" || !strings.Contains(e, "left work/ outside izdrop") {
		t.Errorf("journal %s %q", state, e)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
