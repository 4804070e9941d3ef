package service_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/izdrop/izdrop/sandbox"
)

// Marker files follow their data file into the archive under its archived
// name, in both marker forms, and none stays behind in work/.
func TestMarkersAreArchivedBesideTheirFile(t *testing.T) {
	f := newFixture(t, `marker = "done"`, sandbox.Faults{})
	s := f.service(t)
	f.drop(t, "a.csv", example(t, "guardian.csv"))
	f.drop(t, "a.csv.done", nil)
	f.drop(t, "b.csv", example(t, "historical.csv"))
	f.drop(t, "b.done", nil)
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 2 {
		t.Fatalf("%+v %v", sum, err)
	}
	for _, name := range []string{"a.csv", "b.csv"} {
		p, ok := f.archived(name)
		if !ok {
			t.Fatalf("%s not archived", name)
		}
		marker := p + ".done"
		if name == "b.csv" {
			marker = filepath.Join(filepath.Dir(p), "b.done")
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("marker of %s: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(f.inbox, "work")); len(ents) != 0 {
		t.Errorf("%d files left in work/ (%s ...)", len(ents), ents[0].Name())
	}
}
