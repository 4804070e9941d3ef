package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func need(t *testing.T, cmd string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (apt-get install systemd)", cmd)
		}
		t.Skipf("%s is missing", cmd)
	}
}

func testSpec(t *testing.T) Spec {
	exe, err := os.Executable() // ExecStart must name an executable file
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: "izdrop-test", Description: "izdrop, immunization records to CAIR2", Executable: exe,
		Args: []string{"serve", "-config", "/etc/izdrop dir/config.toml"}, EnvFile: "/etc/izdrop/izdrop.env",
		StopTimeout: 60 * time.Second}
}

// systemd-analyze verify exits 0 on keys it ignores, so its warnings are
// read too: the only ones allowed name targets this machine lacks.
func TestUnitPassesSystemdAnalyzeVerify(t *testing.T) {
	need(t, "systemd-analyze")
	s := testSpec(t)
	s.User = "root"
	u, err := Unit(s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), s.Name+".service")
	os.WriteFile(p, []byte(u), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", p).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, u)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line != "" && !strings.Contains(line, "non-existent unit") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// Install and uninstall against another root: the real systemctl writes
// and removes the enable link without a running systemd.
func TestInstallEnablesTheUnitAndUninstallRemovesIt(t *testing.T) {
	need(t, "systemctl")
	s := testSpec(t)
	s.Root = t.TempDir()
	unit := filepath.Join(s.Root, "etc/systemd/system", s.Name+".service")
	wants := filepath.Join(s.Root, "etc/systemd/system/multi-user.target.wants", s.Name+".service")
	if st, err := Status(s); err != nil || st != "not installed" {
		t.Fatalf("status before: %q %v", st, err)
	}
	if err := Install(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(unit)
	if want, _ := Unit(s); err != nil || string(b) != want {
		t.Fatalf("installed unit %q %v", b, err)
	}
	if target, err := os.Readlink(wants); err != nil || !strings.HasSuffix(target, s.Name+".service") {
		t.Fatalf("not enabled: %q %v", target, err)
	}
	if st, err := Status(s); err != nil || st != "installed" {
		t.Errorf("status: %q %v", st, err)
	}
	if err := Install(s); err == nil || !strings.Contains(err.Error(), "uninstall first") {
		t.Errorf("a second install: %v", err)
	}
	if err := Uninstall(s); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{unit, wants} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}
