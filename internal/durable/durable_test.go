package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
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
	if string(b) != "v1" || st.Mode().Perm() != 0o600 || len(ents) != 1 {
		t.Fatalf("content %q, mode %v, %d entries", b, st.Mode().Perm(), len(ents))
	}
}
