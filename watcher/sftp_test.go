package watcher

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/izdrop/izdrop/internal/sshtest"
)

func newSFTP(t *testing.T, srv *sshtest.Server, path string, tune func(*SFTPConfig)) *SFTP {
	t.Helper()
	cfg := SFTPConfig{Host: srv.Host, Port: srv.Port, User: "izdrop", KeyFile: srv.KeyFile, KnownHosts: srv.KnownHosts, Path: path, Log: zerolog.Nop()}
	if tune != nil {
		tune(&cfg)
	}
	s, err := NewSFTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestSFTPListClaimDownloadReturn(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	root := t.TempDir()
	inbox := filepath.Join(root, "inbox")
	os.MkdirAll(filepath.Join(inbox, "sub"), 0o700)
	os.WriteFile(filepath.Join(inbox, "a.csv"), []byte("patient_id\n1\n"), 0o600)
	os.WriteFile(filepath.Join(inbox, "a.csv.done"), nil, 0o600)
	os.WriteFile(filepath.Join(root, "secret.csv"), []byte("outside"), 0o600)
	// A link leading out of the inbox. Not on Windows, where the SFTP
	// server (the EHR's, here one in the test process) is not izdrop's and
	// symlinks need a privilege: the check is on the server's side of a
	// unix one.
	linked := runtime.GOOS != "windows"
	if linked {
		if err := os.Symlink(filepath.Join(root, "secret.csv"), filepath.Join(inbox, "link.csv")); err != nil {
			t.Fatal(err)
		}
	}
	s := newSFTP(t, srv, inbox, nil)
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	ents, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name+"/"+e.Kind)
	}
	// The link and the folder are listed only to be reported as not taken.
	want := "a.csv/,a.csv.done/,sub/folder,work/folder"
	if linked {
		want = "a.csv/,a.csv.done/,link.csv/symlink,sub/folder,work/folder"
	}
	if strings.Join(names, ",") != want {
		t.Fatalf("listed %v, want %s", names, want)
	}
	tr := NewTracker(Rules{Patterns: []string{"*.csv"}, Marker: "done"})
	if r, _ := tr.Update(ents, time.Now()); len(r) != 0 {
		t.Fatalf("taken at first sight: %v", r)
	}
	if _, err := s.Claim(ctx, "../secret.csv", "", time.Now()); err == nil {
		t.Fatal("a name outside the inbox was claimed")
	}
	if _, err := s.Claim(ctx, "link.csv", "", time.Now()); linked && (err == nil || !strings.Contains(err.Error(), "not a regular file")) {
		t.Fatalf("a link was claimed: %v", err)
	}
	rc, err := s.Claim(ctx, "a.csv", "done", time.Now())
	if err != nil || len(rc.Markers) != 1 {
		t.Fatalf("claim: %+v %v", rc, err)
	}
	if _, err := s.Claim(ctx, "a.csv", "done", time.Now()); !errors.Is(err, ErrGone) {
		t.Fatalf("second claim: %v", err)
	}
	local := filepath.Join(t.TempDir(), "w", rc.ID+"--a.csv")
	if err := s.Download(ctx, rc.Path, local); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(local); string(b) != "patient_id\n1\n" {
		t.Fatalf("downloaded %q", b)
	}
	work, _ := s.WorkFiles(ctx)
	if len(work) != 1 || work[0].ID != rc.ID || len(work[0].Markers) != 1 {
		t.Fatalf("work files %+v", work)
	}
	sidecar := filepath.Join(filepath.Dir(local), "a.csv.ack.json")
	os.WriteFile(sidecar, []byte(`{"result":"done"}`), 0o600)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	os.MkdirAll(filepath.Join(inbox, "done", "2026-11-25"), 0o700)
	os.WriteFile(filepath.Join(inbox, "done", "2026-11-25", "a.csv"), []byte("an older a.csv"), 0o600)
	dst, err := s.Return(ctx, work[0], "done", day, "a.csv", []string{sidecar})
	if err != nil || !strings.HasSuffix(dst, "/done/2026-11-25/a-1.csv") {
		t.Fatalf("return to %s: %v", dst, err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "patient_id\n1\n" {
		t.Error("the returned file is not the original")
	}
	if b, _ := os.ReadFile(dst + ".ack.json"); string(b) != `{"result":"done"}` {
		t.Errorf("sidecar %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(inbox, "done", "2026-11-25", "a.csv")); string(b) != "an older a.csv" {
		t.Error("an existing file was overwritten")
	}
	if _, err := os.Stat(dst + ".done"); err != nil {
		t.Errorf("marker not returned: %v", err)
	}
	// A link put into work/ behind izdrop's back is never downloaded.
	if !linked {
		return
	}
	os.Symlink(filepath.Join(root, "secret.csv"), filepath.Join(inbox, "work", "x--y.csv"))
	if err := s.Download(ctx, filepath.Join(inbox, "work", "x--y.csv"), filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a link was downloaded: %v", err)
	}
}

func TestSFTPDownloadResumesAfterADrop(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	data := make([]byte, 3<<20)
	rand.Read(data)
	os.WriteFile(filepath.Join(dir, "big.csv"), data, 0o600)
	s := newSFTP(t, srv, dir, nil)
	srv.SetDelay(3 * time.Millisecond)
	local := filepath.Join(t.TempDir(), "big.csv")
	done := make(chan error, 1)
	go func() { done <- s.Download(context.Background(), filepath.Join(dir, "big.csv"), local) }()
	// Cut the connection once part of the file has arrived.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(local + ".part"); err == nil && st.Size() > 256<<10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the download did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(local); err == nil {
		t.Fatal("the file appeared before it was complete")
	}
	srv.DropAll()
	srv.SetDelay(0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(local)
	if !bytes.Equal(got, data) {
		t.Fatalf("resumed download differs (%d of %d bytes)", len(got), len(data))
	}
	if _, err := os.Stat(local + ".part"); !os.IsNotExist(err) {
		t.Error("the part file was left")
	}
}

func TestSFTPHostKeyChecks(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	other := sshtest.Start(t, sshtest.Options{})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Unknown: an empty known_hosts.
	empty := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(empty, nil, 0o600)
	s := newSFTP(t, srv, dir, func(c *SFTPConfig) { c.KnownHosts = empty })
	err := s.Check(ctx)
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "unknown") || !strings.Contains(err.Error(), "SHA256:") {
		t.Fatalf("unknown key: %v", err)
	}
	// Changed: known_hosts names another key for this address.
	changed := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(changed, []byte(knownhosts.Line([]string{srv.Addr}, other.HostKey)+"\n"), 0o600)
	s = newSFTP(t, srv, dir, func(c *SFTPConfig) { c.KnownHosts = changed })
	err = s.Check(ctx)
	if !errors.Is(err, ErrHostKey) || !strings.Contains(err.Error(), "HOST KEY CHANGED") || strings.Count(err.Error(), "SHA256:") != 2 {
		t.Fatalf("changed key: %v", err)
	}
	// The test-only escape hatch connects, and says so on every connect.
	var logs bytes.Buffer
	s = newSFTP(t, srv, dir, func(c *SFTPConfig) {
		c.KnownHosts = empty
		c.InsecureIgnoreHostKey = true
		c.Log = zerolog.New(&logs)
	})
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	srv.DropAll()
	if _, err := s.List(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "NOT checked"); n < 2 {
		t.Errorf("%d insecure warnings for two connects:\n%s", n, logs.String())
	}
}

func TestSFTPCheckRefusesMissingOrReadOnlyInbox(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "nope")
	if err := newSFTP(t, srv, missing, nil).Check(ctx); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing folder: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if err := newSFTP(t, srv, file, nil).Check(ctx); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Fatalf("a file as inbox: %v", err)
	}
	mem := sftp.InMemHandler()
	ro := sftp.Handlers{FileGet: mem.FileGet, FileList: mem.FileList, FilePut: denyPut{}, FileCmd: denyCmd{}}
	rosrv := sshtest.Start(t, sshtest.Options{Handlers: &ro})
	if err := newSFTP(t, rosrv, "/", nil).Check(ctx); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("read-only server: %v", err)
	}
}

