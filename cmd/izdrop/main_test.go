package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/izdrop/izdrop/sandbox"
)

// copyExamples puts the examples and the shipped config in a temp folder, so
// the command runs as a user would run it there.
func copyExamples(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.toml"), b, 0o600)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("../../examples", n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n), b, 0o600)
	}
	return dir
}

func runIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var out, errb syncBuffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// syncBuffer is a buffer the service's goroutines can log to at once, as
// they do to a terminal.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestValidateExitStatus(t *testing.T) {
	dir := copyExamples(t, "visit-administered.csv", "acme-ehr-export.txt", "mixed-with-errors.csv")
	code, out, _ := runIn(t, dir, "validate", "visit-administered.csv", "acme-ehr-export.txt")
	if code != exitOK || !strings.Contains(out, "visit-administered.csv: 4 record(s): 4 valid") || !strings.Contains(out, "acme-ehr-export.txt: 2 record(s): 2 valid") {
		t.Fatalf("valid files: exit %d\n%s", code, out)
	}
	for _, f := range []string{"visit-administered.vxu.hl7", "visit-administered.report.json", "acme-ehr-export.vxu.hl7"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	code, out, _ = runIn(t, dir, "validate", "visit-administered.csv", "mixed-with-errors.csv")
	if code != exitRecords || !strings.Contains(out, "mixed-with-errors.csv:3: column lot_number (RXA-15): lot-missing") {
		t.Fatalf("invalid records: exit %d\n%s", code, out)
	}
	if code, _, errs := runIn(t, dir, "validate", "missing.csv"); code != exitUsage || !strings.Contains(errs, "missing.csv") {
		t.Errorf("missing file: exit %d %s", code, errs)
	}
	if code, _, _ := runIn(t, dir, "validate"); code != exitUsage {
		t.Errorf("no file: exit %d", code)
	}
	os.WriteFile(filepath.Join(dir, "bad.toml"), []byte("[inboxes.x]\npath = \"in\"\nsite = \"s\"\nsitee = 1\n"), 0o600)
	if code, _, errs := runIn(t, dir, "validate", "-config", "bad.toml", "visit-administered.csv"); code != exitUsage || !strings.Contains(errs, "bad.toml:4") {
		t.Errorf("bad config: exit %d %s", code, errs)
	}
}

func TestConfigCheckAndCodesShow(t *testing.T) {
	dir := copyExamples(t)
	code, out, _ := runIn(t, dir, "config", "check")
	if code != exitOK || !strings.Contains(out, "[inboxes.clinic]") || !strings.Contains(out, "embedded sandbox") {
		t.Fatalf("config check: exit %d\n%s", code, out)
	}
	code, out, _ = runIn(t, dir, "codes", "show")
	if code != exitOK || !strings.Contains(out, "cvx.tsv") || !strings.Contains(out, "2025-10-31") {
		t.Fatalf("codes show: exit %d\n%s", code, out)
	}
	if code, _, _ := runIn(t, dir, "nonsense"); code != exitUsage {
		t.Errorf("unknown command: exit %d", code)
	}
}

