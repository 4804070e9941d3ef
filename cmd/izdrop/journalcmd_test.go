package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/izdrop/izdrop/internal/pgtest"
)

// TestMain makes the test binary izdrop itself when IZDROP_TEST_MAIN is
// set (a test's izdrop bench starts it as the run it measures).
func TestMain(m *testing.M) {
	if os.Getenv("IZDROP_TEST_MAIN") != "" {
		main()
	}
	os.Exit(pgtest.Main(m))
}

// One host's SQLite journal moves into PostgreSQL: journal migrate copies
// it, and the commands read it there once [journal] url is set; a second
// copy is refused.
func TestJournalMigrate(t *testing.T) {
	dir := copyExamples(t, "visit-administered.csv")
	cfg := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), `listen = "127.0.0.1:8931"`, `listen = "127.0.0.1:0"`, 1)
	os.WriteFile(cfg, []byte(s), 0o600)
	os.MkdirAll(filepath.Join(dir, "var", "inbox"), 0o700)
	os.Rename(filepath.Join(dir, "visit-administered.csv"), filepath.Join(dir, "var", "inbox", "visit-administered.csv"))
	if code, out, errs := runIn(t, dir, "run", "--once"); code != exitOK {
		t.Fatalf("run --once: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runIn(t, dir, "journal", "migrate"); code != exitUsage || !strings.Contains(errs, "no url") {
		t.Errorf("migrate without a url: exit %d: %s", code, errs)
	}
	url, srv := pgtest.Database(t)
	t.Setenv("IZDROP_TEST_JOURNAL_PW", srv.Password)
	os.WriteFile(cfg, []byte(s+"\n[journal]\nurl = \""+url+"\"\npassword_env = \"IZDROP_TEST_JOURNAL_PW\"\n"), 0o600)
	code, out, errs := runIn(t, dir, "journal", "migrate")
	if code != exitOK || !strings.Contains(out, "copied 1 files, 2 messages, 4 records, 4 acceptances") {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, srv.Password) {
		t.Error("the password is printed")
	}
	// The commands now read the PostgreSQL journal.
	os.Rename(filepath.Join(dir, "var", "journal.db"), filepath.Join(dir, "var", "old-journal.db"))
	if code, out, _ := runIn(t, dir, "find", "visit-administered.csv"); code != exitOK || !strings.Contains(out, "records: 4 accepted") {
		t.Errorf("find after the move: exit %d\n%s", code, out)
	}
	if code, out, _ := runIn(t, dir, "status"); code != exitOK || !strings.Contains(out, "accepted") {
		t.Errorf("status after the move: exit %d\n%s", code, out)
	}
	if code, _, errs := runIn(t, dir, "journal", "migrate", "-from", filepath.Join(dir, "var", "old-journal.db")); code != exitFailure || !strings.Contains(errs, "not empty") {
		t.Errorf("a second copy: exit %d: %s", code, errs)
	}
}
