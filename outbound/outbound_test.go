package outbound_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// vxu is a message the sandbox accepts; edit changes one segment.
func vxu(msh10, vid string, edits ...func(string) string) []byte {
	segs := []string{
		"MSH|^~\\&|izdrop|DEMOORG|CAIR IIS|CAIRBA|20261125093000-0800||VXU^V04^VXU_V04|" + msh10 + "|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|DEMO01",
		"PID|1||P" + vid + "^^^DEMOORG^MR||Rivera^Ana^^^^^L||20200501|F||2106-3^White^CDCREC",
		"PD1||||||||||||||||A^Active^HL70441|20261124",
		"ORC|RE||" + vid + "^DEMOORG|||||||||1234567893^Okafor^Chidi^^^^^^CMS^L^^^NPI|||||DEMO01^^HL70362",
		"RXA|0|1|20261001||08^Hep B, adolescent or pediatric^CVX|0.5|mL^mL^UCUM||00^New immunization record^NIP001|1987654328^Nguyen^Thao^^^^^^CMS^L^^^NPI|^^^DEMO01||||L1|20270531|MSD^Merck and Co., Inc.^MVX|||CP|A",
		"RXR|C28161^Intramuscular^NCIT|LT^Left Thigh^HL70163",
		"OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V02^VFC eligible - Medicaid/Medicaid Managed Care^HL70064||||||F|||20261001|||VXC40^Eligibility captured at the immunization level^CDCPHINVS",
	}
	for _, e := range edits {
		for i := range segs {
			segs[i] = e(segs[i])
		}
	}
	return []byte(strings.Join(segs, "\r") + "\r")
}

func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

type env struct {
	sb *sandbox.Server
	c  *outbound.Client
}

