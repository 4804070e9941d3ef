//go:build unix

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/izdrop/izdrop/sandbox"
)

// sftpEnv adds an sftp inbox on a real sshd to an env's config.
func (e *env) addSFTPInbox(t *testing.T, s *sshd, remote string) {
	t.Helper()
	os.MkdirAll(remote, 0o700)
	b := mustRead(t, e.config)
	b = append(b, []byte(fmt.Sprintf(`
[inboxes.remote]
kind = "sftp"
host = "127.0.0.1"
port = %d
user = %q
key_file = %q
known_hosts = %q
path = %q
archive = "remote-archive"
site = "demo"
endpoint = "reg"
stable_for = "200ms"
rescan = "300ms"
`, s.port, s.User, s.KeyFile, s.KnownHosts, remote))...)
	os.WriteFile(e.config, b, 0o600)
}

func TestSFTPInboxOnOpenSSHPicksUpClaimsAndReturns(t *testing.T) {
	s := startSSHD(t)
	e := newEnv(t, sandbox.Faults{}, "200ms")
	remote := filepath.Join(t.TempDir(), "exports")
	e.addSFTPInbox(t, s, remote)
	os.WriteFile(filepath.Join(remote, "r1.csv"), csvFile("R1", 40), 0o644)
	os.WriteFile(filepath.Join(remote, "r2.csv"), csvFile("R2", 25), 0o644)
	out, err := e.run(t, "run", "--once")
	if err != nil {
		t.Fatalf("run --once: %v\n%s", err, out)
	}
	for _, n := range []string{"r1.csv", "r2.csv"} {
		m, _ := filepath.Glob(filepath.Join(remote, "done", "*", n+"*"))
		if len(m) != 3 { // the file, .ack.hl7, .ack.json
			t.Errorf("%s returned as %v", n, m)
		}
		if l, _ := filepath.Glob(filepath.Join(e.dir, "remote-archive", "done", "*", n)); len(l) != 1 {
			t.Errorf("%s not archived locally", n)
		}
	}
	perDose, resends := registryView(e.sb)
	if len(perDose) != 65 || resends != 0 {
		t.Errorf("%d doses, %d resends", len(perDose), resends)
	}
}

func TestSFTPRefusesAChangedHostKey(t *testing.T) {
	s := startSSHD(t)
	e := newEnv(t, sandbox.Faults{}, "200ms")
	remote := filepath.Join(t.TempDir(), "exports")
	e.addSFTPInbox(t, s, remote)
	os.WriteFile(filepath.Join(remote, "x.csv"), csvFile("X", 5), 0o644)
	// The server comes back with another key; known_hosts keeps the old one.
	s.kill()
	s.newHostKey()
	s.start()
	out, err := e.run(t, "run", "--once")
	var ee *exec.ExitError
	if err == nil || !strings.Contains(out, "HOST KEY CHANGED") || !strings.Contains(out, "SHA256:") {
		t.Fatalf("a changed host key was not refused: %v\n%s", err, out)
	}
	if errorsAs(err, &ee) && ee.ExitCode() == 0 {
		t.Error("exit status 0")
	}
	if _, err := os.Stat(filepath.Join(remote, "x.csv")); err != nil {
		t.Error("the file was touched on a server that failed the host key check")
	}
	if e.sb.Stats().Submits != 0 {
		t.Error("records were sent")
	}
}

func TestSFTPSurvivesSSHDRestartMidRun(t *testing.T) {
	s := startSSHD(t)
	e := newEnv(t, sandbox.Faults{Latency: time.Millisecond}, "200ms")
	remote := filepath.Join(t.TempDir(), "exports")
	e.addSFTPInbox(t, s, remote)
	total := 0
	for i := 0; i < 5; i++ {
		n := 300 + 200*i
		os.WriteFile(filepath.Join(remote, fmt.Sprintf("s%d.csv", i)), csvFile(fmt.Sprintf("S%d", i), n), 0o644)
		total += n
	}
	p := e.start(t, "serve-sftp", "serve")
	// Kill the server once izdrop has started on the files, twice.
	for k := 0; k < 2; k++ {
		waitFor(t, "a claim on the server", 60*time.Second, func() bool {
			m, _ := filepath.Glob(filepath.Join(remote, "work", "*"))
			return len(m) > 0
		})
		s.kill()
		t.Logf("sshd killed (%d doses received so far)", len(firstOf(registryView(e.sb))))
		time.Sleep(400 * time.Millisecond) // the server stays down a moment
		s.start()
	}
	waitFor(t, "every file returned", 120*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(remote, "done", "*", "s*.csv"))
		return len(m) == 5
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	perDose, resends := registryView(e.sb)
	if len(perDose) != total {
		t.Errorf("%d doses received, want %d", len(perDose), total)
	}
	for id, n := range perDose {
		if n != 1 {
			t.Errorf("dose %s sent %d times", id, n)
		}
	}
	if resends != 0 || e.sb.Stats().Duplicates != 0 {
		t.Errorf("%d resends, %d duplicates: a server restart must not resend records", resends, e.sb.Stats().Duplicates)
	}
	noPatientDataInLogs(t, e.dir)
}

func firstOf(m map[string]int, _ int) map[string]int { return m }

// run runs the binary to completion and returns its output.
func (e *env) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(izdrop(t), append(args, "-config", e.config)...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "IZDROP_E2E_PW=e2e-secret")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
