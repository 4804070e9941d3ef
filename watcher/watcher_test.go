package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

func TestStabilityFiltersAndOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tr := NewTracker(Rules{Patterns: []string{"*.csv"}, StableFor: 2 * time.Second})
	list := []Entry{
		{Name: "b.csv", Size: 100, ModTime: t0.Add(-time.Second)},
		{Name: "a.csv", Size: 50, ModTime: t0.Add(-5 * time.Second)},
		{Name: ".hidden.csv", Size: 1, ModTime: t0}, {Name: "x.csv.tmp", Size: 1, ModTime: t0}, {Name: "y.part", Size: 1, ModTime: t0}, {Name: "~lock.csv", Size: 1, ModTime: t0},
		{Name: "notes.txt", Size: 1, ModTime: t0},
	}
	if r, w, next := tr.UpdateNext(list, t0); len(r) != 0 || w != 2 || !next.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("first sight: ready %v, waiting %d, next check %v", names(r), w, next)
	}
	// b.csv keeps growing; a.csv does not.
	list[0].Size = 200
	list[0].ModTime = t0.Add(1500 * time.Millisecond)
	if r, _ := tr.Update(list, t0.Add(2*time.Second)); len(r) != 1 || r[0].Name != "a.csv" {
		t.Fatalf("at 2s: ready %v", names(r))
	}
	if r, _ := tr.Update(list, t0.Add(3500*time.Millisecond)); len(r) != 1 {
		t.Fatalf("b.csv stable for 2s only at 3.5s... got %v", names(r))
	}
	r, _ := tr.Update(list, t0.Add(4*time.Second))
	if len(r) != 2 || r[0].Name != "a.csv" || r[1].Name != "b.csv" {
		t.Fatalf("at 4s: %v (oldest first)", names(r))
	}
	// With a trusted clock, a file already old is taken at first sight.
	tr2 := NewTracker(Rules{StableFor: 2 * time.Second, TrustModTime: true})
	if r, _ := tr2.Update([]Entry{{Name: "old.csv", Size: 1, ModTime: t0.Add(-time.Minute)}, {Name: "new.csv", Size: 1, ModTime: t0}}, t0); len(r) != 1 || r[0].Name != "old.csv" {
		t.Fatalf("trusted mtime: %v", names(r))
	}
}

func TestMarkerRule(t *testing.T) {
	t0 := time.Now()
	tr := NewTracker(Rules{Marker: "done", StableFor: time.Second})
	old := t0.Add(-time.Hour)
	list := []Entry{{Name: "a.csv", Size: 1, ModTime: old}, {Name: "b.csv", Size: 1, ModTime: old}, {Name: "b.done", Size: 0, ModTime: old}, {Name: "c.csv", Size: 1, ModTime: old}, {Name: "c.csv.done", Size: 0, ModTime: old}}
	tr.Update(list, t0)
	r, w := tr.Update(list, t0.Add(2*time.Second))
	if len(r) != 2 || r[0].Name != "b.csv" || r[1].Name != "c.csv" || w != 1 {
		t.Fatalf("ready %v waiting %d", names(r), w)
	}
}

