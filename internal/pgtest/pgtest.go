// Package pgtest runs a PostgreSQL server for tests: Debian's postgresql
// binaries, a cluster made by initdb in a temporary folder, listening on a
// loopback port only. One server serves a whole test binary (Main starts
// nothing; the first test that asks starts it, Main stops it); each test
// gets a database of its own (Database).
//
// PostgreSQL refuses to run as root: as root, the cluster belongs to the
// "postgres" account (which Debian's package creates) and the server runs
// as that account. Without PostgreSQL a test is skipped - and fails when
// CI=true, where .ci/run installs the postgresql package.
package pgtest

import (
	"context"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running PostgreSQL server.
type Server struct {
	Host     string // 127.0.0.1
	Port     int
	User     string // the superuser, with password Password
	Password string

	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	logf string
}

var (
	once    sync.Once
	srv     *Server
	srvErr  error
	skipWhy string
	dbs     atomic.Int64
)

// Main runs a test binary's tests and stops the server if one was started.
// Call it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if srv != nil {
		srv.stop()
	}
	return code
}

// Start returns the test binary's server, starting it on first use. It
// skips (or, under CI=true, fails) the test when PostgreSQL is missing.
func Start(tb testing.TB) *Server {
	tb.Helper()
	once.Do(func() { srv, skipWhy, srvErr = start() })
	if skipWhy != "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("PostgreSQL is required for this test: %s (apt-get install postgresql; .ci/run installs it)", skipWhy)
		}
		tb.Skipf("PostgreSQL is not installed: %s (apt-get install postgresql)", skipWhy)
	}
	if srvErr != nil {
		tb.Fatal(srvErr)
	}
	return srv
}

// Database creates an empty database for the test and returns its URL
// (without the password: see Server.Password) and the server.
func Database(tb testing.TB) (url string, s *Server) {
	tb.Helper()
	s = Start(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres")+"&password="+s.Password)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		tb.Fatal(err)
	}
	return s.URL(name), s
}

// URL is the URL of a database of the server, without the password.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", s.User, net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), db)
}

// Terminate ends every session on a database but the caller's, as a
// server restart or a network cut would for the clients.
func (s *Server) Terminate(tb testing.TB, db string) int {
	tb.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.URL("postgres")+"&password="+s.Password)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND pid != pg_backend_pid()`, db).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

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

// waitReady polls until the server accepts a login.
func (s *Server) waitReady(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres")+"&password="+s.Password)
		cancel()
		if err == nil {
			c.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			b, _ := os.ReadFile(s.logf)
			return fmt.Errorf("postgres exited: %s", b)
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.logf)
			return fmt.Errorf("postgres does not answer: %v\n%s", err, b)
		}
		time.Sleep(50 * time.Millisecond)
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