func TestPing(t *testing.T) {
	dir := copyExamples(t)
	cfg := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(cfg)
	// A free port, so the test never meets a running izdrop.
	b = []byte(strings.Replace(string(b), `listen = "127.0.0.1:8931"`, `listen = "127.0.0.1:0"`, 1))
	// An endpoint with the wrong password, pointing at nothing useful.
	b = append(b, []byte("\n[endpoints.dead]\nenvironment = \"staging\"\nurl = \"http://127.0.0.1:1/CATRN-WS/IISService\"\nusername = \"ORG\"\nfacility_id = \"ORG\"\npassword_env = \"IZDROP_TEST_DEAD_PW\"\nconnect_timeout = \"1s\"\n")...)
	os.WriteFile(cfg, b, 0o600)
	code, out, errs := runIn(t, dir, "ping", "-auth")
	if code != exitOK || !strings.Contains(out, "connectivity test ok") || !strings.Contains(out, "credentials accepted") {
		t.Fatalf("ping sandbox: exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("IZDROP_TEST_DEAD_PW", "x")
	code, out, _ = runIn(t, dir, "ping", "-endpoint", "dead")
	if code != exitFailure || !strings.Contains(out, "FAILED") || !strings.Contains(out, "nothing answers") {
		t.Fatalf("ping dead endpoint: exit %d\n%s", code, out)
	}
}

// The exit statuses of going live: a refused credentials check (5), a
// config whose run-time checks fail (2), a test plan (0), and run --once
// while the registry refuses our credentials (5).
func TestGoingLiveExitStatuses(t *testing.T) {
	sb, err := sandbox.Start(sandbox.Options{Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	dir := copyExamples(t, "visit-administered.csv")
	cfg := filepath.Join(dir, "config.toml")
	b, _ := os.ReadFile(cfg)
	s := strings.Replace(string(b), `listen = "127.0.0.1:8931"`, `listen = "127.0.0.1:0"`, 1)
	s = strings.ReplaceAll(s, `endpoint = "sandbox"`, `endpoint = "reg"`)
	s += "\n[endpoints.reg]\nenvironment = \"staging\"\nurl = \"" + sb.URL2011() + "\"\nusername = \"sandbox\"\nfacility_id = \"sandbox\"\npassword_env = \"IZDROP_TEST_REG_PW\"\n"
	os.WriteFile(cfg, []byte(s), 0o600)

	t.Setenv("IZDROP_TEST_REG_PW", "")
	if code, out, _ := runIn(t, dir, "config", "check", "-q"); code != exitUsage || !strings.Contains(out, "endpoints.reg.password_env: the password is not available") {
		t.Errorf("config check without the password: exit %d\n%s", code, out)
	}
	t.Setenv("IZDROP_TEST_REG_PW", "wrong")
	if code, out, _ := runIn(t, dir, "ping", "-endpoint", "reg", "-auth"); code != exitRefused || !strings.Contains(out, "SecurityFault") {
		t.Errorf("ping -auth with a wrong password: exit %d\n%s", code, out)
	}
	os.MkdirAll(filepath.Join(dir, "var", "inbox"), 0o700)
	if err := os.Rename(filepath.Join(dir, "visit-administered.csv"), filepath.Join(dir, "var", "inbox", "visit-administered.csv")); err != nil {
		t.Fatal(err)
	}
	calls := sb.Stats().Calls
	if code, out, _ := runIn(t, dir, "run", "--once"); code != exitRefused || !strings.Contains(out, "refused our credentials") || sb.Stats().Calls != calls {
		t.Errorf("run --once after a refusal: exit %d, %d calls\n%s", code, sb.Stats().Calls-calls, out)
	}
	if code, out, _ := runIn(t, dir, "config", "check", "-q"); code != exitUsage || !strings.Contains(out, "refused our credentials") {
		t.Errorf("config check after a refusal: exit %d\n%s", code, out)
	}
	t.Setenv("IZDROP_TEST_REG_PW", "right")
	if code, out, _ := runIn(t, dir, "ping", "-endpoint", "reg", "-auth"); code != exitOK || !strings.Contains(out, "sending to it resumes") {
		t.Errorf("ping -auth after the fix: exit %d\n%s", code, out)
	}
	if code, out, _ := runIn(t, dir, "testplan", "-out", "tp"); code != exitOK || !strings.Contains(out, "every case passed") {
		t.Errorf("testplan: exit %d\n%s", code, out)
	}
	if code, out, _ := runIn(t, dir, "run", "--once"); code != exitOK || !strings.Contains(out, "1 done") {
		t.Errorf("run --once after the fix: exit %d\n%s", code, out)
	}
	if code, out, _ := runIn(t, dir, "testplan", "-list"); code != exitOK || !strings.Contains(out, "cvx-mvx-mismatch") {
		t.Errorf("testplan -list: exit %d\n%s", code, out)
	}
}

// TestValidateOtherFormats: the shipped config reads the HL7 and FHIR
// examples through their inboxes' profiles, chosen by file name.
func TestValidateOtherFormats(t *testing.T) {
	dir := copyExamples(t, "clinic-day-batch.hl7", "clinic-day-Immunization.ndjson", "clinic-day-Patient.ndjson")
	code, out, errs := runIn(t, dir, "validate", "clinic-day-batch.hl7", "clinic-day-Immunization.ndjson")
	if code != exitOK || !strings.Contains(out, "clinic-day-batch.hl7: 10 record(s): 10 valid") || !strings.Contains(out, "clinic-day-Immunization.ndjson: 10 record(s): 10 valid") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	os.Remove(filepath.Join(dir, "clinic-day-Patient.ndjson"))
	code, out, _ = runIn(t, dir, "validate", "clinic-day-Immunization.ndjson")
	if code != exitRecords || !strings.Contains(out, "its partner clinic-day-Patient.ndjson is not there") {
		t.Fatalf("without its partner: exit %d\n%s", code, out)
	}
}

// The developers' hooks write a CPU profile and an execution trace of the
// whole run; a path that cannot be written is said, and the run goes on.
func TestProfilesFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	prof, tr := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "run.trace")
	t.Setenv("IZDROP_CPUPROFILE", prof)
	t.Setenv("IZDROP_TRACE", tr)
	var stderr bytes.Buffer
	stop := startProfiles(&stderr)
	var out bytes.Buffer
	if code := run([]string{"version"}, &out, &stderr); code != exitOK {
		t.Fatalf("version: exit %d", code)
	}
	stop()
	if stderr.Len() != 0 {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if b, err := os.ReadFile(prof); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("CPU profile: %v, not a gzipped profile (%d bytes)", err, len(b))
	}
	if b, err := os.ReadFile(tr); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) || !bytes.Contains(b[:min(len(b), 16)], []byte(" trace")) {
		t.Errorf("trace: %v, no trace header (%d bytes)", err, len(b))
	}

	t.Setenv("IZDROP_CPUPROFILE", "")
	t.Setenv("IZDROP_TRACE", filepath.Join(dir, "missing", "run.trace"))
	stderr.Reset()
	startProfiles(&stderr)()
	if !strings.Contains(stderr.String(), "IZDROP_TRACE="+filepath.Join(dir, "missing", "run.trace")) {
		t.Errorf("an unwritable trace path is not said: %q", stderr.String())
	}
}

// bench -cpuprofile and -trace give each run its own files; a profile
// asked of bench itself is not passed on to the runs to overwrite.
func TestBenchProfilesPerRun(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("IZDROP_TEST_MAIN", "1")
	bench := func(flags ...string) {
		t.Helper()
		var out, stderr bytes.Buffer
		args := append([]string{"bench", "-rows", "60", "-latency", "0", "-concurrency", "2", "-plain=false", "-izdrop", exe}, flags...)
		if code := run(args, &out, &stderr); code != exitOK {
			t.Fatalf("bench: exit %d\n%s", code, stderr.String())
		}
	}
	bench("-cpuprofile", filepath.Join(dir, "prof"), "-trace", filepath.Join(dir, "trace"))
	if b, err := os.ReadFile(filepath.Join(dir, "prof", "run-2.pprof")); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("run-2.pprof: %v, not a gzipped profile (%d bytes)", err, len(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "trace", "run-2.trace")); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("run-2.trace: %v, no trace header (%d bytes)", err, len(b))
	}

	own := filepath.Join(dir, "bench-own.trace")
	t.Setenv("IZDROP_TRACE", own)
	bench("-cpuprofile", filepath.Join(dir, "prof2"))
	if _, err := os.Stat(filepath.Join(dir, "prof2", "run-2.pprof")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the run wrote bench's own IZDROP_TRACE file (%v)", err)
	}
}