func TestClaimIsExclusive(t *testing.T) {
	dir := t.TempDir()
	inbox, work := dir, filepath.Join(dir, "work")
	os.WriteFile(filepath.Join(inbox, "x.csv"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(inbox, "x.csv.ready"), nil, 0o644)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wins []Claimed
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ClaimLocal(inbox, work, "x.csv", "ready", time.Now())
			if err == nil {
				mu.Lock()
				wins = append(wins, c)
				mu.Unlock()
			} else if !errors.Is(err, ErrGone) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("%d claims of one file", len(wins))
	}
	c := wins[0]
	if b, _ := os.ReadFile(c.Path); string(b) != "data" || len(c.Markers) != 1 {
		t.Fatalf("claimed %+v", c)
	}
	if _, err := os.Stat(filepath.Join(inbox, "x.csv")); !os.IsNotExist(err) {
		t.Error("the file is still in the inbox")
	}
	// A file of the same name dropped again is a new claim, never a clash.
	os.WriteFile(filepath.Join(inbox, "x.csv"), []byte("again"), 0o644)
	c2, err := ClaimLocal(inbox, work, "x.csv", "", time.Now())
	if err != nil || c2.Path == c.Path {
		t.Fatalf("second claim %+v %v", c2, err)
	}
	files, err := WorkFiles(inbox, work, "ready")
	if err != nil || len(files) != 2 || files[0].ID != c.ID || files[1].ID != c2.ID || files[0].Name != "x.csv" || len(files[0].Markers) != 1 {
		t.Fatalf("work files %+v %v", files, err)
	}
	if id, name, _, ok := ParseClaimName(filepath.Base(c.Path)); !ok || id != c.ID || name != "x.csv" {
		t.Errorf("parse %s: %s %s %v", c.Path, id, name, ok)
	}
	if !Ignored(filepath.Base(c.Path)) {
		t.Error("a claim name in an inbox would be taken again")
	}
}

func TestLockIsExclusiveAndFollowsTheName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, nil, 0o600)
	unlock, ok, err := Lock(p)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, _ := Lock(p); ok {
		t.Fatal("locked twice")
	}
	unlock()
	unlock2, ok, _ := Lock(p)
	if !ok {
		t.Fatal("not lockable after unlock")
	}
	unlock2()
	os.Rename(p, p+".moved")
	if _, ok, err := Lock(p); ok || err != nil {
		t.Fatalf("a moved file: %v %v", ok, err)
	}
}

// What the service does with a claimed file while it holds its lock: read
// it, then move it to the archive. Windows' byte-range locks are mandatory
// and it renames no file open without FILE_SHARE_DELETE, so this is where a
// platform would differ.
func TestALockedFileCanBeReadAndMovedButNotLockedAgain(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "claimed.csv")
	if err := os.WriteFile(p, []byte("line 1\nline 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unlock, ok, err := Lock(p)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "line 1\nline 2\n" {
		t.Fatalf("reading a locked file: %q %v", b, err)
	}
	moved := filepath.Join(dir, "done.csv")
	if err := os.Rename(p, moved); err != nil {
		t.Fatalf("moving a locked file: %v", err)
	}
	if _, ok, err := Lock(moved); ok || err != nil {
		t.Fatalf("the moved file was locked again while held: %v %v", ok, err)
	}
	unlock()
	unlock2, ok, err := Lock(moved)
	if !ok || err != nil {
		t.Fatalf("not lockable after unlock: %v %v", ok, err)
	}
	unlock2()
}

func TestLockPathIsExclusiveUntilUnlocked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", ".izdrop.lock")
	unlock, ok, err := LockPath(p)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if _, ok, err := LockPath(p); ok || err != nil {
		t.Fatalf("a held lock file was taken again: %v %v", ok, err)
	}
	unlock()
	unlock2, ok, err := LockPath(p)
	if !ok || err != nil {
		t.Fatalf("not lockable after unlock: %v %v", ok, err)
	}
	unlock2()
}

func TestNotifySignalsOnNewFiles(t *testing.T) {
	dir := t.TempDir()
	sig := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Notify(ctx, dir, sig, zerolog.Nop()); close(done) }()
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		os.WriteFile(filepath.Join(dir, "f.csv"), []byte{byte(i)}, 0o600)
		select {
		case <-sig:
			cancel()
			<-done
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no signal")
		}
	}
}

