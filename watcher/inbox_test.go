package watcher

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCreateInboxMakesAPrivateFolderByDefault(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "inbox")
	notes, err := CreateInbox(dir, 0o700, "")
	if err != nil || len(notes) != 0 {
		t.Fatalf("%q %v", notes, err)
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		t.Fatalf("no inbox folder: %v", err)
	}
	if perm := st.Mode().Perm(); perm&0o200 == 0 || os.PathSeparator == '/' && perm != 0o700 {
		t.Errorf("inbox mode %v, want 0700 (writable on Windows)", perm)
	}
	if notes, err := CreateInbox(dir, 0o700, ""); err != nil || len(notes) != 0 {
		t.Errorf("again: %q %v", notes, err)
	}
}
