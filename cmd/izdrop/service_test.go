package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestServiceUnitRunsServeWithTheAbsoluteConfig(t *testing.T) {
	dir := copyExamples(t)
	if runtime.GOOS == "windows" {
		// Checked before the service control manager is asked anything.
		if code, _, errs := runIn(t, dir, "service", "install", "-config", "config.toml"); code != exitUsage || !strings.Contains(errs, "set log_file in [service]") {
			t.Errorf("install without log_file on Windows: exit %d %s", code, errs)
		}
		return // the unit is systemd's
	}
	code, out, errs := runIn(t, dir, "service", "unit", "-config", "config.toml", "-user", "izdrop")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	abs, _ := filepath.EvalSymlinks(dir)
	cfg := filepath.Join(abs, "config.toml")
	for _, want := range []string{" serve -config " + cfg + "\n", "User=izdrop\n", "EnvironmentFile=-" + filepath.Join(abs, "izdrop.env") + "\n", "TimeoutStopSec=60\n"} {
		if !strings.Contains(out, want) && !strings.Contains(out, strings.ReplaceAll(want, abs, dir)) {
			t.Errorf("unit lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := runIn(t, dir, "service", "unit", "-config", "missing.toml"); code != exitUsage || !strings.Contains(errs, "missing.toml") {
		t.Errorf("a missing config: exit %d %s", code, errs)
	}
	if code, _, _ := runIn(t, dir, "service", "restart"); code != exitUsage {
		t.Errorf("an unknown action: exit %d", code)
	}
}

// With log_file the logs go to the file, as JSON lines, and stderr only
// says where they went.
func TestLogFileReceivesTheLogs(t *testing.T) {
	dir := copyExamples(t, "visit-administered.csv")
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	cfg = []byte(strings.Replace(string(cfg), "[service]\n", "[service]\nlog_file = \"logs/izdrop.log\"\nlog_max_size_mb = 1\nlog_backups = 2\n", 1))
	cfg = []byte(strings.Replace(string(cfg), `listen = "127.0.0.1:8931"`, `listen = "127.0.0.1:0"`, 1))
	os.WriteFile(filepath.Join(dir, "config.toml"), cfg, 0o600)
	os.MkdirAll(filepath.Join(dir, "var", "inbox"), 0o700)
	b, _ := os.ReadFile(filepath.Join(dir, "visit-administered.csv"))
	os.WriteFile(filepath.Join(dir, "var", "inbox", "v.csv"), b, 0o600)
	code, out, errs := runIn(t, dir, "run", "--once")
	if code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, out, errs)
	}
	logPath := filepath.Join(dir, "logs", "izdrop.log")
	if strings.TrimSpace(errs) != "izdrop: logging to "+logPath {
		t.Errorf("stderr %q: want only where the logs go", errs)
	}
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	archived := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON log line: %q", sc.Text())
		}
		archived = archived || line["message"] == "file archived" && line["file"] == "v.csv"
	}
	if !archived {
		t.Error("the log file does not say v.csv was archived")
	}
	if st, _ := f.Stat(); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", st.Mode().Perm())
	}
}
