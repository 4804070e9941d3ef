package service_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

// The bug this guards against: records accepted by the sandbox (or a
// staging endpoint) were reported "already_accepted" when the inbox was
// pointed at another registry, and nothing was sent there.
func TestSwitchingRegistriesSendsEveryRecordToTheNewOne(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	second, err := sandbox.Start(sandbox.Options{Password: "pw-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); sum.Done != 1 || sum.Records["accepted"] != 4 {
		t.Fatalf("first registry: %+v", sum)
	}
	// The same inbox now sends to another registry: one line changes.
	f.cfg.Endpoints["reg"].URL = second.URL2011()
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	sum := runOnce(t, f)
	if sum.Done != 1 || sum.Records["accepted"] != 4 || sum.Records["already_accepted"] != 0 {
		t.Fatalf("second registry: %+v", sum)
	}
	if got := receivedOnce(t, second); len(got) != 4 {
		t.Errorf("the second registry got %d doses, want 4: %v", len(got), got)
	}
	// And back: the first registry does hold them, so nothing is resent.
	calls := f.sb.Stats().Submits
	f.cfg.Endpoints["reg"].URL = f.sb.URL2011()
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); sum.Records["already_accepted"] != 4 || f.sb.Stats().Submits != calls {
		t.Errorf("back on the first registry: %+v, %d more calls", sum, f.sb.Stats().Submits-calls)
	}
}

func TestAMissingInboxFolderIsAnErrorUnlessCreateIsSet(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	in := f.cfg.Inboxes["clinic"]
	in.Create = false
	in.Path = filepath.Join(f.dir, "inbx") // mistyped
	_, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err == nil || !strings.Contains(err.Error(), "config.toml:") || !strings.Contains(err.Error(), "inboxes.clinic.path") ||
		!strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "create = true") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(in.Path); !os.IsNotExist(err) {
		t.Error("the mistyped inbox folder was created")
	}
	in.Create = true
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err := os.Stat(in.Path); err != nil || !st.IsDir() {
		t.Errorf("create = true did not create the inbox: %v", err)
	}
}

// A SecurityFault is not an outage: one failed login, then nothing is sent
// (no probe, no trial) in this run or the next, until a credentials check
// passes. run --once says so, and so do find and the waiting note.
func TestRefusedCredentialsStopSendingUntilACheckPasses(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	f.sb.SetCredentials("sandbox", "rotated-by-the-registry", "sandbox")
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	sum := runOnce(t, f)
	if len(sum.Refused) != 1 || sum.Refused[0] != "reg" || sum.Done != 0 {
		t.Fatalf("first run: %+v", sum)
	}
	if got := f.sb.Stats().Security; got != 1 {
		t.Errorf("%d failed logins in the first run; want 1", got)
	}
	// The next run (a new process) makes no login attempt, and leaves
	// newly dropped files in the inbox.
	f.drop(t, "b.csv", example(t, "historical.csv"))
	calls := f.sb.Stats().Calls
	sum = runOnce(t, f)
	if len(sum.Refused) != 1 || f.sb.Stats().Calls != calls {
		t.Fatalf("second run: %+v, %d more calls", sum, f.sb.Stats().Calls-calls)
	}
	if _, err := os.Stat(filepath.Join(f.inbox, "b.csv")); err != nil {
		t.Errorf("a file dropped while refused was taken: %v", err)
	}
	notes, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*.waiting.txt"))
	if len(notes) != 1 {
		t.Fatalf("waiting notes: %v", notes)
	}
	if b, _ := os.ReadFile(notes[0]); !bytes.Contains(b, []byte("registry refused our credentials")) || !bytes.Contains(b, []byte("a.csv")) {
		t.Errorf("waiting note:\n%s", b)
	}
	j, err := journal.Open(filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var out bytes.Buffer
	if found, err := service.Find(context.Background(), j, "a.csv", &out); !found || err != nil || !strings.Contains(out.String(), "registry refused our credentials") {
		t.Errorf("find a.csv: %v %v\n%s", found, err, out.String())
	}
	// The password is fixed; `izdrop ping -auth` passes and lifts the
	// refusal: everything goes.
	f.sb.SetCredentials("sandbox", "pw-e2e", "sandbox")
	if err := service.CredentialsChecked(context.Background(), j, f.cfg.Endpoints["reg"], nil); err != nil {
		t.Fatal(err)
	}
	sum = runOnce(t, f)
	if len(sum.Refused) != 0 || sum.Done != 2 || f.sb.Stats().Security != 1 {
		t.Fatalf("after the fix: %+v (security faults %d)", sum, f.sb.Stats().Security)
	}
	if notes, _ := filepath.Glob(filepath.Join(f.inbox, "work", "*.waiting.txt")); len(notes) != 0 {
		t.Errorf("waiting notes left after filing: %v", notes)
	}
	receivedOnce(t, f.sb)
}

// Changing the settings the registry refused (another username, another
// password variable) is a new set of credentials: they are tried.
func TestChangedEndpointSettingsAreTriedAfterARefusal(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{})
	f.sb.SetCredentials("sandbox", "other", "sandbox")
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	if sum := runOnce(t, f); len(sum.Refused) != 1 {
		t.Fatalf("%+v", sum)
	}
	t.Setenv("IZDROP_TEST_PW2", "other")
	f.cfg.Endpoints["reg"].PasswordEnv = "IZDROP_TEST_PW2"
	if sum := runOnce(t, f); len(sum.Refused) != 0 || sum.Done != 1 {
		t.Fatalf("with the new settings: %+v", sum)
	}
}

