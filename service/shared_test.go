package service_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/internal/pgtest"
	"github.com/izdrop/izdrop/internal/sshtest"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/watcher"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// postgres points a configuration at a new PostgreSQL journal, its
// password in an environment variable, and returns a handle of "another
// host" on it.
func postgres(t *testing.T, cfgs ...*config.Config) *journal.PG {
	t.Helper()
	url, s := pgtest.Database(t)
	t.Setenv("IZDROP_TEST_DB_PW", s.Password)
	for _, c := range cfgs {
		c.Journal = config.Journal{URL: url, PasswordEnv: "IZDROP_TEST_DB_PW"}
	}
	other, err := journal.OpenPostgres(context.Background(), url, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// anotherHost is a copy of a configuration with a data folder of its own.
func anotherHost(t *testing.T, c *config.Config) *config.Config {
	c2 := *c
	c2.Service.DataDir = filepath.Join(t.TempDir(), "var")
	return &c2
}

// With a PostgreSQL journal, the pass lock of an inbox is the journal's:
// a pass held by another host keeps run --once waiting, and the lock file
// is not what counts.
func TestPassesTakeTurnsAcrossHostsThroughThePostgresJournal(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	other := postgres(t, f.cfg)
	s := f.service(t)
	held, ok, err := other.TryLock(context.Background(), "pass:clinic")
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
		t.Fatalf("run --once did not wait for the other host's pass: %+v %v", r.sum, r.err)
	case <-time.After(700 * time.Millisecond):
	}
	if n := len(f.sb.Received()); n != 0 {
		t.Fatalf("%d messages sent while another host was in a pass", n)
	}
	// The lock file of this machine is free all along.
	if unlock, ok, err := watcher.LockPath(filepath.Join(f.inbox, ".izdrop.lock")); err != nil || !ok {
		t.Errorf("the lock file was taken: %v %v", ok, err)
	} else {
		unlock()
	}
	held.Unlock()
	r := <-done
	if r.err != nil || r.sum.Done != 1 {
		t.Fatalf("after the other pass: %+v %v", r.sum, r.err)
	}
	// What this host did, another host's handle on the journal sees.
	if fs, err := other.FilesByName(context.Background(), "v.csv"); err != nil || len(fs) != 1 || fs[0].State != journal.Archived {
		t.Errorf("the other host sees %+v %v", fs, err)
	}
}

// A claimed file another host is working on (its processing lock held in
// the journal) keeps the newer files waiting, as on one machine.
func TestANewerFileWaitsForAnOlderOneHeldByAnotherHost(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	other := postgres(t, f.cfg)
	s := f.service(t)
	work := filepath.Join(f.inbox, "work")
	os.MkdirAll(work, 0o700)
	id := watcher.NewClaimID(time.Now().Add(-time.Minute))
	os.WriteFile(filepath.Join(work, id+"--a.csv"), example(t, "visit-administered.csv"), 0o600)
	held, ok, err := other.TryLock(context.Background(), "file:"+id)
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
	held.Unlock()
	sum, err = s.RunOnce(context.Background())
	if err != nil || sum.Done != 2 || sum.Pending != 0 {
		t.Fatalf("after release: %+v %v", sum, err)
	}
}

// A host that filed an SFTP file in its own archive and stopped before
// returning it to the server leaves it in the remote work/: another host
// sharing the journal files it again in its archive, sidecars and all,
// from the journal - the registry is not called again - and returns it.
// One that stopped mid-archiving is finished the same way.
func TestAnotherHostFinishesAnSFTPFileADeadHostArchived(t *testing.T) {
	for _, state := range []string{journal.Archived, journal.Archiving} {
		t.Run(state, func(t *testing.T) {
			srv := sshtest.Start(t, sshtest.Options{})
			sb, _ := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
			defer sb.Close()
			remote, localA, localB := t.TempDir(), t.TempDir(), t.TempDir()
			a := sftpConfig(t, srv, sb, remote, localA)
			b := sftpConfig(t, srv, sb, remote, localB)
			other := postgres(t, a, b)
			no := false
			a.Inboxes["remote"].RemoteArchive = &no // host A "dies" before the return
			sa, err := service.New(a, service.Options{Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(remote, "visit.csv"), example(t, "visit-administered.csv"), 0o644)
			if sum, err := sa.RunOnce(context.Background()); err != nil || sum.Done != 1 {
				t.Fatalf("host A: %+v %v", sum, err)
			}
			sa.Close()
			fs, _ := other.FilesByName(context.Background(), "visit.csv")
			if len(fs) != 1 {
				t.Fatalf("journal: %+v", fs)
			}
			if state == journal.Archiving {
				other.SetFile(context.Background(), fs[0].Claim, journal.Archiving, "", "", "")
			}
			calls := sb.Stats().Calls
			sb2, err := service.New(b, service.Options{Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			defer sb2.Close()
			if sum, err := sb2.RunOnce(context.Background()); err != nil || sum.Pending != 0 || sum.Done != 1 {
				t.Fatalf("host B: %+v %v", sum, err)
			}
			if sb.Stats().Calls != calls {
				t.Error("the registry was called again")
			}
			if ents, _ := os.ReadDir(filepath.Join(remote, "work")); len(ents) != 0 {
				t.Errorf("left in the remote work/: %s", ents[0].Name())
			}
			m, _ := filepath.Glob(filepath.Join(remote, "done", "*", "visit.csv*"))
			if len(m) != 3 {
				t.Errorf("returned to the remote done/: %v (want the file and its two sidecars)", m)
			}
			archived, _ := filepath.Glob(filepath.Join(localB, "done", "*", "visit.csv"))
			if len(archived) != 1 {
				t.Fatalf("host B's archive: %v", archived)
			}
			sc := readSidecar(t, archived[0])
			if sc.Counts["accepted"] != 4 || len(sc.Records) != 4 || sc.Records[0].MSH10 == "" {
				t.Errorf("host B's sidecar: %+v", sc)
			}
			if f, _ := other.GetFile(context.Background(), fs[0].Claim); f.State != journal.Archived || f.ArchivePath != archived[0] {
				t.Errorf("journal: %+v", f)
			}
			// Host A's archive is A's: B touched nothing there.
			if m, _ := filepath.Glob(filepath.Join(localA, "done", "*", "visit.csv")); len(m) != 1 {
				t.Errorf("host A's archive: %v", m)
			}
		})
	}
}

// A pass whose lock in the journal is lost - the database ended the
// sessions, as a restart or a network cut would - stops, as on a stop
// request: another host may take the inbox over. The next pass finishes
// the file, each record reaching the registry once.
func TestAPassWhoseLockIsLostStops(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{Latency: 20 * time.Millisecond})
	url, srv := pgtest.Database(t)
	t.Setenv("IZDROP_TEST_DB_PW", srv.Password)
	f.cfg.Journal = config.Journal{URL: url, PasswordEnv: "IZDROP_TEST_DB_PW"}
	s := f.service(t)
	const n = 400
	f.drop(t, "many.csv", patients(t, n))
	type result struct {
		sum service.Summary
		err error
	}
	done := make(chan result, 1)
	go func() { sum, err := s.RunOnce(context.Background()); done <- result{sum, err} }()
	waitFor(t, "the pass at work", 30*time.Second, func() bool { return len(f.sb.Received()) >= 20 })
	atLoss := len(f.sb.Received())
	srv.Terminate(t, url[strings.LastIndex(url, "/")+1:strings.Index(url, "?")])
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pass went on after its lock was lost")
	}
	got := len(f.sb.Received())
	if r.sum.Done != 0 || got >= n {
		t.Fatalf("the pass finished anyway: %+v %v, %d messages", r.sum, r.err, got)
	}
	t.Logf("stopped after %d of %d messages, %d after the lock was lost: %+v %v", got, n, got-atLoss, r.sum, r.err)
	// What was journalled before the loss may still go out (at most the 64
	// messages the pass journals ahead, and the 4 in flight): it is started,
	// and a host taking over would resend it with the same MSH-10. Nothing
	// is started after.
	if got-atLoss > 64+4+4 {
		t.Errorf("%d messages went out after the lock was lost", got-atLoss)
	}
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 1 || sum.Pending != 0 {
		t.Fatalf("the next pass: %+v %v", sum, err)
	}
	if seen := receivedOnce(t, f.sb); len(seen) != n {
		t.Errorf("%d doses received, want %d", len(seen), n)
	}
}
