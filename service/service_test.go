package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

type fixture struct {
	dir     string
	inbox   string
	archive string
	sb      *sandbox.Server
	cfg     *config.Config
}

// newFixture writes a config for one inbox sending to an in-process sandbox.
func newFixture(t testing.TB, extra string, faults sandbox.Faults) *fixture {
	t.Helper()
	dir := t.TempDir()
	sb, err := sandbox.Start(sandbox.Options{Password: "pw-e2e", Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	t.Setenv("IZDROP_TEST_PW", "pw-e2e")
	f := &fixture{dir: dir, inbox: filepath.Join(dir, "inbox"), archive: filepath.Join(dir, "archive"), sb: sb}
	if err := os.MkdirAll(f.inbox, 0o700); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`
[service]
data_dir = %q
log_format = "json"
shutdown_grace = "3s"

[status]
listen = "off"

[sites.demo]
id = "DEMO01"
region = "CAIRBA"
county = "San Francisco"

[endpoints.reg]
environment = "staging"
url = %q
username = "sandbox"
facility_id = "sandbox"
password_env = "IZDROP_TEST_PW"
concurrency = 4
retry_budget = "2s"
max_attempts = 4
breaker_failures = 3
breaker_cooldown = "100ms"

[inboxes.clinic]
path = %q
create = true
archive = %q
site = "demo"
endpoint = "reg"
stable_for = "150ms"
rescan = "500ms"
%s
`, filepath.Join(dir, "var"), sb.URL2011(), f.inbox, f.archive, extra)
	cfg, err := config.Parse([]byte(doc), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	return f
}

func (f *fixture) service(t testing.TB) *service.Service {
	t.Helper()
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (f *fixture) drop(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.inbox, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func example(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("../examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archived finds name in the archive (done or failed, any day).
func (f *fixture) archived(name string) (string, bool) {
	for _, r := range []string{"done", "failed"} {
		m, _ := filepath.Glob(filepath.Join(f.archive, r, "*", name))
		if len(m) == 1 {
			return filepath.ToSlash(m[0]), true // "/done/" on Windows too
		}
	}
	return "", false
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type sidecar struct {
	File    string         `json:"file"`
	Result  string         `json:"result"`
	Error   string         `json:"error"`
	Counts  map[string]int `json:"counts"`
	Records []struct {
		Line          int    `json:"line"`
		VaccinationID string `json:"vaccination_id"`
		MSH10         string `json:"msh10"`
		Outcome       string `json:"outcome"`
		Errors        []struct {
			Source, Field, Code, Text string
		} `json:"errors"`
	} `json:"records"`
}

func readSidecar(t *testing.T, path string) sidecar {
	t.Helper()
	b, err := os.ReadFile(path + ".ack.json")
	if err != nil {
		t.Fatal(err)
	}
	var s sidecar
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// receivedOnce checks the registry got each vaccination exactly once (a
// resend with the same MSH-10, answered from the first ACK, aside).
func receivedOnce(t *testing.T, sb *sandbox.Server) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range sb.Received() {
		if r.Resend {
			continue
		}
		for _, d := range r.Doses {
			seen[d.ID+"/"+d.Action]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("vaccination %s reached the registry %d times", id, n)
		}
	}
	if st := sb.Stats(); st.Duplicates != 0 {
		t.Errorf("%d duplicate doses", st.Duplicates)
	}
	return seen
}

func TestServeFilesGoodMixedUnreadableSlowAndRenamed(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()

	f.drop(t, "visit-administered.csv", example(t, "visit-administered.csv"))
	f.drop(t, "mixed-with-errors.csv", example(t, "mixed-with-errors.csv"))
	f.drop(t, "binary.csv", []byte{0x50, 0x4b, 0x03, 0x04, 0xff, 0xfe, 0x00})
	// Written slowly, in chunks shorter apart than the stability window.
	slow := example(t, "historical.csv")
	go func() {
		p := filepath.Join(f.inbox, "historical.csv")
		fh, _ := os.Create(p)
		for i := 0; i < len(slow); i += 100 {
			fh.Write(slow[i:min(i+100, len(slow))])
			time.Sleep(40 * time.Millisecond)
		}
		fh.Close()
	}()
	// Written under a temp name, then renamed.
	tmp := filepath.Join(f.inbox, "refusal.csv.part")
	os.WriteFile(tmp, example(t, "refusal.csv")[:200], 0o644)
	time.Sleep(300 * time.Millisecond) // longer than the window: a temp name is never taken
	os.WriteFile(tmp, example(t, "refusal.csv"), 0o644)
	os.Rename(tmp, filepath.Join(f.inbox, "refusal.csv"))

	for _, name := range []string{"visit-administered.csv", "mixed-with-errors.csv", "binary.csv", "historical.csv", "refusal.csv"} {
		waitFor(t, name+" archived", 20*time.Second, func() bool { _, ok := f.archived(name); return ok })
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	good, _ := f.archived("visit-administered.csv")
	if !strings.Contains(good, "/done/") {
		t.Errorf("good file in %s", good)
	}
	sc := readSidecar(t, good)
	if sc.Result != "done" || len(sc.Records) != 4 || sc.Counts["accepted"] != 4 {
		t.Errorf("good sidecar %+v", sc)
	}
	for _, r := range sc.Records {
		if r.MSH10 == "" || r.Outcome != "accepted" {
			t.Errorf("record %+v", r)
		}
	}
	hl7, _ := os.ReadFile(good + ".ack.hl7")
	if strings.Count(string(hl7), "MSA|AA|") != 2 {
		t.Errorf("ack.hl7 has %d ACKs, want 2 messages:\n%s", strings.Count(string(hl7), "MSA|"), hl7)
	}

	mixed, _ := f.archived("mixed-with-errors.csv")
	if !strings.Contains(mixed, "/failed/") {
		t.Errorf("mixed file in %s", mixed)
	}
	sc = readSidecar(t, mixed)
	if sc.Counts["accepted"] != 1 || sc.Counts["invalid"] != 3 {
		t.Errorf("mixed counts %v", sc.Counts)
	}
	rej, err := os.ReadFile(mixed + ".rejects.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(rej)), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], ",izdrop_errors") || !strings.Contains(lines[1], "M-0008-2") || !strings.Contains(lines[1], "lot-missing") {
		t.Errorf("rejects:\n%s", rej)
	}

	bin, _ := f.archived("binary.csv")
	sc = readSidecar(t, bin)
	if !strings.Contains(bin, "/failed/") || !strings.Contains(sc.Error, "binary.csv: this is a ZIP archive") || len(sc.Records) != 0 {
		t.Errorf("unreadable file: %s %+v", bin, sc)
	}
	if why, err := os.ReadFile(bin + ".error.txt"); err != nil || !strings.Contains(string(why), "export the data as CSV text") {
		t.Errorf("error sidecar: %s %v", why, err)
	}
	if b, _ := os.ReadFile(bin); len(b) != 7 {
		t.Error("the unreadable file was not kept as it was")
	}

	hist, _ := f.archived("historical.csv")
	if sc := readSidecar(t, hist); sc.Counts["accepted"] != 4 {
		t.Errorf("slowly written file: %v (read before it was whole?)", sc.Counts)
	}
	ref, _ := f.archived("refusal.csv")
	if sc := readSidecar(t, ref); sc.Counts["accepted"] != 2 {
		t.Errorf("renamed file: %v", sc.Counts)
	}
	if _, ok := f.archived("refusal.csv.part"); ok {
		t.Error("the temp name was taken")
	}
	seen := receivedOnce(t, f.sb)
	if len(seen) != 4+1+4+2 {
		t.Errorf("the registry received %d doses, want 11: %v", len(seen), seen)
	}
	if ents, _ := os.ReadDir(filepath.Join(f.inbox, "work")); len(ents) != 0 {
		t.Errorf("files left in work/: %v", ents)
	}
	st, _ := os.Stat(filepath.Dir(good))
	if st.Mode().Perm() != 0o700 && runtime.GOOS != "windows" { // an ACL says it there
		t.Errorf("archive folder mode %v", st.Mode().Perm())
	}
}

func TestAlreadyAcceptedIsNotResent(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	if sum, err := s.RunOnce(context.Background()); err != nil || sum.Done != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	calls := f.sb.Stats().Submits
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Done != 1 || sum.Records["already_accepted"] != 4 {
		t.Fatalf("second drop: %+v %v", sum, err)
	}
	if f.sb.Stats().Submits != calls {
		t.Errorf("%d more calls for records the registry already had", f.sb.Stats().Submits-calls)
	}
	second, ok := f.archived("a-1.csv")
	if !ok {
		t.Fatal("the second drop was not archived beside the first")
	}
	sc := readSidecar(t, second)
	for _, r := range sc.Records {
		if r.Outcome != string(ack.AlreadyAccepted) || r.MSH10 == "" {
			t.Errorf("record %+v", r)
		}
	}
	receivedOnce(t, f.sb)
}

func TestRegistryDownFilesWaitThenComplete(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{Rate503: 1})
	s := f.service(t)
	f.drop(t, "v.csv", example(t, "visit-administered.csv"))
	f.drop(t, "h.csv", example(t, "historical.csv"))
	sum, err := s.RunOnce(context.Background())
	if err != nil || sum.Pending != 2 || sum.Done+sum.Failed != 0 {
		t.Fatalf("registry down: %+v %v", sum, err)
	}
	if ents, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*--*")); len(ents) != 2 {
		t.Fatalf("work/ holds %d files, want the 2 waiting", len(ents))
	}
	notes, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*.waiting.txt"))
	if len(notes) != 2 {
		t.Fatalf("waiting notes: %v", notes)
	}
	if b, _ := os.ReadFile(notes[0]); !strings.Contains(string(b), "503") && !strings.Contains(string(b), "unreachable") {
		t.Errorf("the waiting note does not say why:\n%s", b)
	}
	if _, ok := f.archived("v.csv"); ok {
		t.Fatal("a file was archived while the registry was down")
	}
	f.sb.SetFaults(sandbox.Faults{})
	// The breaker's cool-down passes; the next run completes both files.
	waitFor(t, "files completed", 10*time.Second, func() bool {
		sum, err = s.RunOnce(context.Background())
		return err == nil && sum.Pending == 0
	})
	for _, n := range []string{"v.csv", "h.csv"} {
		p, ok := f.archived(n)
		if !ok || !strings.Contains(p, "/done/") {
			t.Fatalf("%s: %s %v", n, p, ok)
		}
	}
	receivedOnce(t, f.sb)
}

func TestRejectedRecordsFailTheFileAndAreNotResent(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	// Updates of doses the registry never had: the registry rejects them.
	f.drop(t, "c.csv", example(t, "visit-corrections.csv"))
	sum, _ := s.RunOnce(context.Background())
	if sum.Failed != 1 || sum.Records["rejected"] != 2 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("c.csv")
	sc := readSidecar(t, p)
	for _, r := range sc.Records {
		if r.Outcome != "rejected" || len(r.Errors) == 0 || r.Errors[0].Source != "registry" || !strings.HasPrefix(r.Errors[0].Text, "MESSAGE REJECTED") {
			t.Errorf("record %+v", r)
		}
	}
	calls := f.sb.Stats().Submits
	s.RunOnce(context.Background())
	if f.sb.Stats().Submits != calls {
		t.Error("a rejected message was sent again")
	}
}

func TestScheduledInbox(t *testing.T) {
	f := newFixture(t, `schedule = "@every 1s"`, sandbox.Faults{})
	s := f.service(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	f.drop(t, "g.csv", example(t, "guardian.csv"))
	waitFor(t, "the scheduled run", 10*time.Second, func() bool { _, ok := f.archived("g.csv"); return ok })
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

func TestStopLeavesNothingHalfDone(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{Latency: 150 * time.Millisecond})
	s := f.service(t)
	var csv strings.Builder
	ex := strings.SplitN(string(example(t, "visit-administered.csv")), "\n", 2)
	csv.WriteString(ex[0] + "\n")
	row := strings.Split(strings.TrimSpace(ex[1]), "\n")[0]
	for i := 0; i < 40; i++ {
		r := strings.Replace(row, "MRN10001", fmt.Sprintf("MRN9%04d", i), 1)
		r = strings.Replace(r, "V-2026-0001", fmt.Sprintf("V-STOP-%04d", i), 1)
		csv.WriteString(r + "\n")
	}
	f.drop(t, "big.csv", []byte(csv.String()))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	waitFor(t, "sending to start", 10*time.Second, func() bool { return f.sb.Stats().Submits >= 6 })
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// Stopped mid-file: the file is whole in work/, not half-moved.
	if _, ok := f.archived("big.csv"); ok {
		t.Fatal("archived although stopped mid-way")
	}
	ents, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*--*"))
	if len(ents) != 1 {
		t.Fatalf("work/: %v", ents)
	}
	if notes, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*.waiting.txt")); len(notes) != 1 {
		t.Errorf("no note says why big.csv waits: %v", notes)
	} else if b, _ := os.ReadFile(notes[0]); !strings.Contains(string(b), "stopped") {
		t.Errorf("the note does not say izdrop was stopped:\n%s", b)
	}
	// A new start finishes it, without sending anything twice.
	s.Close()
	s2, err := service.New(f.cfg, service.Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	sum, err := s2.RunOnce(context.Background())
	if err != nil || sum.Done != 1 || sum.Records["accepted"] != 40 {
		t.Fatalf("resume: %+v %v", sum, err)
	}
	receivedOnce(t, f.sb)
}

func TestFindByFileVaccinationAndMSH10(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	s := f.service(t)
	f.drop(t, "mixed.csv", example(t, "mixed-with-errors.csv"))
	s.RunOnce(context.Background())
	var out strings.Builder
	found, err := service.Find(context.Background(), s.Journal(), "mixed.csv", &out)
	if err != nil || !found || !strings.Contains(out.String(), "result: failed") || !strings.Contains(out.String(), "1 accepted, 3 invalid") {
		t.Fatalf("by file: %v %v\n%s", found, err, out.String())
	}
	out.Reset()
	service.Find(context.Background(), s.Journal(), "M-0008-1", &out)
	text := out.String()
	if !strings.Contains(text, "outcome: accepted") || !strings.Contains(text, "MSH-10 IZ") || !strings.Contains(text, "MSA|AA|") {
		t.Fatalf("by vaccination id:\n%s", text)
	}
	msh10 := strings.Fields(text[strings.Index(text, "MSH-10 "):])[1]
	out.Reset()
	if found, _ := service.Find(context.Background(), s.Journal(), msh10, &out); !found || !strings.Contains(out.String(), "M-0008-1") {
		t.Fatalf("by MSH-10 %s:\n%s", msh10, out.String())
	}
	out.Reset()
	service.Find(context.Background(), s.Journal(), "M-0008-2", &out)
	if !strings.Contains(out.String(), "outcome: invalid") || !strings.Contains(out.String(), "lot-missing") {
		t.Fatalf("invalid record:\n%s", out.String())
	}
	// M-0008-2 was never sent: the ACK of its patient's message (which
	// carried M-0008-1) says nothing about it and is not shown as its own.
	if strings.Contains(out.String(), "MSA|") || strings.Contains(out.String(), "ACK (attempts") {
		t.Errorf("an invalid record shows another record's ACK:\n%s", out.String())
	}
	if found, _ := service.Find(context.Background(), s.Journal(), "nope", &out); found {
		t.Error("found something for nope")
	}
}
