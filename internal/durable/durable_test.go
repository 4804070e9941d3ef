package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFileKeepsTheOldVersionOnFailure(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(p, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "v1"); return err }); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, 0o600, func(w io.Writer) error { io.WriteString(w, "v2-partial"); return errors.New("disk full") }); err == nil {
		t.Fatal("failure not reported")
	}
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	ents, _ := os.ReadDir(filepath.Dir(p))
	if string(b) != "v1" || !modeOK(st.Mode().Perm(), 0o600) || len(ents) != 1 {
		t.Fatalf("content %q, mode %v, %d entries", b, st.Mode().Perm(), len(ents))
	}
}

// modeOK compares file modes where they mean something: Windows keeps only
// a read-only flag (an ACL decides who may read).
func modeOK(got, want os.FileMode) bool {
	if runtime.GOOS == "windows" {
		return got&0o200 == want&0o200
	}
	return got == want
}