func start(t testing.TB, codec outbound.Codec, faults sandbox.Faults, tune func(*outbound.Endpoint)) *env {
	t.Helper()
	sb, err := sandbox.Start(sandbox.Options{Faults: faults, Seed: 7, MaxMessageBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	url := sb.URL2011()
	if codec.Name == "2014" {
		url = sb.URL2014()
	}
	ep := outbound.Endpoint{Name: "test", URL: url, Codec: codec, Username: "sandbox", Password: "sandbox", FacilityID: "sandbox",
		ConnectTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, Concurrency: 4, RetryBudget: 10 * time.Second,
		MaxAttempts: 6, BackoffBase: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		BreakerFailures: 5, BreakerCooldown: 50 * time.Millisecond}
	if tune != nil {
		tune(&ep)
	}
	c, err := outbound.New(ep, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{sb, c}
}

// submits counts the submitSingleMessage calls the sandbox received.
func submits(sb *sandbox.Server) int64 { return sb.Stats().Submits }

func TestOutcomeTable(t *testing.T) {
	for _, codec := range []outbound.Codec{outbound.Codec2011, outbound.Codec2014} {
		t.Run(codec.Name, func(t *testing.T) {
			e := start(t, codec, sandbox.Faults{}, nil)
			ctx := context.Background()
			cases := []struct {
				name    string
				msh10   string
				msg     []byte
				outcome ack.Outcome
				msa     string
				errText string
			}{
				{"AA", "M1", vxu("M1", "V1"), ack.Accepted, "AA", ""},
				{"AE warnings only", "M2", vxu("M2", "V2", replace("LT^Left Thigh^HL70163", "XX^Nowhere^HL70163")), ack.AcceptedWithWarnings, "AE", "Informational error - Administration Site not recognized"},
				{"AE rejected", "M3", vxu("M3", "V3", replace("08^Hep B, adolescent or pediatric^CVX", "9999^bogus^CVX")), ack.Rejected, "AE", "MESSAGE REJECTED - "},
				{"AR header", "M4", vxu("M4", "V4", replace("|M4|P|", "|M4|T|")), ack.Rejected, "AR", "MSH-11 processing id must be P"},
			}
			for _, c := range cases {
				before := submits(e.sb)
				d, err := e.c.Deliver(ctx, c.msh10, c.msg)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if d.Outcome != c.outcome || d.ACK.Code != c.msa || d.Attempts != 1 {
					t.Errorf("%s: outcome %s msa %s attempts %d", c.name, d.Outcome, d.ACK.Code, d.Attempts)
				}
				if c.errText != "" && (len(d.ACK.Errors) == 0 || !strings.Contains(d.ACK.Errors[0].Text, c.errText)) {
					t.Errorf("%s: ERRs %+v", c.name, d.ACK.Errors)
				}
				for _, er := range d.ACK.Errors {
					if er.Location == "" || er.Code == "" || er.Severity == "" || er.AppCode == "" || er.Text == "" {
						t.Errorf("%s: ERR lacks a field: %+v", c.name, er)
					}
				}
				if n := submits(e.sb) - before; n != 1 {
					t.Errorf("%s: sent %d times, want exactly once", c.name, n)
				}
			}
			// MessageTooLargeFault: a final rejection, never resent.
			big := vxu("M5", "V5", replace("PD1|", "NTE|"+strings.Repeat("x", 9000)+"\rPD1|"))
			before := submits(e.sb)
			d, err := e.c.Deliver(ctx, "M5", big)
			var tl *outbound.MessageTooLargeFault
			if err != nil || d.Outcome != ack.Rejected || !errors.As(d.Fault, &tl) || tl.MaxSize != 8<<10 {
				t.Fatalf("too large: %+v %v", d, err)
			}
			if n := submits(e.sb) - before; n != 1 {
				t.Errorf("too large: sent %d times", n)
			}
			// Two MSH in one call is a batch: MessageTooLargeFault as well.
			d, err = e.c.Deliver(ctx, "M6", append(vxu("M6", "V6"), vxu("M7", "V7")...))
			if err != nil || !errors.As(d.Fault, &tl) {
				t.Errorf("batch: %+v %v", d, err)
			}
			if err := e.c.Ping(ctx); err != nil {
				t.Errorf("ping: %v", err)
			}
		})
	}
}

func TestSecurityFaultStopsTheEndpointUntilCredentialsWork(t *testing.T) {
	for _, codec := range []outbound.Codec{outbound.Codec2011, outbound.Codec2014} {
		t.Run(codec.Name, func(t *testing.T) {
			e := start(t, codec, sandbox.Faults{}, func(ep *outbound.Endpoint) {
				ep.RetryBudget = 300 * time.Millisecond
				ep.BreakerCooldown = 20 * time.Millisecond
			})
			e.sb.SetCredentials("sandbox", "rotated", "sandbox")
			_, err := e.c.Deliver(context.Background(), "S1", vxu("S1", "VS1"))
			if !errors.Is(err, outbound.ErrNotDelivered) || !errors.Is(err, outbound.ErrCredentialsRefused) || !strings.Contains(err.Error(), "SecurityFault") {
				t.Fatalf("err = %v", err)
			}
			if _, _, ok := e.c.Refused(); !ok {
				t.Fatal("the client does not say the registry refused its credentials")
			}
			// A refusal is not an outage: no breaker, no probe, and no
			// further login with the refused credentials, however many
			// messages wait.
			if st, _ := e.c.Breaker(); st != outbound.Closed {
				t.Errorf("breaker %s after a SecurityFault: a refusal is not an outage", st)
			}
			for i := 0; i < 5; i++ {
				if _, err := e.c.Deliver(context.Background(), "S1", vxu("S1", "VS1")); !errors.Is(err, outbound.ErrCredentialsRefused) {
					t.Fatalf("delivery %d while refused: %v", i, err)
				}
			}
			if calls := submits(e.sb); calls != 1 || e.sb.Stats().Security != 1 {
				t.Errorf("%d submit calls (%d security faults) with refused credentials; want the first one only", calls, e.sb.Stats().Security)
			}
			// The credentials are fixed and checked: sending resumes.
			e.sb.SetCredentials("sandbox", "sandbox", "sandbox")
			e.c.ClearRefused()
			d, err := e.c.Deliver(context.Background(), "S2", vxu("S2", "VS2"))
			if err != nil || d.Outcome != ack.Accepted {
				t.Fatalf("after the fix: %+v %v", d, err)
			}
		})
	}
}

func TestRejectedMessageIsSentExactlyOnce(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{}, nil)
	msg := vxu("R1", "VR1", replace("MSD^Merck and Co., Inc.^MVX", "PFR^Pfizer^MVX"))
	d, err := e.c.Deliver(context.Background(), "R1", msg)
	if err != nil || d.Outcome != ack.Rejected {
		t.Fatalf("%+v %v", d, err)
	}
	n := 0
	for _, r := range e.sb.Received() {
		if r.MSH10 == "R1" {
			n++
		}
	}
	if n != 1 || submits(e.sb) != 1 {
		t.Fatalf("the rejected message reached the registry %d times (%d calls)", n, submits(e.sb))
	}
	if e.sb.HasDose("DEMOORG", "VR1") {
		t.Error("a rejected dose was stored")
	}
}

func TestTransientFailuresAreRetriedWithTheSameBytes(t *testing.T) {
	for _, codec := range []outbound.Codec{outbound.Codec2011, outbound.Codec2014} {
		t.Run(codec.Name, func(t *testing.T) { transientFailures(t, codec) })
	}
}

func transientFailures(t *testing.T, codec outbound.Codec) {
	for _, f := range []struct {
		name   string
		faults sandbox.Faults
	}{
		{"503", sandbox.Faults{Rate503: 1}},
		{"UnknownFault", sandbox.Faults{RateUnknown: 1}},
		{"dropped connection", sandbox.Faults{RateDrop: 1}},
		// An ACK naming another MSH-10 is no answer to this message.
		{"ACK for another message", sandbox.Faults{RateMisdirected: 1}},
	} {
		t.Run(f.name, func(t *testing.T) {
			e := start(t, codec, f.faults, func(ep *outbound.Endpoint) { ep.BreakerFailures = 100 })
			// Heal the registry after its third call.
			go func() {
				deadline := time.Now().Add(5 * time.Second)
				for submits(e.sb) < 3 && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
				e.sb.SetFaults(sandbox.Faults{})
			}()
			d, err := e.c.Deliver(context.Background(), "T1", vxu("T1", "VT1"))
			if err != nil || !d.Outcome.Stored() || d.Attempts < 3 || d.Attempts > 6 {
				t.Fatalf("%+v %v", d, err)
			}
			// Every try carried the same message: the registry stored one dose.
			if !e.sb.HasDose("DEMOORG", "VT1") || e.sb.Stats().Stored != 1 || e.sb.Stats().Duplicates != 0 {
				t.Errorf("stats %+v", e.sb.Stats())
			}
			if d.ACK == nil || d.ACK.ControlID != "T1" {
				t.Errorf("the outcome came from an ACK for %+v", d.ACK)
			}
		})
	}
}

func TestRetryBudgetLeavesTheMessageUndelivered(t *testing.T) {
	for _, codec := range []outbound.Codec{outbound.Codec2011, outbound.Codec2014} {
		t.Run(codec.Name, func(t *testing.T) { retryBudget(t, codec) })
	}
}

func retryBudget(t *testing.T, codec outbound.Codec) {
	e := start(t, codec, sandbox.Faults{Rate503: 1}, func(ep *outbound.Endpoint) {
		ep.MaxAttempts = 3
		ep.BreakerFailures = 100
	})
	d, err := e.c.Deliver(context.Background(), "B1", vxu("B1", "VB1"))
	var he *outbound.HTTPError
	if !errors.Is(err, outbound.ErrNotDelivered) || !errors.As(err, &he) || he.Status != 503 || d.Attempts != 3 || d.Outcome != "" {
		t.Fatalf("%+v %v", d, err)
	}
	if n := submits(e.sb); n != 3 {
		t.Errorf("%d calls for 3 attempts", n)
	}
	// A registry that does not answer in time.
	e2 := start(t, codec, sandbox.Faults{Latency: 300 * time.Millisecond}, func(ep *outbound.Endpoint) {
		ep.ReadTimeout = 50 * time.Millisecond
		ep.MaxAttempts = 2
	})
	_, err = e2.c.Deliver(context.Background(), "B2", vxu("B2", "VB2"))
	var te *outbound.TransportError
	if !errors.Is(err, outbound.ErrNotDelivered) || !errors.As(err, &te) || te.Op != "timeout" {
		t.Fatalf("timeout: %v", err)
	}
	// Nothing listening.
	c, _ := outbound.New(outbound.Endpoint{Name: "dead", URL: "http://127.0.0.1:1/x", MaxAttempts: 2, BackoffBase: time.Millisecond, RetryBudget: time.Second}, zerolog.Nop())
	defer c.Close()
	_, err = c.Deliver(context.Background(), "B3", vxu("B3", "VB3"))
	if !errors.As(err, &te) || te.Op != "connect" {
		t.Fatalf("connection refused: %v", err)
	}
}

func TestBreakerOpensAndCloses(t *testing.T) {
	e := start(t, outbound.Codec2014, sandbox.Faults{Rate503: 1}, func(ep *outbound.Endpoint) {
		ep.BreakerFailures = 3
		ep.BreakerCooldown = 30 * time.Millisecond
		ep.MaxCooldown = 60 * time.Millisecond
		ep.RetryBudget = 400 * time.Millisecond
		ep.MaxAttempts = 50
	})
	// An outage: different messages fail in a row.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("K1%d", i)
			_, errs[i] = e.c.Deliver(context.Background(), id, vxu(id, "V"+id))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if !errors.Is(err, outbound.ErrNotDelivered) {
			t.Fatalf("err = %v", err)
		}
	}
	if st, reason := e.c.Breaker(); st == outbound.Closed || !strings.Contains(reason, "503") {
		t.Fatalf("breaker %s (%s)", st, reason)
	}
	// While open, and the registry still down: probes only, no submission.
	opened := submits(e.sb)
	calls := e.sb.Stats().Calls
	deadline := time.Now().Add(2 * time.Second)
	for e.sb.Stats().Calls < calls+3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.sb.Stats().Calls < calls+3 {
		t.Fatal("no probes while the breaker was open")
	}
	if extra := submits(e.sb) - opened; extra != 0 {
		t.Errorf("%d submissions while the breaker was open", extra)
	}
	e.sb.SetFaults(sandbox.Faults{})
	d, err := e.c.Deliver(context.Background(), "K2", vxu("K2", "VK2"))
	if err != nil || d.Outcome != ack.Accepted {
		t.Fatalf("after recovery: %+v %v", d, err)
	}
	if st, _ := e.c.Breaker(); st != outbound.Closed {
		t.Errorf("breaker %s after recovery", st)
	}
	if e.c.Stats().BreakerOpens < 1 {
		t.Error("no breaker open counted")
	}
}

// TestFlakySandboxEveryMessageEndsAccepted sends through 503s, unknown
// faults, dropped connections and latency: every message must end stored,
// exactly once, within the retry budget.
func TestFlakySandboxEveryMessageEndsAccepted(t *testing.T) {
	for _, codec := range []outbound.Codec{outbound.Codec2011, outbound.Codec2014} {
		t.Run(codec.Name, func(t *testing.T) {
			e := start(t, codec, sandbox.Faults{Latency: time.Millisecond, Jitter: 4 * time.Millisecond, Rate503: 0.15, RateUnknown: 0.1, RateDrop: 0.1},
				func(ep *outbound.Endpoint) { ep.MaxAttempts = 12; ep.BreakerFailures = 8; ep.Concurrency = 8 })
			const n = 150
			var wg sync.WaitGroup
			errs := make(chan error, n)
			attempts := make(chan int, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					id := fmt.Sprintf("F%03d", i)
					d, err := e.c.Deliver(context.Background(), id, vxu(id, "V"+id))
					if err == nil && d.Outcome != ack.Accepted {
						err = fmt.Errorf("%s ended %s: %v", id, d.Outcome, d.ACK)
					}
					errs <- err
					attempts <- d.Attempts
				}(i)
			}
			wg.Wait()
			close(errs)
			close(attempts)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			total := 0
			for a := range attempts {
				total += a
			}
			st := e.sb.Stats()
			if st.Stored != n || st.Duplicates != 0 {
				t.Errorf("stored %d doses, %d duplicates; want %d, 0", st.Stored, st.Duplicates, n)
			}
			if int(submits(e.sb)) != total {
				t.Errorf("%d calls, %d attempts counted", submits(e.sb), total)
			}
			if total > n*12 {
				t.Errorf("%d calls exceed the budget of %d", total, n*12)
			}
			t.Logf("%d messages, %d calls (%d 503, %d unknown faults, %d dropped, %d resends answered from the first ACK)",
				n, total, st.Injected503, st.InjectedUF, st.Dropped, st.Resends)
		})
	}
}

