package service_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

// Every kind of bad input ends somewhere a person can see, says what is
// wrong with file, line and field, and delays no other file: all of them
// are dropped at once beside a good file, and one run settles everything.
func TestBadInputsEndVisiblyAndDelayNothing(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	good := example(t, "visit-administered.csv")
	lines := strings.Split(strings.TrimRight(string(good), "\n"), "\n")
	header, row := lines[0], lines[1]
	cases := []struct {
		name     string
		data     []byte
		result   string // done, failed, or "" (stays in the inbox)
		sidecar  string // in NAME.ack.json (or error.txt for failed files with no records)
		errorTxt string
	}{
		{name: "huge-field.csv", data: []byte(header + "\n" + strings.Replace(row, "Luz", strings.Repeat("x", 5<<20), 1) + "\n"),
			result: "failed", sidecar: `"code":"too-long"`},
		{name: "quote.csv", data: []byte(header + "\n" + strings.Replace(row, "Alvarez", `"Alvarez`, 1) + "\n" + strings.Repeat(strings.Replace(row, "V-2026-0001", "V-Q", 1)+"\n", 5)),
			result: "failed", sidecar: "opened at line 2"},
		{name: "cr-only.csv", data: []byte(header + "\r" + row + "\r"), result: "done", sidecar: "cr-line-ends"},
		{name: "semicolon.csv", data: []byte(strings.ReplaceAll(header, ",", ";") + "\n"), result: "failed", errorTxt: `set delimiter = ";"`},
		{name: "picture.csv", data: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"), result: "failed", errorTxt: "PNG image"},
		{name: "utf16.csv", data: append([]byte{0xff, 0xfe}, []byte("p\x00a\x00")...), result: "failed", errorTxt: "UTF-16"},
		{name: "header-only.csv", data: []byte(header + "\n"), result: "done", sidecar: "no-records"},
		{name: "empty.csv", data: nil, result: "done", sidecar: "no-records"},
		{name: "UPPER.CSV", data: []byte(header + "\n" + strings.Replace(row, "V-2026-0001", "V-UP-1", 1) + "\n"), result: "done"},
		{name: "good.csv", data: good, result: "done"},
	}
	for _, c := range cases {
		f.drop(t, c.name, c.data)
	}
	// Windows makes links only with a privilege; the rest holds there too.
	linked := runtime.GOOS != "windows" && os.Symlink(filepath.Join(f.inbox, "good.csv"), filepath.Join(f.inbox, "link.csv")) == nil
	var logs bytes.Buffer
	s, err := service.New(f.cfg, service.Options{Log: zerolog.New(zerolog.SyncWriter(&logs)), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		p, ok := f.archived(c.name)
		if !ok || !strings.Contains(filepath.ToSlash(p), "/"+c.result+"/") {
			t.Errorf("%s: filed at %q, want %s/", c.name, p, c.result)
			continue
		}
		if c.sidecar != "" {
			b, _ := os.ReadFile(p + ".ack.json")
			if !strings.Contains(string(b), c.sidecar) {
				t.Errorf("%s: ack.json lacks %q:\n%.2000s", c.name, c.sidecar, b)
			}
		}
		if c.errorTxt != "" {
			b, _ := os.ReadFile(p + ".error.txt")
			if !strings.Contains(string(b), c.errorTxt) || !strings.Contains(string(b), c.name) {
				t.Errorf("%s: error.txt lacks %q and the file's name:\n%s", c.name, c.errorTxt, b)
			}
		}
		if b, _ := os.ReadFile(p); !bytes.Equal(b, c.data) {
			t.Errorf("%s: not archived as it was dropped", c.name)
		}
	}
	// The oversized record is refused with its line and column, and never
	// reaches the registry.
	p, _ := f.archived("huge-field.csv")
	sc := readSidecar(t, p)
	if len(sc.Records) != 1 || sc.Records[0].Line != 2 || sc.Records[0].Outcome != "invalid" || sc.Records[0].Errors[0].Field != "PID-5.3" {
		t.Errorf("huge field: %+v", sc.Records)
	}
	if st := f.sb.Stats(); st.TooLarge != 0 || st.Calls > st.Submits {
		t.Errorf("the registry saw a too-large message or a probe: %+v", st)
	}
	// The link is not taken, and the log says why, once.
	if _, err := os.Lstat(filepath.Join(f.inbox, "link.csv")); linked && err != nil {
		t.Error("the link was taken")
	}
	if n := strings.Count(logs.String(), `"file":"link.csv","reason":"a symbolic link`); linked && n != 1 {
		t.Errorf("the link was reported %d times", n)
	}
	if strings.Contains(logs.String(), "Alvarez") || strings.Contains(logs.String(), "2024-03-14") {
		t.Error("patient data in the log")
	}
}

// A writer that pauses longer than the stability window between writes
// does not have its export taken half written: the file is still open for
// writing (Linux; elsewhere the stability window is all there is).
func TestAFileHeldOpenForWritingIsNotTaken(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("read leases are Linux's")
	}
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	good := example(t, "visit-administered.csv")
	w, err := os.Create(filepath.Join(f.inbox, "slow.csv"))
	if err != nil {
		t.Fatal(err)
	}
	half := bytes.IndexByte(good, '\n') + 1
	w.Write(good[:half])
	// Several stability windows (150ms) with no write: stable, yet open.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, ok := f.archived("slow.csv"); ok {
			t.Fatal("taken while its writer still had it open")
		}
		if _, err := os.Stat(filepath.Join(f.inbox, "slow.csv")); err != nil {
			t.Fatal("claimed while its writer still had it open")
		}
		time.Sleep(50 * time.Millisecond) // paces the checks while the writer pauses
	}
	w.Write(good[half:])
	w.Close()
	waitFor(t, "slow.csv archived", 10*time.Second, func() bool { _, ok := f.archived("slow.csv"); return ok })
	p, _ := f.archived("slow.csv")
	if sc := readSidecar(t, p); len(sc.Records) != 4 || sc.Counts["accepted"] != 4 {
		t.Errorf("the slow file: %+v", sc.Counts)
	}
}
