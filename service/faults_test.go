package service_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/izdrop/izdrop/sandbox"
)

// One patient's messages failing (HTTP 503 for them only) is that
// patient's problem: the other patients' records go, the endpoint is not
// declared down, and the failing message ends with the registry's failure
// as its outcome instead of holding its file in work/ forever.
func TestOnePatientsFaultsDoNotStopTheOthers(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{FailMatching: "MRN80001"})
	f.cfg.Endpoints["reg"].RetryBudget.Duration = time.Minute // room for every attempt
	f.drop(t, "a.csv", patients(t, 40))
	f.drop(t, "b.csv", example(t, "historical.csv"))
	sum := runOnce(t, f)
	if sum.Pending != 0 || sum.Failed != 1 || sum.Done != 1 || sum.Records["accepted"] != 39+4 || sum.Records["rejected"] != 1 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("a.csv")
	sc := readSidecar(t, p)
	for _, r := range sc.Records {
		if r.VaccinationID != "V-PAT-0001" {
			continue
		}
		if r.Outcome != "rejected" || len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Text, "while answering other messages") {
			t.Errorf("the failing patient's record: %+v", r)
		}
	}
	rej, _ := os.ReadFile(p + ".rejects.csv")
	if !strings.Contains(string(rej), "registry: fault: ") || strings.Contains(string(rej), ":  ") {
		t.Errorf("rejects.csv:\n%s", rej)
	}
	if st := f.sb.Stats(); st.Calls != st.Submits {
		t.Errorf("%d breaker probes: the breaker opened for one patient's failures", st.Calls-st.Submits)
	}
}

// An outage opens the breaker; when the registry is back, sending resumes
// within the cool-down cap (breaker_max_cooldown), without waiting for a
// rescan.
func TestRecoveryResumesWithinTheCooldownCap(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{Rate503: 1})
	f.cfg.Endpoints["reg"].BreakerMaxCooldown.Duration = 400 * time.Millisecond
	f.cfg.Inboxes["clinic"].Rescan.Duration = time.Hour
	s := f.service(t)
	// Dropped before the start: with no rescan, the first pass must see it.
	f.drop(t, "a.csv", patients(t, 6))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	// The breaker's probes are the calls that are not submissions.
	probes := func() int64 { st := f.sb.Stats(); return st.Calls - st.Submits }
	waitFor(t, "the breaker to open", 10*time.Second, func() bool { return probes() > 0 })
	// Let it stay down a while, so the cool-down doubles to its cap.
	waitFor(t, "probes to back off", 10*time.Second, func() bool { return probes() >= 4 })
	back := time.Now()
	f.sb.SetFaults(sandbox.Faults{})
	waitFor(t, "a.csv archived", 10*time.Second, func() bool { _, ok := f.archived("a.csv"); return ok })
	lag := time.Since(back)
	t.Logf("resume lag after recovery: %v (cap 400ms)", lag)
	if lag > 400*time.Millisecond+2*time.Second {
		t.Errorf("sending resumed %v after the registry came back; the cap is 400ms", lag)
	}
	cancel()
	<-served
	receivedOnce(t, f.sb)
}

// patients is an export of n patients with one administered dose each.
func patients(t *testing.T, n int) []byte {
	ex := strings.SplitN(string(example(t, "visit-administered.csv")), "\n", 2)
	row := strings.Split(strings.TrimSpace(ex[1]), "\n")[0]
	var b strings.Builder
	b.WriteString(ex[0] + "\n")
	for i := 0; i < n; i++ {
		r := strings.Replace(row, "MRN10001", fmt.Sprintf("MRN8%04d", i), 1)
		b.WriteString(strings.Replace(r, "V-2026-0001", fmt.Sprintf("V-PAT-%04d", i), 1) + "\n")
	}
	return []byte(b.String())
}

// A message over the endpoint's size cap is never sent: its records are
// refused with the reason, and the file's other records go.
func TestAMessageOverTheCapIsRefusedNotSent(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	f.cfg.Endpoints["reg"].MaxMessageBytes = 4096
	ex := strings.SplitN(string(example(t, "visit-administered.csv")), "\n", 2)
	row := strings.Split(strings.TrimSpace(ex[1]), "\n")[0]
	var b strings.Builder
	b.WriteString(ex[0] + "\n")
	for i := 0; i < 12; i++ { // one patient, twelve doses: one big message
		b.WriteString(strings.Replace(row, "V-2026-0001", fmt.Sprintf("V-BIG-%02d", i), 1) + "\n")
	}
	b.WriteString(strings.Replace(strings.Replace(row, "MRN10001", "MRN20002", 1), "V-2026-0001", "V-SMALL", 1) + "\n")
	f.drop(t, "big.csv", []byte(b.String()))
	sum := runOnce(t, f)
	if sum.Failed != 1 || sum.Records["invalid"] != 12 || sum.Records["accepted"] != 1 {
		t.Fatalf("%+v", sum)
	}
	p, _ := f.archived("big.csv")
	sc := readSidecar(t, p)
	if sc.Records[0].Outcome != "invalid" || sc.Records[0].MSH10 != "" || !strings.Contains(sc.Records[0].Errors[0].Text, "max_message_bytes") {
		t.Errorf("record %+v", sc.Records[0])
	}
	for _, r := range f.sb.Received() {
		for _, d := range r.Doses {
			if strings.HasPrefix(d.ID, "V-BIG") {
				t.Fatalf("%s reached the registry", d.ID)
			}
		}
	}
}