func TestConnectionsAreKeptAlive(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{}, nil)
	var wg sync.WaitGroup
	for i := 0; i < 80; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("KA%02d", i)
			if _, err := e.c.Deliver(context.Background(), id, vxu(id, "V"+id)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if c := e.sb.Stats().Connections; c > 5 {
		t.Errorf("%d connections for 80 messages at concurrency 4: the pool is not reused", c)
	}
}

func TestExplain(t *testing.T) {
	sb, _ := sandbox.Start(sandbox.Options{})
	defer sb.Close()
	cases := []struct {
		url, user string
		want      string
	}{
		{sb.URL2011(), "sandbox", "ok"},
		{sb.URL2011(), "wrong", "refused the credentials"},
		{sb.URL2014(), "sandbox", "ok"},
		{sb.URL() + "/nowhere", "sandbox", "HTTP 404"},
		{"http://127.0.0.1:1/x", "sandbox", "connect: nothing answers"},
		{"http://no-such-host.invalid/x", "sandbox", "DNS"},
	}
	for _, c := range cases {
		codec := outbound.Codec2011
		if strings.HasSuffix(c.url, sandbox.Path2014) {
			codec = outbound.Codec2014
		}
		cl, _ := outbound.New(outbound.Endpoint{URL: c.url, Codec: codec, Username: c.user, Password: "sandbox", FacilityID: "sandbox", ConnectTimeout: time.Second}, zerolog.Nop())
		_, err := cl.Submit(context.Background(), vxu("E1", "VE1"))
		if got := outbound.Explain(err); !strings.Contains(got, c.want) {
			t.Errorf("%s as %s: %q", c.url, c.user, got)
		}
		cl.Close()
	}
	// The 2014 path spoken to with the 2011 codec.
	cl, _ := outbound.New(outbound.Endpoint{URL: sb.URL2014(), Codec: outbound.Codec2011, Username: "sandbox", Password: "sandbox", FacilityID: "sandbox"}, zerolog.Nop())
	defer cl.Close()
	if got := outbound.Explain(cl.Ping(context.Background())); !strings.Contains(got, "UnsupportedOperationFault") {
		t.Errorf("codec mismatch: %q", got)
	}
}