type denyPut struct{}

func (denyPut) Filewrite(*sftp.Request) (io.WriterAt, error) {
	return nil, sftp.ErrSSHFxPermissionDenied
}

type denyCmd struct{}

func (denyCmd) Filecmd(*sftp.Request) error { return sftp.ErrSSHFxPermissionDenied }

func TestValidName(t *testing.T) {
	for _, n := range []string{"", ".", "..", "../x", "a/b", `a\b`, "..hidden", "x\x00y"} {
		if validName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
	for _, n := range []string{"a.csv", "export 2026-11-25.csv", "x..y.csv"} {
		if validName(n) != nil {
			t.Errorf("%q refused", n)
		}
	}
}

// Return looks for a free name in a crowded day folder while the connection
// drops: it reconnects and ends, or gives up when its context ends, rather
// than spinning on "connection lost".
func TestSFTPReturnSurvivesADropWhileLookingForAName(t *testing.T) {
	srv := sshtest.Start(t, sshtest.Options{})
	inbox := t.TempDir()
	os.WriteFile(filepath.Join(inbox, "a.csv"), []byte("x\n"), 0o600)
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	dd := filepath.Join(inbox, "done", "2026-11-25")
	os.MkdirAll(dd, 0o700)
	os.WriteFile(filepath.Join(dd, "a.csv"), nil, 0o600)
	const taken = 600
	for i := 1; i < taken; i++ {
		os.WriteFile(filepath.Join(dd, fmt.Sprintf("a-%d.csv", i)), nil, 0o600)
	}
	s := newSFTP(t, srv, inbox, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc, err := s.Claim(ctx, "a.csv", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetDelay(time.Millisecond)
	type result struct {
		dst string
		err error
	}
	done := make(chan result, 1)
	go func() { dst, err := s.Return(ctx, rc, "done", day, "a.csv", nil); done <- result{dst, err} }()
	time.Sleep(100 * time.Millisecond)
	srv.DropAll()
	select {
	case r := <-done:
		if r.err != nil || filepath.Base(r.dst) != fmt.Sprintf("a-%d.csv", taken) {
			t.Fatalf("returned to %q: %v", r.dst, r.err)
		}
		if b, err := os.ReadFile(filepath.Join(dd, filepath.Base(r.dst))); err != nil || string(b) != "x\n" {
			t.Errorf("returned file %q %v", b, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Return still running 10 s after its context ended")
	}
	// With the context ended, Return gives up at once.
	os.WriteFile(filepath.Join(inbox, "b.csv"), []byte("y\n"), 0o600)
	rc, err = s.Claim(context.Background(), "b.csv", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ended, stop := context.WithCancel(context.Background())
	stop()
	if _, err := s.Return(ended, rc, "done", day, "b.csv", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Return with an ended context: %v", err)
	}
}
