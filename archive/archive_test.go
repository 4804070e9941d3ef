package archive

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var day = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestReserveNeverClashes(t *testing.T) {
	root := t.TempDir()
	p1, err := Reserve(root, Done, day, "visit.csv", "")
	if err != nil || p1 != filepath.Join(root, "done", "2026-11-25", "visit.csv") {
		t.Fatalf("%s %v", p1, err)
	}
	p2, _ := Reserve(root, Done, day, "visit.csv", "")
	if filepath.Base(p2) != "visit-1.csv" {
		t.Errorf("second reservation %s", p2)
	}
	// A file already there (not ours) pushes the name on too.
	os.WriteFile(filepath.Join(root, "done", "2026-11-25", "visit-2.csv"), nil, 0o600)
	if p3, _ := Reserve(root, Done, day, "visit.csv", ""); filepath.Base(p3) != "visit-3.csv" {
		t.Errorf("third reservation %s", p3)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Reserve(root, Failed, day, "x.csv", "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil || seen[p] {
				t.Errorf("reservation %s %v", p, err)
			}
			seen[p] = true
		}()
	}
	wg.Wait()
	for _, d := range []string{filepath.Join(root, "done"), filepath.Join(root, "failed", "2026-11-25")} {
		if st, _ := os.Stat(d); !modeOK(st.Mode().Perm(), 0o700) {
			t.Errorf("%s mode %v", d, st.Mode().Perm())
		}
	}
}

func TestMoveNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "work", "a"), filepath.Join(dir, "done", "a")
	os.MkdirAll(filepath.Dir(src), 0o700)
	os.WriteFile(src, []byte("new"), 0o644)
	os.MkdirAll(filepath.Dir(dst), 0o700)
	os.WriteFile(dst, []byte("old"), 0o600)
	if err := Move(src, dst); !errors.Is(err, ErrExists) {
		t.Fatalf("move onto an existing file: %v", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "old" {
		t.Fatal("the existing file was replaced")
	}
	if b, _ := os.ReadFile(src); string(b) != "new" {
		t.Fatal("the source was lost")
	}
	os.Remove(dst)
	if err := Move(src, dst); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dst); !modeOK(st.Mode().Perm(), 0o600) {
		t.Errorf("moved file mode %v", st.Mode().Perm())
	}
	// A restart that finishes a move already done.
	if err := Move(src, dst); err != nil {
		t.Fatalf("second move: %v", err)
	}
	// The fallbacks: link+unlink and copy.
	for _, mv := range []func(string, string) error{linkMove, copyMove} {
		os.WriteFile(src, []byte("again"), 0o644)
		d2 := dst + "-fallback"
		os.Remove(d2)
		if err := mv(src, d2); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(d2); string(b) != "again" || exists(src) {
			t.Fatal("fallback move")
		}
		os.WriteFile(src, []byte("x"), 0o644)
		if err := mv(src, d2); !errors.Is(err, ErrExists) {
			t.Fatalf("fallback onto an existing file: %v", err)
		}
		os.Remove(src)
	}
}

func TestWriteAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s", "x.ack.json")
	if err := WriteAtomic(p, func(w io.Writer) error { _, err := io.WriteString(w, "one"); return err }); err != nil {
		t.Fatal(err)
	}
	if err := WriteAtomic(p, func(w io.Writer) error { return errors.New("disk full") }); err == nil {
		t.Fatal("a failed write reported success")
	}
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(b) != "one" || !modeOK(st.Mode().Perm(), 0o600) {
		t.Fatalf("content %q mode %v: a failed rewrite must leave the old file", b, st.Mode().Perm())
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
}

func TestSidecarFormats(t *testing.T) {
	var js bytes.Buffer
	recs := []Record{
		{Line: 2, PatientID: "P1", VaccinationID: "V1", MSH10: "IZ1", Outcome: "accepted"},
		{Line: 3, PatientID: "P1", VaccinationID: "V2", Outcome: "invalid", Errors: []Issue{{Source: "izdrop", Severity: "error", Field: "RXA-15", Column: "lot_number", Code: "lot-missing", Text: "lot_number is required"}}},
	}
	err := WriteACKJSON(&js, Head{File: "a.csv", Inbox: "clinic", Claim: "C", Result: Failed, Counts: map[string]int{"accepted": 1, "invalid": 1}},
		func(yield func(Record) error) error {
			for _, r := range recs {
				if err := yield(r); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Head
		Records []Record `json:"records"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if back.File != "a.csv" || len(back.Records) != 2 || back.Records[1].Errors[0].Code != "lot-missing" || back.Counts["invalid"] != 1 {
		t.Errorf("round trip: %+v", back)
	}
	js.Reset()
	WriteACKJSON(&js, Head{File: "e.csv", Error: "not valid UTF-8"}, func(func(Record) error) error { return nil })
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Error == "" || len(back.Records) != 0 {
		t.Errorf("empty: %v %s", err, js.String())
	}

	var h bytes.Buffer
	WriteACKHL7(&h, func(yield func(string, string) error) error {
		yield("IZ1", "MSH|^~\\&|CAIR IIS\rMSA|AA|IZ1\r")
		return yield("IZ2", "MSH|^~\\&|CAIR IIS\rMSA|AE|IZ2\rERR||RXR^1^2|103|W\r")
	})
	if h.String() != "MSH|^~\\&|CAIR IIS\nMSA|AA|IZ1\n\nMSH|^~\\&|CAIR IIS\nMSA|AE|IZ2\nERR||RXR^1^2|103|W\n" {
		t.Errorf("ack.hl7:\n%q", h.String())
	}

	var rj bytes.Buffer
	WriteRejects(&rj, []byte("MRN|Last|Note"), '|', func(yield func([]byte, string) error) error {
		yield([]byte(`A-1|Lee|"two`+"\n"+`lines"`), `line 3: column lot_number (RXA-15): "lot" missing`)
		return yield([]byte("A-2|Kim|x"), "line 5: patient|sex")
	})
	r := csv.NewReader(strings.NewReader(rj.String()))
	r.Comma = '|'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("rejects are not valid CSV: %v\n%s", err, rj.String())
	}
	if len(rows) != 3 || rows[0][3] != "izdrop_errors" || rows[1][2] != "two\nlines" || rows[1][3] != `line 3: column lot_number (RXA-15): "lot" missing` || rows[2][3] != "line 5: patient|sex" {
		t.Errorf("rejects rows %q", rows)
	}
}

func TestRejectsNeedARealDelimiter(t *testing.T) {
	var b bytes.Buffer
	if err := WriteRejects(&b, []byte("a,b"), 0, func(func([]byte, string) error) error { return nil }); err == nil {
		t.Fatal("a zero delimiter was accepted")
	}
}

func TestReserveGivesAnOwnerItsReservationBack(t *testing.T) {
	root := t.TempDir()
	p1, _ := Reserve(root, Done, day, "a.csv", "claim-1")
	again, _ := Reserve(root, Done, day, "a.csv", "claim-1")
	other, _ := Reserve(root, Done, day, "a.csv", "claim-2")
	if again != p1 || filepath.Base(other) != "a-1.csv" {
		t.Fatalf("%s %s %s", p1, again, other)
	}
	// Once the file is there, the name is taken even for its owner.
	os.WriteFile(p1, nil, 0o600)
	if p, _ := Reserve(root, Done, day, "a.csv", "claim-1"); p == p1 {
		t.Fatal("a filed name was handed out again")
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