func TestConcurrencyAndRateAreBounded(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{Latency: 20 * time.Millisecond}, func(ep *outbound.Endpoint) { ep.Concurrency = 3 })
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("C%02d", i)
			if _, err := e.c.Deliver(context.Background(), id, vxu(id, "V"+id)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if m := e.sb.Stats().MaxInFlight; m > 3 || m < 2 {
		t.Errorf("%d calls in flight at concurrency 3", m)
	}
	// 20 calls at 100/s with a burst of 1 cannot take less than 190 ms. (A
	// lower bound only: a slow machine cannot make this fail.)
	r := start(t, outbound.Codec2011, sandbox.Faults{}, func(ep *outbound.Endpoint) { ep.Concurrency = 1; ep.Rate = 100 })
	begin := time.Now()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("RL%02d", i)
		if _, err := r.c.Deliver(context.Background(), id, vxu(id, "V"+id)); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(begin); el < 190*time.Millisecond {
		t.Errorf("20 calls at 100/s took %v", el)
	}
}

func TestFailFastWhileOpen(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{Rate503: 1}, func(ep *outbound.Endpoint) {
		ep.BreakerFailures = 2
		ep.BreakerCooldown = time.Hour
		ep.FailFast = true
	})
	for _, id := range []string{"FF0", "FF1"} {
		e.c.Deliver(context.Background(), id, vxu(id, "V"+id))
	}
	if st, _ := e.c.Breaker(); st != outbound.Open {
		t.Fatalf("breaker %s after two messages failed", st)
	}
	calls := submits(e.sb)
	begin := time.Now()
	_, err := e.c.Deliver(context.Background(), "FF2", vxu("FF2", "VFF2"))
	if !errors.Is(err, outbound.ErrNotDelivered) || !errors.Is(err, outbound.ErrBreakerOpen) || submits(e.sb) != calls {
		t.Fatalf("while open: %v, %d calls", err, submits(e.sb)-calls)
	}
	if time.Since(begin) > 5*time.Second {
		t.Errorf("fail fast waited %v", time.Since(begin))
	}
}