func TestMarkerRenamedFollowsItsFile(t *testing.T) {
	for _, c := range []struct{ name, marker, newName, want string }{
		{"a.csv", "a.csv.done", "a.csv", "a.csv.done"},
		{"a.csv", "a.csv.done", "a-1.csv", "a-1.csv.done"},
		{"a.csv", "a.done", "a.csv", "a.done"},
		{"a.csv", "a.ready", "a-2.csv", "a-2.ready"},
		{"export", "export.done", "export-1", "export-1.done"},
		{"a.csv", "b.done", "a.csv", "a.csv.b.done"},
		{"Immunization.ndjson", "Patient.ndjson", "Immunization.ndjson", "Patient.ndjson"},
		{"Immunization.ndjson", "Patient.ndjson", "Immunization-1.ndjson", "Patient-1.ndjson"},
		{"clinic.Immunization.ndjson", "clinic.Patient.ndjson", "clinic.Immunization-12.ndjson", "clinic.Patient-12.ndjson"},
		{"x-immunization.ndjson", "x-patient.ndjson", "x-immunization.ndjson", "x-patient.ndjson"},
	} {
		if got := MarkerRenamed(c.name, c.marker, c.newName); got != c.want {
			t.Errorf("MarkerRenamed(%q, %q, %q) = %q, want %q", c.name, c.marker, c.newName, got, c.want)
		}
	}
}

// fhirPairs pairs NAME-Immunization.ndjson with NAME-Patient.ndjson, as
// transform.Partner does (watcher does not import transform).
func fhirPairs(name string) (string, bool, bool) {
	if p, ok := strings.CutSuffix(name, "Immunization.ndjson"); ok {
		return p + "Patient.ndjson", true, true
	}
	if p, ok := strings.CutSuffix(name, "Patient.ndjson"); ok {
		return p + "Immunization.ndjson", false, true
	}
	return "", false, false
}

func TestPairsWaitForEachOther(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tr := NewTracker(Rules{Patterns: []string{"*.ndjson", "*.json"}, StableFor: 2 * time.Second, Pair: fhirPairs})
	old := t0.Add(-time.Hour)
	imm := Entry{Name: "a-Immunization.ndjson", Size: 10, ModTime: old}
	pat := Entry{Name: "a-Patient.ndjson", Size: 10, ModTime: old}
	lonePatient := Entry{Name: "b-Patient.ndjson", Size: 10, ModTime: old}
	bundle := Entry{Name: "c.json", Size: 10, ModTime: old}
	// Without its partner, neither file of a pair is taken; a file that
	// stands alone is.
	tr.Update([]Entry{imm, lonePatient, bundle}, t0)
	if r, w := tr.Update([]Entry{imm, lonePatient, bundle}, t0.Add(3*time.Second)); len(r) != 1 || r[0].Name != "c.json" || w != 2 {
		t.Fatalf("halves of pairs: ready %v, waiting %d", names(r), w)
	}
	// The partner arrives: the data file waits until the partner is
	// stable too, and says when that will be.
	t1 := t0.Add(4 * time.Second)
	fresh := pat
	fresh.ModTime = t1
	r, w, next := tr.UpdateNext([]Entry{imm, fresh, bundle}, t1)
	if len(r) != 1 || r[0].Name != "c.json" || w != 1 || !next.Equal(t1.Add(2*time.Second)) {
		t.Fatalf("partner still settling: ready %v, waiting %d, next %v", names(r), w, next)
	}
	// Both stable: the data file is ready, its partner is not taken alone.
	r, w = tr.Update([]Entry{imm, fresh, bundle}, t1.Add(2*time.Second))
	if len(r) != 2 || r[0].Name != "a-Immunization.ndjson" || r[1].Name != "c.json" || w != 0 {
		t.Fatalf("pair stable: ready %v, waiting %d", names(r), w)
	}
}