func TestEndpointEnvironmentsPickTheirSettings(t *testing.T) {
	doc := `
[sites.s]
id = "S1"
region = "CAIRLO"

[endpoints.cair]
environment = "%s"
username = "ORG"
facility_id = "ORG"
password_env = "IZDROP_STAGING_PW"
[endpoints.cair.staging]
url = "https://cair.example/CATRN-WS/IISService"
[endpoints.cair.production]
url = "https://cair.example/CAPRD-WS/IISService"
password_env = "IZDROP_PROD_PW"

[inboxes.a]
path = "in"
site = "s"
endpoint = "cair"
`
	ids := map[string]string{}
	for _, env := range []string{"staging", "production"} {
		c, err := config.Parse([]byte(fmt.Sprintf(doc, env)), "c.toml")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(codes.Embedded()); err != nil {
			t.Fatal(err)
		}
		e := c.Endpoints["cair"]
		ids[env] = e.Identity()
		if env == "production" && (!strings.Contains(e.URL, "CAPRD") || e.PasswordEnv != "IZDROP_PROD_PW") {
			t.Errorf("production settings: %+v", e)
		}
		if env == "staging" && (!strings.Contains(e.URL, "CATRN") || e.PasswordEnv != "IZDROP_STAGING_PW") {
			t.Errorf("staging settings: %+v", e)
		}
	}
	if ids["staging"] == ids["production"] {
		t.Errorf("staging and production share the registry identity %q", ids["staging"])
	}
}

// run --once beside serve: the second izdrop uses the first one's embedded
// sandbox instead of failing on its address; another program there is an
// error that says so.
func TestASecondIzdropSharesTheEmbeddedSandbox(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	f := newFixture(t, "", sandbox.Faults{})
	f.cfg.Sandbox.Listen = addr
	f.cfg.Inboxes["clinic"].Endpoint = config.SandboxEndpoint
	first, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if first.Sandbox() == nil {
		t.Fatal("the first izdrop started no sandbox")
	}
	second, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatalf("the second izdrop: %v", err)
	}
	f.drop(t, "a.csv", example(t, "visit-administered.csv"))
	sum, err := second.RunOnce(context.Background())
	second.Close()
	if err != nil || sum.Done != 1 || first.Sandbox().Stats().Messages == 0 {
		t.Fatalf("run beside the first: %+v %v", sum, err)
	}
	// Another program on the address.
	first.Close()
	other, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port was taken meanwhile: %v", err)
	}
	defer other.Close()
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
			c.Close()
		}
	}()
	if _, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"}); err == nil || !strings.Contains(err.Error(), "in use by another program") {
		t.Errorf("err = %v", err)
	}
}