// Before the registry has answered once, calls go one at a time; a message
// that spends its attempts meanwhile must not keep the others waiting.
func TestAMessageOutOfAttemptsBeforeTheFirstAnswerDoesNotHoldTheOthers(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{Rate503: 1}, func(ep *outbound.Endpoint) {
		ep.MaxAttempts = 2
		ep.BreakerFailures = 100
	})
	if _, err := e.c.Deliver(context.Background(), "G1", vxu("G1", "VG1")); !errors.Is(err, outbound.ErrNotDelivered) {
		t.Fatalf("during the outage: %v", err)
	}
	e.sb.SetFaults(sandbox.Faults{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := e.c.Deliver(ctx, "G2", vxu("G2", "VG2"))
	if err != nil || d.Outcome != ack.Accepted {
		t.Fatalf("after the outage: %+v %v", d, err)
	}
}

// One patient's messages failing again and again is that message's problem:
// the breaker stays closed and the others go; after its last attempt, the
// message gets the registry's failure as its outcome instead of waiting
// forever.
func TestOneMessagesFaultsDoNotOpenTheBreaker(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{FailMatching: "POISON"}, func(ep *outbound.Endpoint) {
		ep.BreakerFailures = 3
		ep.MaxAttempts = 6
	})
	if d, err := e.c.Deliver(context.Background(), "OK0", vxu("OK0", "VOK0")); err != nil || d.Outcome != ack.Accepted {
		t.Fatalf("first: %+v %v", d, err)
	}
	done := make(chan outbound.Delivery, 1)
	go func() {
		d, err := e.c.Deliver(context.Background(), "P1", vxu("P1", "POISON1"))
		if err != nil {
			t.Errorf("poison message: %v", err)
		}
		done <- d
	}()
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("OK%d", i)
		if d, err := e.c.Deliver(context.Background(), id, vxu(id, "V"+id)); err != nil || d.Outcome != ack.Accepted {
			t.Fatalf("%s while another message fails: %+v %v", id, d, err)
		}
		if st, _ := e.c.Breaker(); st != outbound.Closed {
			t.Fatalf("breaker %s because of one message", st)
		}
	}
	d := <-done
	if d.Outcome != ack.Rejected || !errors.Is(d.Fault, outbound.ErrMessageFailed) || d.Attempts != 6 {
		t.Errorf("poison message ended %+v", d)
	}
}

