package archive

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

func TestCleanRemovesLeftoversOnly(t *testing.T) {
	root := t.TempDir()
	day := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(root, "done", "2026-11-30")
	// A filed file with its sidecars, an orphan reservation, one still held
	// by a file being archived, an empty one (a full disk), temp files.
	filed, _ := Reserve(root, Done, day, "a.csv", "C1")
	os.WriteFile(filed, []byte("data"), 0o600)
	WriteAtomic(filed+ACKJSON, func(w io.Writer) error { _, err := io.WriteString(w, "{}"); return err })
	orphan, _ := Reserve(root, Done, day, "b.csv", "C2")
	heldRes, _ := Reserve(root, Done, day, "c.csv", "C3")
	os.WriteFile(filepath.Join(dir, "d.csv"+ACKJSON), nil, 0o600)
	os.WriteFile(filepath.Join(dir, ".e.csv.ack.json.tmp-123"), []byte("patient data"), 0o600)
	work := filepath.Join(root, "work")
	os.MkdirAll(work, 0o700)
	os.WriteFile(filepath.Join(work, ".X.waiting.txt.tmp-9"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(work, "20261130T120000.000Z-0123456789--x.ack.json"), nil, 0o600)

	got, err := Clean(root, 60, func(owner, path string) bool { return owner == "C3" && path == heldRes })
	if err != nil {
		t.Fatal(err)
	}
	more, _ := CleanTemp(work)
	var removed []string
	for _, l := range append(got, more...) {
		removed = append(removed, filepath.Base(l.Path))
	}
	sort.Strings(removed)
	want := []string{".X.waiting.txt.tmp-9", ".e.csv.ack.json.tmp-123", "b.csv.ack.json", "d.csv.ack.json"}
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for i := range want {
		if removed[i] != want[i] {
			t.Errorf("removed %v, want %v", removed, want)
		}
	}
	for _, p := range []string{filed, filed + ACKJSON, heldRes + ACKJSON, filepath.Join(work, "20261130T120000.000Z-0123456789--x.ack.json")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if _, err := os.Stat(orphan + ACKJSON); !os.IsNotExist(err) {
		t.Error("the orphan reservation stays")
	}
}
