package service_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/testplan"
)

func TestTestplanPassesAgainstTheSandboxWithTheSitesOwnIDs(t *testing.T) {
	f := newFixture(t, `
[sites.other]
id = "OTHER7"
sending_facility = "PARENTORG"
region = "CAIRLO"
county = "Los Angeles"
`, sandbox.Faults{})
	out := filepath.Join(f.dir, "tp")
	rep, err := service.RunTestplan(context.Background(), f.cfg, service.TestplanOptions{Site: "other", Out: out, Version: "test", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(testplan.Cases()) || !testplan.Passed(rep.Results) || !rep.Recorded {
		var b strings.Builder
		testplan.WriteTable(&b, rep.Results)
		t.Fatalf("test plan against the sandbox:\n%s", b.String())
	}
	// Negatives pass by being rejected for their own field.
	for _, r := range rep.Results {
		if !r.Case.Expect.Stored && (r.Outcome != "rejected" || !strings.Contains(r.Why, r.Case.Expect.Field)) {
			t.Errorf("%s: %s %s", r.Case.Name, r.Outcome, r.Why)
		}
	}
	// The site's own identities are in every message.
	vxus, _ := filepath.Glob(filepath.Join(out, "*.vxu.hl7"))
	if len(vxus) != len(testplan.Cases()) {
		t.Fatalf("messages written: %v", vxus)
	}
	for _, p := range vxus {
		b, _ := os.ReadFile(p)
		m, err := hl7.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Get("MSH-4"); got != "PARENTORG" {
			t.Errorf("%s: MSH-4 %q", filepath.Base(p), got)
		}
		if got := m.Get("MSH-22"); got != "OTHER7" {
			t.Errorf("%s: MSH-22 %q", filepath.Base(p), got)
		}
		if got, date := m.Get("PD1-16"), m.Get("PD1-17"); got != "A" || len(date) != 8 {
			t.Errorf("%s: PD1-16 %q, PD1-17 %q", filepath.Base(p), got, date)
		}
		if got := m.Get("MSH-6"); got != "CAIRLO" {
			t.Errorf("%s: MSH-6 %q", filepath.Base(p), got)
		}
		for _, rxa := range m.All("RXA") {
			if rxa.Get(20, 1) == "RE" || rxa.Get(20, 1) == "NA" {
				continue // a refusal or evidence of immunity: no dose was given anywhere
			}
			if got := rxa.Get(11, 4); got != "OTHER7" {
				t.Errorf("%s: RXA-11.4 %q", filepath.Base(p), got)
			}
		}
		if acks, _ := filepath.Glob(strings.TrimSuffix(p, ".vxu.hl7") + ".ack.hl7"); len(acks) != 1 {
			t.Errorf("no ACK beside %s", filepath.Base(p))
		}
	}
	if b, err := os.ReadFile(filepath.Join(out, "summary.txt")); err != nil || !strings.Contains(string(b), "every case passed") || !strings.Contains(string(b), "OTHER7") {
		t.Errorf("summary.txt: %v\n%s", err, b)
	}
	// Going live: config check no longer warns that no test plan passed.
	f.cfg.Endpoints["reg"].Environment = config.Production
	for _, fd := range service.Preflight(context.Background(), f.cfg, false) {
		if fd.Severity != config.SevInfo && strings.Contains(fd.Text, "test plan") {
			t.Errorf("after a passed test plan: %s", fd)
		}
	}
	// And a test plan never goes to production.
	if _, err := service.RunTestplan(context.Background(), f.cfg, service.TestplanOptions{Out: out, Log: zerolog.Nop()}); err == nil {
		t.Error("a test plan ran against a production endpoint")
	}
}

func TestProductionWithoutAPassedTestplanIsWarned(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	f.cfg.Endpoints["reg"].Environment = config.Production
	var warned bool
	for _, fd := range service.Preflight(context.Background(), f.cfg, false) {
		if fd.Severity == config.SevWarning && fd.Key == "endpoints.reg.environment" && strings.Contains(fd.Text, "testplan") && fd.Line > 0 {
			warned = true
		}
	}
	if !warned {
		t.Error("production selected with no test plan run: no warning naming endpoints.reg.environment and its line")
	}
	// --only runs are not the test plan passing.
	f.cfg.Endpoints["reg"].Environment = config.Staging
	rep, err := service.RunTestplan(context.Background(), f.cfg, service.TestplanOptions{Only: []string{"update"}, Out: filepath.Join(f.dir, "tp"), Log: zerolog.Nop()})
	if err != nil || rep.Recorded || len(rep.Results) != 2 || rep.Added[0] != "new-patient" {
		t.Fatalf("only update: %+v %v", rep, err)
	}
	f.cfg.Endpoints["reg"].Environment = config.Production
	warned = false
	for _, fd := range service.Preflight(context.Background(), f.cfg, true) {
		if fd.Severity == config.SevWarning && strings.Contains(fd.Text, "testplan") {
			warned = true
		}
		if fd.Key == "endpoints.reg.url" && !strings.Contains(fd.Text, "connectivity test ok") {
			t.Errorf("connect: %s", fd)
		}
	}
	if !warned {
		t.Error("a partial run counted as the test plan passing")
	}
}

func TestTestplanSaysWhenTheRegistryRefusesOurCredentials(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	f.sb.SetCredentials("sandbox", "changed", "sandbox")
	_, err := service.RunTestplan(context.Background(), f.cfg, service.TestplanOptions{Out: filepath.Join(f.dir, "tp"), Log: zerolog.Nop()})
	if err == nil || f.sb.Stats().Security != 1 {
		t.Fatalf("err %v, %d failed logins", err, f.sb.Stats().Security)
	}
	// The service now knows: it sends nothing until a check passes.
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); len(sum.Refused) != 1 || f.sb.Stats().Security != 1 {
		t.Errorf("after the refused test plan: %+v, %d failed logins", sum, f.sb.Stats().Security)
	}
}