// 503s (busy), like timeouts and dropped connections, never become a
// message's final outcome: it stays undelivered, to be sent later.
func TestOneMessages503sStayUndelivered(t *testing.T) {
	e := start(t, outbound.Codec2011, sandbox.Faults{FailMatching: "BUSY", FailStatus: 503}, func(ep *outbound.Endpoint) {
		ep.BreakerFailures = 3
		ep.MaxAttempts = 4
	})
	if d, err := e.c.Deliver(context.Background(), "OK0", vxu("OK0", "VOK0")); err != nil || d.Outcome != ack.Accepted {
		t.Fatalf("first: %+v %v", d, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.c.Deliver(context.Background(), "B1", vxu("B1", "BUSY1"))
		done <- err
	}()
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("OK%d", i)
		if d, err := e.c.Deliver(context.Background(), id, vxu(id, "V"+id)); err != nil || d.Outcome != ack.Accepted {
			t.Fatalf("%s: %+v %v", id, d, err)
		}
	}
	if err := <-done; !errors.Is(err, outbound.ErrNotDelivered) {
		t.Errorf("a message answered 503 every time ended %v; want not delivered", err)
	}
}

// In a batch answer, a message's errors are those under the MSAs naming it.
func TestABatchAnswersErrorsGoToTheirMessage(t *testing.T) {
	a, err := ack.Parse([]byte("MSH|^~\\&|IIS|IIS|APP|FAC|20260101||ACK^V04^ACK|1|P|2.5.1\rMSA|AE|M1\rERR||RXA^1^5|103|E||||MESSAGE REJECTED - bad CVX\rMSA|AA|M2\rERR||PID^1^13|101|W||||no phone\r"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := (outbound.Delivery{ACK: a, MSH10: "M2"}).Errors(); len(errs) != 1 || errs[0].Severity != "W" {
		t.Errorf("M2's errors: %+v", errs)
	}
	if errs := (outbound.Delivery{ACK: a, MSH10: "M1"}).Errors(); len(errs) != 1 || errs[0].Severity != "E" {
		t.Errorf("M1's errors: %+v", errs)
	}
}
