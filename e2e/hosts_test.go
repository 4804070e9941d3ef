//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/izdrop/izdrop/internal/pgtest"
	"github.com/izdrop/izdrop/sandbox"
)

// hostEnv is one izdrop host: a folder of its own (data, archive, log),
// its config naming the shared PostgreSQL journal, the shared SFTP inbox
// and the shared registry.
func hostEnv(t *testing.T, sb *sandbox.Server, s *sshd, remote, dbURL string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, archive: filepath.Join(dir, "remote-archive"), config: filepath.Join(dir, "config.toml"), sb: sb}
	doc := fmt.Sprintf(`
[service]
data_dir = "var"
log_format = "json"
shutdown_grace = "2s"

[journal]
url = %q
password_env = "IZDROP_E2E_DB_PW"

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

[inboxes.remote]
kind = "sftp"
host = "127.0.0.1"
port = %d
user = %q
key_file = %q
known_hosts = %q
path = %q
archive = "remote-archive"
site = "demo"
endpoint = "reg"
stable_for = "200ms"
rescan = "300ms"
`, dbURL, sb.URL2011(), s.port, s.User, s.KeyFile, s.KnownHosts, remote)
	if err := os.WriteFile(e.config, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// visitsFile writes one visit per patient: file k holds the k-th dose of
// every patient, so a patient's doses are in files 0, 1, 2... and must
// reach the registry in that order.
func visitsFile(k, patients int) []byte {
	var b strings.Builder
	b.WriteString("patient_id,patient_last_name,patient_first_name,patient_birth_date,patient_sex,race,ethnicity,phone," +
		"vaccination_id,admin_date,cvx,mvx,lot_number,dose_ml,route,body_site,vfc_eligibility\n")
	vax := [][2]string{{"08", "MSD"}, {"20", "SKB"}, {"10", "PMC"}, {"133", "PFR"}, {"03", "MSD"}, {"21", "MSD"}}
	v := vax[k%len(vax)]
	for p := 0; p < patients; p++ {
		fmt.Fprintf(&b, "H-P%04d,Garcia,Ana,2020-%02d-%02d,F,2106-3,2186-5,415-555-%04d,H-P%04d-F%02d,2026-10-%02d,%s,%s,L%05d,0.5,C28161,LT,V02\n",
			p, 1+p%12, 1+p%28, p, p, k, 1+k, v[0], v[1], k*10000+p)
	}
	return []byte(b.String())
}

// TestTwoHostsOnOnePostgresJournalAndOneSFTPInbox runs two `izdrop serve`
// processes, each with its own data folder and archive, standing for two
// hosts: one PostgreSQL journal, one SFTP inbox on a real sshd. The one at
// work is SIGKILLed mid-run; the other takes the inbox over. Every record
// reaches the registry once (a message in flight at the kill, or whose
// answer was being recorded, is resent with its first MSH-10 and bytes), each patient's doses in file order,
// and every file goes back to the server's done/ once, with its sidecars.
func TestTwoHostsOnOnePostgresJournalAndOneSFTPInbox(t *testing.T) {
	s := startSSHD(t)
	url, pg := pgtest.Database(t)
	t.Setenv("IZDROP_E2E_DB_PW", pg.Password)
	sb, err := sandbox.Start(sandbox.Options{Password: "e2e-secret", Faults: sandbox.Faults{Latency: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	remote := filepath.Join(t.TempDir(), "exports")
	os.MkdirAll(remote, 0o700)
	const files, patients = 6, 150
	for k := 0; k < files; k++ {
		tmp := filepath.Join(remote, fmt.Sprintf(".v%d.tmp", k))
		os.WriteFile(tmp, visitsFile(k, patients), 0o644)
		os.Rename(tmp, filepath.Join(remote, fmt.Sprintf("visits-%d.csv", k)))
	}
	ha, hb := hostEnv(t, sb, s, remote, url), hostEnv(t, sb, s, remote, url)
	messages := func() int64 { return sb.Stats().Messages }
	a := ha.start(t, "host-a", "serve")
	waitFor(t, "host A at work", 60*time.Second, func() bool { return messages() >= 100 })
	b := hb.start(t, "host-b", "serve")
	waitFor(t, "host B up", 20*time.Second, func() bool {
		l, _ := os.ReadFile(b.log)
		return strings.Contains(string(l), "polling remote inbox")
	})
	waitFor(t, "more messages", 60*time.Second, func() bool { return messages() >= 350 })
	a.kill()
	killedAt := messages()
	t.Logf("host A SIGKILLed after %d messages", killedAt)
	waitFor(t, "every file returned to the server", 120*time.Second, func() bool {
		m, _ := filepath.Glob(filepath.Join(remote, "done", "*", "visits-*.csv"))
		return len(m) == files
	})
	b.cmd.Process.Signal(syscall.SIGTERM)
	<-b.done

	// The registry's view: each dose once, each patient's in file order.
	perDose, resends := registryView(sb)
	if len(perDose) != files*patients {
		t.Errorf("%d doses received, want %d", len(perDose), files*patients)
	}
	for id, n := range perDose {
		if n != 1 {
			t.Errorf("dose %s sent %d times", id, n)
		}
	}
	st := sb.Stats()
	if st.Duplicates != 0 || st.ReusedControlIDs != 0 || resends > 2*4 {
		t.Errorf("%d duplicates, %d MSH-10s reused with other bytes, %d resends (at most two per slot at the kill: one in flight, one whose answer was being recorded)", st.Duplicates, st.ReusedControlIDs, resends)
	}
	last := map[string]int{}
	outOfOrder := 0
	for _, r := range sb.Received() {
		if r.Resend {
			continue
		}
		for _, d := range r.Doses {
			var p, k int
			if _, err := fmt.Sscanf(d.ID, "H-P%04d-F%02d", &p, &k); err != nil {
				t.Fatalf("dose id %q: %v", d.ID, err)
			}
			key := fmt.Sprint(p)
			if prev, ok := last[key]; ok && k <= prev {
				outOfOrder++
				if outOfOrder < 5 {
					t.Errorf("patient %d: the dose of file %d reached the registry after the one of file %d", p, k, prev)
				}
			}
			last[key] = k
		}
	}
	// The server's view: each file returned once, with its sidecars, all
	// its records accepted; nothing left in its work/.
	for k := 0; k < files; k++ {
		name := fmt.Sprintf("visits-%d.csv", k)
		m, _ := filepath.Glob(filepath.Join(remote, "done", "*", strings.TrimSuffix(name, ".csv")+"*"))
		if len(m) != 3 {
			t.Errorf("%s returned as %v, want the file and two sidecars", name, m)
			continue
		}
		var sc sidecar
		if err := json.Unmarshal(mustRead(t, filepath.Join(filepath.Dir(m[0]), name+".ack.json")), &sc); err != nil {
			t.Fatal(err)
		}
		if sc.Counts["accepted"] != patients || len(sc.Records) != patients {
			t.Errorf("%s: counts %v, %d records", name, sc.Counts, len(sc.Records))
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(remote, "work")); len(ents) != 0 {
		t.Errorf("left in the server's work/: %v", ents)
	}
	claims := func(log string) int { return strings.Count(string(mustRead(t, log)), `"message":"file claimed"`) }
	t.Logf("%d records in %d messages (%d resent with their first MSH-10); host A claimed %d files before the kill, host B %d",
		files*patients, st.Messages-int64(resends), resends, claims(a.log), claims(b.log))
	if claims(b.log) == 0 {
		t.Error("host B never took the inbox over")
	}
	noPatientDataInLogs(t, ha.dir)
	noPatientDataInLogs(t, hb.dir)
}