func TestClaimPairTogether(t *testing.T) {
	dir := t.TempDir()
	inbox, work := dir, filepath.Join(dir, "work")
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(inbox, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a-Immunization.ndjson")
	write("a-Patient.ndjson")
	c, err := ClaimLocalPaired(inbox, work, "a-Immunization.ndjson", "", fhirPairs, time.Now())
	if err != nil || len(c.Markers) != 1 || filepath.Base(c.Markers[0]) != c.ID+"--a-Patient.ndjson" {
		t.Fatalf("claim %+v %v", c, err)
	}
	for _, n := range []string{"a-Immunization.ndjson", "a-Patient.ndjson"} {
		if _, err := os.Stat(filepath.Join(inbox, n)); !os.IsNotExist(err) {
			t.Errorf("%s left in the inbox", n)
		}
	}
	// A claim cut short before the partner was moved is completed.
	write("b-Immunization.ndjson")
	write("b-Patient.ndjson")
	cut, err := ClaimLocal(inbox, work, "b-Immunization.ndjson", "", time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A partner whose data file has left work/ is no claim.
	orphan := NewClaimID(time.Now().Add(2 * time.Second))
	os.WriteFile(filepath.Join(work, orphan+"--z-Patient.ndjson"), nil, 0o644)
	got, err := WorkFilesPaired(inbox, work, "", fhirPairs)
	if err != nil || len(got) != 2 {
		t.Fatalf("work files %+v %v", got, err)
	}
	if got[0].ID != c.ID || len(got[0].Markers) != 1 || got[1].ID != cut.ID || len(got[1].Markers) != 1 ||
		filepath.Base(got[1].Markers[0]) != cut.ID+"--b-Patient.ndjson" {
		t.Errorf("work files %+v", got)
	}
	if _, err := os.Stat(filepath.Join(work, cut.ID+"--b-Patient.ndjson")); err != nil {
		t.Errorf("the partner of the cut claim: %v", err)
	}
}

// Nothing izdrop will not take stays in an inbox silently: each such name
// is reported once, with why, and patterns ignore case by default.
func TestNotTakenIsReportedOnceWithWhy(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	old := t0.Add(-time.Hour)
	tr := NewTracker(Rules{Patterns: []string{"*.csv"}, StableFor: time.Second, TrustModTime: true})
	list := []Entry{
		{Name: "EXPORT.CSV", Size: 5, ModTime: old},
		{Name: "link.csv", Kind: "symlink"},
		{Name: "sub", Kind: "folder"},
		{Name: "work", Kind: "folder"},
		{Name: ".izdrop.lock", Size: 0, ModTime: old},
		{Name: "20261125T100000.000Z-0123456789--a.csv", Size: 5, ModTime: old},
		{Name: "notes.txt", Size: 5, ModTime: old},
		{Name: "x.csv.part", Size: 5, ModTime: old},
		{Name: "a.csv.done", Size: 0, ModTime: old},
	}
	r, _ := tr.Update(list, t0)
	if len(r) != 1 || r[0].Name != "EXPORT.CSV" {
		t.Fatalf("ready %v: *.csv takes EXPORT.CSV", names(r))
	}
	got := map[string]string{}
	for _, s := range tr.Skipped(list) {
		got[s.Name] = s.Why
	}
	want := map[string]string{"link.csv": "symbolic link", "sub": "sub-folders", "notes.txt": "patterns (*.csv)",
		"x.csv.part": "temporary name", "20261125T100000.000Z-0123456789--a.csv": "claimed files"}
	if len(got) != len(want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	for n, w := range want {
		if !strings.Contains(got[n], w) {
			t.Errorf("%s: %q, want it to say %q", n, got[n], w)
		}
	}
	if again := tr.Skipped(list); len(again) != 0 {
		t.Errorf("reported twice: %v", again)
	}
	// Gone, then back: reported again.
	tr.Skipped(list[:1])
	if again := tr.Skipped(list); len(again) != len(want) {
		t.Errorf("after coming back: %v", again)
	}
	cs := NewTracker(Rules{Patterns: []string{"*.csv"}, CaseSensitive: true, TrustModTime: true})
	if r, _ := cs.Update(list[:1], t0); len(r) != 0 {
		t.Error("a case-sensitive pattern took EXPORT.CSV")
	}
}
