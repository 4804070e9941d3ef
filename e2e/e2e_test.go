//go:build unix

package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/izdrop/izdrop/internal/pgtest"
	"github.com/izdrop/izdrop/sandbox"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// izdrop builds the binary once for the package's tests.
func izdrop(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "izdrop-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "izdrop")
		out, err := exec.Command("go", "build", "-o", binary, "../cmd/izdrop").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if binary != "" {
		os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

type env struct {
	dir, inbox, archive, config string
	sb                          *sandbox.Server
}

func newEnv(t *testing.T, faults sandbox.Faults, stableFor string) *env {
	t.Helper()
	dir := t.TempDir()
	sb, err := sandbox.Start(sandbox.Options{Password: "e2e-secret", Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	e := &env{dir: dir, inbox: filepath.Join(dir, "inbox"), archive: filepath.Join(dir, "archive"), config: filepath.Join(dir, "config.toml"), sb: sb}
	os.MkdirAll(e.inbox, 0o700)
	doc := fmt.Sprintf(`
[service]
data_dir = "var"
log_format = "json"
shutdown_grace = "2s"

[sites.demo]
id = "DEMO01"
region = "CAIRBA"
county = "San Francisco"

[status]
listen = "127.0.0.1:0"

[endpoints.reg]
environment = "staging"
url = %q
username = "sandbox"
facility_id = "sandbox"
password_env = "IZDROP_E2E_PW"
concurrency = 4
retry_budget = "20s"
breaker_cooldown = "200ms"

[inboxes.clinic]
path = "inbox"
create = true
archive = "archive"
site = "demo"
endpoint = "reg"
stable_for = %q
rescan = "1s"
`, sb.URL2011(), stableFor)
	os.WriteFile(e.config, []byte(doc), 0o600)
	return e
}

type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

func (e *env) start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(e.dir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(izdrop(t), append(args, "-config", e.config)...)
	cmd.Dir = e.dir
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), "IZDROP_E2E_PW=e2e-secret")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); lf.Close(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() && os.Getenv("IZDROP_E2E_KEEP") != "" {
			// Keep the process's log (ids and hashes only, no patient
			// data) for a look at what went wrong.
			b, _ := os.ReadFile(logPath)
			keep := filepath.Join(os.Getenv("IZDROP_E2E_KEEP"), t.Name()+"-"+name+".log")
			os.MkdirAll(filepath.Dir(keep), 0o700)
			os.WriteFile(keep, b, 0o600)
		}
	})
	return p
}

func (p *proc) kill() { p.cmd.Process.Signal(syscall.SIGKILL); <-p.done }

// csvFile writes rows records in the default layout: patients of one to
// three doses, ids prefixed so files never share one.
func csvFile(prefix string, rows int) []byte {
	var b strings.Builder
	b.WriteString("patient_id,patient_last_name,patient_first_name,patient_birth_date,patient_sex,race,ethnicity,phone," +
		"vaccination_id,admin_date,cvx,mvx,lot_number,dose_ml,route,body_site,vfc_eligibility\n")
	vax := [][2]string{{"08", "MSD"}, {"20", "SKB"}, {"10", "PMC"}, {"133", "PFR"}, {"03", "MSD"}}
	p, left := 0, 0
	for i := 0; i < rows; i++ {
		if left == 0 {
			p++
			left = 1 + p%3
		}
		left--
		v := vax[i%len(vax)]
		fmt.Fprintf(&b, "%s-P%05d,Garcia,Ana,2020-%02d-%02d,F,2106-3,2186-5,415-555-%04d,%s-V%06d,2026-10-01,%s,%s,L%05d,0.5,C28161,LT,V02\n",
			prefix, p, 1+p%12, 1+p%28, p%10000, prefix, i, v[0], v[1], i)
	}
	return []byte(b.String())
}

// dropAtomically writes the file under a temp name and renames it in.
func (e *env) drop(t *testing.T, name string, b []byte) {
	t.Helper()
	tmp := filepath.Join(e.inbox, "."+name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.inbox, name)); err != nil {
		t.Fatal(err)
	}
}

func (e *env) archived(name string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(e.archive, "*", "*", name))
	if len(m) == 1 {
		return m[0], true
	}
	return "", false
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type sidecar struct {
	Result  string         `json:"result"`
	Counts  map[string]int `json:"counts"`
	Records []struct {
		VaccinationID string `json:"vaccination_id"`
		MSH10         string `json:"msh10"`
		Outcome       string `json:"outcome"`
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
		t.Fatal(err)
	}
	return s
}

