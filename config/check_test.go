package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/izdrop/izdrop/codes"
)

// Each run-time problem config check finds names its key and line.
func TestCheckNamesTheKeyAndLineOfEachProblem(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(dir, "in"), 0o700)
	t.Setenv("IZDROP_CHECK_SET", "secret")
	doc := `[service]
data_dir = "var"

[sites.s]
id = "S1"
region = "CAIRLO"

[endpoints.unset]
environment = "staging"
url = "https://cair.example/CATRN-WS/IISService"
username = "ORG"
facility_id = "ORG"
password_env = "IZDROP_CHECK_UNSET"

[endpoints.nofile]
environment = "production"
url = "https://cair.example/CATRN-WS/IISService"
username = "ORG"
facility_id = "ORG"
password_file = "missing-password"

[inboxes.typo]
path = "inbx"
site = "s"
endpoint = "unset"

[inboxes.file]
path = "a-file"
site = "s"
endpoint = "nofile"

[inboxes.badarchive]
path = "in"
archive = "a-file/sub"
site = "s"
endpoint = "sandbox"

[inboxes.remote]
kind = "sftp"
host = "sftp.example"
user = "u"
key_file = "no-key"
known_hosts = "no-known-hosts"
path = "/x"
archive = "remote"
site = "s"
endpoint = "sandbox"

[inboxes.fresh]
path = "new/inbox"
create = true
site = "s"
endpoint = "sandbox"
`
	c, err := Parse([]byte(doc), filepath.Join(dir, "c.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range c.Check() {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	cf := filepath.Join(dir, "c.toml")
	for _, want := range []string{
		"error: " + cf + ":13: endpoints.unset.password_env: the password is not available",
		"IZDROP_CHECK_UNSET",
		"error: " + cf + ":20: endpoints.nofile.password_file: the password is not available",
		"warning: " + cf + ":16: endpoints.nofile.environment: \"production\", but the URL is CAIR's training endpoint (CATRN)",
		"error: " + cf + ":23: inboxes.typo.path: " + filepath.Join(dir, "inbx") + " does not exist: create it",
		"error: " + cf + ":28: inboxes.file.path: " + aFile + " is not a folder",
		"error: " + cf + ":34: inboxes.badarchive.archive: stat " + filepath.Join(aFile, "sub"),
		"error: " + cf + ":42: inboxes.remote.key_file:",
		"error: " + cf + ":43: inboxes.remote.known_hosts:",
		"info: " + cf + ":50: inboxes.fresh.path: " + filepath.Join(dir, "new", "inbox") + " does not exist yet; izdrop will create it",
		"info: " + cf + ":2: service.data_dir:",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("findings lack %q:\n%s", want, all)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Error("config check created a folder")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "in", ".izdrop-check-*")); len(left) != 0 {
		t.Errorf("probe files left: %v", left)
	}
}

func TestURLPlaceholdersAndEnvironmentsAreChecked(t *testing.T) {
	doc := `
[sites.s]
id = "S1"
region = "CAIRLO"

[endpoints.cair]
environment = "live"
url = "https://<cair-host>/CATRN-WS/IISService"
username = "ORG"
facility_id = "ORG"
password_env = "X"

[endpoints.set]
environment = "production"
username = "ORG"
facility_id = "ORG"
password_env = "X"
[endpoints.set.staging]
url = "https://cair.example/CATRN-WS/IISService"

[inboxes.a]
path = "in"
site = "s"
endpoint = "cair"
`
	c, err := Parse([]byte(doc), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(codes.Embedded())
	for _, want := range []string{
		`c.toml:7: endpoints.cair.environment: "live"`,
		"c.toml:8: endpoints.cair.url: \"https://<cair-host>/CATRN-WS/IISService\": no host name",
		`c.toml:14: endpoints.set.environment: "production" is selected but [endpoints.set.production] is not defined`,
		"c.toml:13: endpoints.set: url is required",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestRegistryIdentity(t *testing.T) {
	a := &Endpoint{URL: "https://CAIR.example:443/CATRN-WS/IISService/", FacilityID: "ORG"}
	b := &Endpoint{URL: "https://cair.example/CATRN-WS/IISService", FacilityID: "ORG"}
	if a.Identity() != b.Identity() {
		t.Errorf("one registry, two identities: %q %q", a.Identity(), b.Identity())
	}
	for _, other := range []*Endpoint{
		{URL: "https://cair.example/CAPRD-WS/IISService", FacilityID: "ORG"},
		{URL: "https://cair.example/CATRN-WS/IISService", FacilityID: "ORG2"},
		{URL: "http://127.0.0.1:8931/CATRN-WS/IISService", FacilityID: "ORG"},
		{},
	} {
		if other.Identity() == a.Identity() {
			t.Errorf("%+v shares identity %q", other, a.Identity())
		}
	}
	pinned := &Endpoint{Environment: Production, URL: "https://new-host.example/x", FacilityID: "ORG", RegistryID: "cair2"}
	moved := &Endpoint{Environment: Production, URL: "https://old-host.example/y", FacilityID: "ORG", RegistryID: "cair2"}
	if pinned.Identity() != moved.Identity() {
		t.Error("registry_id does not keep the identity across a change of URL")
	}
	staging := &Endpoint{Environment: Staging, URL: "https://old-host.example/y", FacilityID: "ORG", RegistryID: "cair2"}
	if staging.Identity() == pinned.Identity() {
		t.Error("one registry_id gives staging and production one identity: staging's acceptances would stop production sends")
	}
	if a.Fingerprint() == (&Endpoint{URL: a.URL, FacilityID: "ORG", PasswordEnv: "OTHER"}).Fingerprint() {
		t.Error("a change of password variable keeps the fingerprint")
	}
}
