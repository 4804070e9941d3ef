package service_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/internal/sshtest"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

func sftpConfig(t *testing.T, srv *sshtest.Server, sb *sandbox.Server, remote, local string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("IZDROP_TEST_PW", "pw-e2e")
	doc := fmt.Sprintf(`
[service]
data_dir = %q
[sites.demo]
id = "DEMO01"
region = "CAIRBA"
[endpoints.reg]
environment = "staging"
url = %q
username = "sandbox"
facility_id = "sandbox"
password_env = "IZDROP_TEST_PW"
[inboxes.remote]
kind = "sftp"
host = %q
port = %d
user = "izdrop"
key_file = %q
known_hosts = %q
path = %q
archive = %q
site = "demo"
endpoint = "reg"
stable_for = "100ms"
rescan = "300ms"
`, filepath.Join(dir, "var"), sb.URL2011(), srv.Host, srv.Port, srv.KeyFile, srv.KnownHosts, remote, local)
	cfg, err := config.Parse([]byte(doc), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestSFTPInboxPickupClaimArchiveAndReturn(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	sb, _ := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
	defer sb.Close()
	remote, local := t.TempDir(), t.TempDir()
	cfg := sftpConfig(t, srv, sb, remote, local)
	s, err := service.New(cfg, service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	os.WriteFile(filepath.Join(remote, "visit.csv"), example(t, "visit-administered.csv"), 0o644)
	os.WriteFile(filepath.Join(remote, "mixed.csv"), example(t, "mixed-with-errors.csv"), 0o644)
	os.WriteFile(filepath.Join(remote, "skip.txt"), []byte("not a pattern match? (*.txt is)"), 0o644)
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 1 || sum.Failed != 2 {
		t.Fatalf("%+v %v", sum, err)
	}
	// Filed locally...
	for _, name := range []string{"visit.csv", "mixed.csv"} {
		if m, _ := filepath.Glob(filepath.Join(local, "*", "*", name)); len(m) != 1 {
			t.Errorf("%s not archived locally", name)
		}
	}
	// ... and returned to the server with its sidecars, for the EHR side.
	done, _ := filepath.Glob(filepath.Join(remote, "done", "*", "visit.csv*"))
	failed, _ := filepath.Glob(filepath.Join(remote, "failed", "*", "mixed.csv*"))
	if len(done) != 3 || len(failed) != 4 {
		t.Fatalf("remote done %v, failed %v", done, failed)
	}
	if ents, _ := os.ReadDir(filepath.Join(remote, "work")); len(ents) != 0 {
		t.Errorf("left in the remote work/: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(local, "work")); len(ents) != 0 {
		t.Errorf("left in the local work/: %v", ents)
	}
	receivedOnce(t, sb)
}

func TestSFTPInboxMissingFolderIsAnErrorAtStart(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	sb, _ := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
	defer sb.Close()
	missing := filepath.Join(t.TempDir(), "not-there")
	_, err := service.New(sftpConfig(t, srv, sb, missing, t.TempDir()), service.Options{Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "inbox remote") {
		t.Fatalf("err = %v", err)
	}
}

func TestSFTPConnectionDropsMidRun(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	sb, _ := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
	defer sb.Close()
	remote, local := t.TempDir(), t.TempDir()
	s, err := service.New(sftpConfig(t, srv, sb, remote, local), service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 6; i++ {
		b := strings.ReplaceAll(string(example(t, "historical.csv")), "H-0003-", fmt.Sprintf("H%d-", i))
		b = strings.ReplaceAll(b, "MRN10003", fmt.Sprintf("MRN2000%d", i))
		os.WriteFile(filepath.Join(remote, fmt.Sprintf("h%d.csv", i)), []byte(b), 0o644)
	}
	srv.SetDelay(2 * 1e6) // 2ms per packet: the run takes long enough to be cut
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for i := 0; i < 3 && ctx.Err() == nil; i++ {
			waitFor(t, "a connection", 10e9, func() bool { return srv.Connections() > 0 })
			srv.DropAll()
		}
	}()
	waitFor(t, "every file returned", 30e9, func() bool {
		s.RunOnce(context.Background())
		m, _ := filepath.Glob(filepath.Join(remote, "done", "*", "h*.csv"))
		return len(m) == 6
	})
	seen := receivedOnce(t, sb)
	if len(seen) != 24 {
		t.Errorf("%d doses received, want 24", len(seen))
	}
}

// A stop after the local move into the archive, before the journal learnt
// of it, with the remote copy still in the remote work/: the next pass
// neither downloads the file again nor leaves it stuck; it files the
// journal entry and returns the remote copy.
func TestSFTPStopAfterTheLocalMoveIsFinished(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	sb, _ := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
	defer sb.Close()
	remote, local := t.TempDir(), t.TempDir()
	cfg := sftpConfig(t, srv, sb, remote, local)
	// Keeping the remote copy in work/ stands for "stopped before the
	// return".
	no := false
	cfg.Inboxes["remote"].RemoteArchive = &no
	s, err := service.New(cfg, service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(remote, "visit.csv"), example(t, "visit-administered.csv"), 0o644)
	if sum, err := s.RunOnce(context.Background()); err != nil || sum.Done != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE files SET state = 'archiving'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	yes := true
	cfg.Inboxes["remote"].RemoteArchive = &yes
	calls := sb.Stats().Calls
	s, err = service.New(cfg, service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Pending != 0 || sum.Done != 1 {
		t.Fatalf("restart: %+v %v", sum, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(local, "work")); len(ents) != 0 {
		t.Errorf("a copy was downloaded again into the local work/: %s", ents[0].Name())
	}
	if ents, _ := os.ReadDir(filepath.Join(remote, "work")); len(ents) != 0 {
		t.Errorf("left in the remote work/: %s", ents[0].Name())
	}
	if m, _ := filepath.Glob(filepath.Join(remote, "done", "*", "visit.csv")); len(m) != 1 {
		t.Error("not returned to the remote done/")
	}
	if m, _ := filepath.Glob(filepath.Join(local, "*", "*", "visit*.csv")); len(m) != 1 {
		t.Errorf("local archive copies: %v", m)
	}
	if sb.Stats().Calls != calls {
		t.Error("the registry was called again")
	}
}