// registryView counts, per dose, the messages that brought it, resends
// (same MSH-10, answered from the first ACK) apart.
func registryView(sb *sandbox.Server) (perDose map[string]int, resends int) {
	perDose = map[string]int{}
	for _, r := range sb.Received() {
		if r.Resend {
			resends++
			continue
		}
		for _, d := range r.Doses {
			perDose[d.ID]++
		}
	}
	return perDose, resends
}

// TestCrashAtAnyPointLosesNothingAndSendsNothingTwice kills izdrop with
// SIGKILL at several points of a run of 3000 records - mid-send, and while
// a file is being archived - restarts it each time, and checks that every
// record ends with an outcome, that none is lost, and that none reaches the
// registry twice except the few in flight at a kill (or whose answer was
// being recorded), which are resent with the same MSH-10.
func TestCrashAtAnyPointLosesNothingAndSendsNothingTwice(t *testing.T) {
	e := newEnv(t, sandbox.Faults{Latency: 2 * time.Millisecond, Jitter: 6 * time.Millisecond}, "300ms")
	files := map[string]int{"first.csv": 1200, "second.csv": 1800}
	e.drop(t, "first.csv", csvFile("A", files["first.csv"]))
	e.drop(t, "second.csv", csvFile("B", files["second.csv"]))
	kills := 0
	messages := func() int64 { return e.sb.Stats().Messages }
	for _, at := range []int64{150, 600, 1100} {
		p := e.start(t, fmt.Sprintf("run%d", kills), "serve")
		waitFor(t, fmt.Sprintf("%d messages", at), 60*time.Second, func() bool { return messages() >= at })
		p.kill()
		kills++
		t.Logf("SIGKILL after %d messages received", messages())
	}
	// Kill while the second file is being archived: its reservation appears
	// before the sidecars are written and the file moves.
	p := e.start(t, "run-archive", "serve")
	waitFor(t, "the second file's archiving", 60*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(e.archive, "*", "*", "second*.csv.ack.json"))
		return len(m) > 0
	})
	p.kill()
	kills++
	t.Logf("SIGKILL during archiving, after %d messages", messages())
	// The last start runs to the end.
	p = e.start(t, "run-final", "serve")
	for name := range files {
		waitFor(t, name+" archived", 120*time.Second, func() bool { _, ok := e.archived(name); return ok })
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done

	total := 0
	for name, rows := range files {
		path, _ := e.archived(name)
		if !strings.Contains(path, "/done/") {
			t.Errorf("%s filed in %s", name, path)
		}
		sc := readSidecar(t, path)
		if len(sc.Records) != rows || sc.Counts["accepted"] != rows {
			t.Errorf("%s: %d records, counts %v; want %d accepted", name, len(sc.Records), sc.Counts, rows)
		}
		for _, r := range sc.Records {
			if r.MSH10 == "" || r.Outcome != "accepted" {
				t.Errorf("%s: record %+v", name, r)
				break
			}
		}
		total += rows
	}
	// No copy of a file anywhere else: not left in work/, not archived twice.
	if ents, _ := os.ReadDir(filepath.Join(e.inbox, "work")); len(ents) != 0 {
		t.Errorf("left in work/: %v", ents)
	}
	all, _ := filepath.Glob(filepath.Join(e.archive, "*", "*", "*.csv"))
	if len(all) != 2 {
		t.Errorf("archive holds %v", all)
	}
	perDose, resends := registryView(e.sb)
	if len(perDose) != total {
		t.Errorf("the registry holds %d doses, want %d", len(perDose), total)
	}
	for id, n := range perDose {
		if n != 1 {
			t.Errorf("dose %s sent %d times with different MSH-10s", id, n)
		}
	}
	if st := e.sb.Stats(); st.Duplicates != 0 || st.Stored != int64(total) || st.ReusedControlIDs != 0 {
		t.Errorf("registry: %d duplicates, %d stored, %d MSH-10s reused with other bytes", st.Duplicates, st.Stored, st.ReusedControlIDs)
	}
	// Only messages in flight at a kill, or whose answer was being
	// recorded, may be resent: at most two per slot (concurrency 4) per kill.
	if resends > 2*4*kills {
		t.Errorf("%d resends after %d kills", resends, kills)
	}
	t.Logf("%d records in %d messages; %d kills; %d messages resent with their first MSH-10", total, e.sb.Stats().Messages-int64(resends), kills, resends)
	noPatientDataInLogs(t, e.dir)
}

