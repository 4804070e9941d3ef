//go:build linux

package pgtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// bindir finds the PostgreSQL server binaries: Debian's newest
// /usr/lib/postgresql/N/bin, else the PATH.
func bindir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, k int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[k])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func start() (*Server, string, error) {
	bin := bindir()
	if bin == "" {
		return nil, "no initdb in /usr/lib/postgresql/*/bin or on the PATH", nil
	}
	// As root, the cluster and the server belong to the postgres account.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "running as root and there is no postgres account to run the server as", nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "izdrop-pgtest-")
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*Server, string, error) { os.RemoveAll(dir); return nil, "", err }
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	s := &Server{Host: "127.0.0.1", User: "izdrop", Password: hex.EncodeToString(pw), dir: dir, logf: filepath.Join(dir, "postgres.log")}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
		return cmd
	}
	if cred != nil {
		os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", s.User, "--pwfile", pwfile, "--auth-host=scram-sha-256", "--auth-local=reject",
		"-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	os.Remove(pwfile)
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		s.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		log, err := os.OpenFile(s.logf, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return fail(err)
		}
		if cred != nil {
			os.Chown(s.logf, int(cred.Uid), int(cred.Gid))
		}
		// Small and quick to start: the tests' journals are small. fsync
		// stays on: the benchmark measures commits as they are.
		s.cmd = run("postgres", "-D", data, "-p", strconv.Itoa(s.Port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=", "-c", "max_connections=200", "-c", "shared_buffers=32MB",
			"-c", "max_wal_size=256MB", "-c", "log_min_messages=warning", "-c", "logging_collector=off")
		s.cmd.Stdout, s.cmd.Stderr = log, log
		if err := s.cmd.Start(); err != nil {
			log.Close()
			return fail(err)
		}
		s.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); log.Close(); close(done) }(s.cmd, s.done)
		err = s.waitReady(30 * time.Second)
		if err == nil {
			return s, "", nil
		}
		s.kill()
		if attempt == 2 {
			return fail(err)
		}
	}
}

func (s *Server) kill() {
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// stop shuts the server down (fast shutdown) and removes its folder.
func (s *Server) stop() {
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
	os.RemoveAll(s.dir)
}
