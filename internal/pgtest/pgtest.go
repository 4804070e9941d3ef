// Package pgtest runs a PostgreSQL server for tests: Debian's postgresql
// binaries, a cluster made by initdb in a temporary folder, listening on a
// loopback port only. One server serves a whole test binary (Main starts
// nothing; the first test that asks starts it, Main stops it); each test
// gets a database of its own (Database).
//
// PostgreSQL refuses to run as root: as root, the cluster belongs to the
// "postgres" account (which Debian's package creates) and the server runs
// as that account. Without PostgreSQL a test is skipped - and fails when
// CI=true, where .ci/run installs the postgresql package. Servers are
// started on Linux only: the Windows build's tests (under Wine) and macOS
// skip what needs one; the PostgreSQL journal's code is the same there.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
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

// onCI reports CI=true: a missing PostgreSQL fails the tests there.
func onCI() bool { return os.Getenv("CI") == "true" }

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
		if onCI() && runtime.GOOS == "linux" {
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
