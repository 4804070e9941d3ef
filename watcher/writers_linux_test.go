//go:build linux

package watcher

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAFileHeldOpenForWritingIsSeenAsBeingWritten(t *testing.T) {
	p := filepath.Join(t.TempDir(), "export.csv")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("patient_id,")
	writing, known := BeingWritten(p)
	if !known || !writing {
		t.Fatalf("held open for writing: writing %v, known %v", writing, known)
	}
	w.Close()
	// A reader does not count.
	r, _ := os.Open(p)
	defer r.Close()
	if writing, known := BeingWritten(p); !known || writing {
		t.Fatalf("closed by its writer: writing %v, known %v", writing, known)
	}
}
