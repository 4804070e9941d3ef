//go:build unix

package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshd is a real OpenSSH server started by a test on a loopback port, with
// its own host key and one authorized client key.
type sshd struct {
	t          *testing.T
	bin, dir   string
	port       int
	cmd        *exec.Cmd
	done       chan struct{}
	KeyFile    string
	KnownHosts string
	User       string
	hostKey    string
}

// startSSHD starts sshd, or skips the test when it is not installed - and
// fails it instead when CI=true, where .ci/run installs openssh-server.
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		if _, e := os.Stat("/usr/sbin/sshd"); e == nil {
			bin = "/usr/sbin/sshd"
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("OpenSSH's sshd is required for this test (apt-get install openssh-server); .ci/run installs it")
		}
		t.Skip("sshd is not installed (apt-get install openssh-server)")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	dir := t.TempDir()
	s := &sshd{t: t, bin: bin, dir: dir, User: u.Username, KeyFile: filepath.Join(dir, "client_key"), KnownHosts: filepath.Join(dir, "known_hosts")}
	// The client's key, authorized.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "izdrop e2e")
	os.WriteFile(s.KeyFile, pem.EncodeToMemory(block), 0o600)
	spub, _ := ssh.NewPublicKey(pub)
	os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(spub), 0o600)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.newHostKey()
	s.writeKnownHosts()
	s.start()
	t.Cleanup(s.kill)
	return s
}

// newHostKey gives the server a fresh host key (it takes effect at the
// next start).
func (s *sshd) newHostKey() ssh.PublicKey {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := ssh.MarshalPrivateKey(priv, "izdrop e2e host")
	s.hostKey = filepath.Join(s.dir, fmt.Sprintf("host_%d", time.Now().UnixNano()))
	os.WriteFile(s.hostKey, pem.EncodeToMemory(block), 0o600)
	signer, _ := ssh.NewSignerFromKey(priv)
	return signer.PublicKey()
}

func (s *sshd) writeKnownHosts() {
	signer, err := ssh.ParsePrivateKey(mustRead(s.t, s.hostKey))
	if err != nil {
		s.t.Fatal(err)
	}
	line := knownhosts.Line([]string{net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))}, signer.PublicKey())
	os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600)
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *sshd) start() {
	cfg := filepath.Join(s.dir, "sshd_config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
`, s.port, s.hostKey, filepath.Join(s.dir, "sshd.pid"), filepath.Join(s.dir, "authorized_keys"))), 0o600)
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", cfg)
	log, _ := os.OpenFile(filepath.Join(s.dir, "sshd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); log.Close(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("sshd exited: %s", mustRead(s.t, filepath.Join(s.dir, "sshd.log")))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd does not listen: %s", mustRead(s.t, filepath.Join(s.dir, "sshd.log")))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills sshd and every session it runs (its process group), as a
// crash or reboot of the server would.
func (s *sshd) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}