// noPatientDataInLogs checks the processes' logs for the generated
// patients' names, phone numbers and birth dates.
func noPatientDataInLogs(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) == 0 {
		t.Fatal("no logs")
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, leak := range []string{"Garcia", "Ana", "415-555", "2020-0", "2020-1"} {
			if strings.Contains(string(b), leak) {
				t.Errorf("%s contains patient data (%q)", filepath.Base(l), leak)
			}
		}
	}
}

// TestTwoServeProcessesOnOneInboxProcessEachFileOnce runs two izdrop
// processes on the same inbox and journal. They take turns (one pass at a
// time per inbox, so a patient's records keep their order); when the one
// at work is killed, the other takes over and finishes every file, each
// record reaching the registry once.
func TestTwoServeProcessesOnOneInboxProcessEachFileOnce(t *testing.T) {
	e := newEnv(t, sandbox.Faults{Latency: 2 * time.Millisecond}, "200ms")
	a := e.start(t, "a", "serve")
	b := e.start(t, "b", "serve")
	const n = 12
	for i := 0; i < n; i++ {
		e.drop(t, fmt.Sprintf("f%02d.csv", i), csvFile(fmt.Sprintf("F%02d", i), 60))
	}
	claims := func(log string) int {
		f, _ := os.Open(log)
		defer f.Close()
		n := 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"message":"file claimed"`) {
				n++
			}
		}
		return n
	}
	waitFor(t, "a few files archived", 60*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(e.archive, "*", "*", "*.csv"))
		return len(m) >= 3
	})
	active, standby := a, b
	if claims(b.log) > 0 {
		active, standby = b, a
	}
	active.kill()
	before := claims(active.log)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%02d.csv", i)
		waitFor(t, name+" archived", 60*time.Second, func() bool { _, ok := e.archived(name); return ok })
	}
	standby.cmd.Process.Signal(syscall.SIGTERM)
	<-standby.done
	all, _ := filepath.Glob(filepath.Join(e.archive, "*", "*", "*.csv"))
	if len(all) != n {
		t.Errorf("%d files archived, want %d (none twice): %v", len(all), n, all)
	}
	perDose, resends := registryView(e.sb)
	st := e.sb.Stats()
	if len(perDose) != n*60 || st.Duplicates != 0 || st.ReusedControlIDs != 0 || resends > 2*4 {
		t.Errorf("%d doses (want %d), %d resends, %d duplicates, %d reused MSH-10s", len(perDose), n*60, resends, st.Duplicates, st.ReusedControlIDs)
	}
	for id, c := range perDose {
		if c != 1 {
			t.Errorf("dose %s sent %d times", id, c)
		}
	}
	taken := claims(standby.log)
	t.Logf("the first process claimed %d files before it was killed, the second %d after; %d messages resent", before, taken, resends)
	// A kill between a claim (the rename into work/) and its log line
	// leaves one claim unlogged; the second process resumes that file.
	if before+taken > n || before+taken < n-1 || before == 0 || taken == 0 {
		t.Errorf("%d + %d claims for %d files", before, taken, n)
	}
}

// TestDropToFirstSubmitLatency measures, with the default 2 s stability
// window, the time from a file appearing in the inbox to its first message
// reaching the registry. It asserts only what must hold (not before the
// window); the number is for the record.
func TestDropToFirstSubmitLatency(t *testing.T) {
	e := newEnv(t, sandbox.Faults{}, "2s")
	p := e.start(t, "latency", "serve")
	waitFor(t, "the service to start", 20*time.Second, func() bool {
		b, _ := os.ReadFile(p.log)
		return strings.Contains(string(b), "watching inbox")
	})
	var lat []time.Duration
	for i := 0; i < 3; i++ {
		before := e.sb.Stats().Submits
		dropped := time.Now()
		e.drop(t, fmt.Sprintf("l%d.csv", i), csvFile(fmt.Sprintf("L%d", i), 3))
		waitFor(t, "the first submit", 30*time.Second, func() bool { return e.sb.Stats().Submits > before })
		d := time.Since(dropped)
		if d < 2*time.Second {
			t.Errorf("sent after %v, before the 2 s stability window", d)
		}
		lat = append(lat, d)
		waitFor(t, "archived", 30*time.Second, func() bool { _, ok := e.archived(fmt.Sprintf("l%d.csv", i)); return ok })
	}
	t.Logf("drop-to-first-submit latency with stable_for = 2s: %v", lat)
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
