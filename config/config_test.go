package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/izdrop/izdrop/codes"
)

func TestShippedConfigIsValid(t *testing.T) {
	c, err := Load("../config.toml")
	if err != nil {
		t.Fatalf("the shipped config.toml does not load: %v", err)
	}
	if got := c.InboxNames(); strings.Join(got, ",") != "acme,clinic,fhir,hl7" {
		t.Errorf("inboxes = %v", got)
	}
	in := c.Inboxes["clinic"]
	if !strings.HasSuffix(in.Path, filepath.Join("var", "inbox")) || !filepath.IsAbs(in.Path) || in.Endpoint != "sandbox" || in.StableFor.Seconds() != 2 {
		t.Errorf("clinic inbox = %+v", in)
	}
	sb := c.Endpoints[SandboxEndpoint]
	if sb == nil || sb.URL != "" || sb.Codec != "2011" || sb.Concurrency != 4 || sb.ConnectTimeout.Seconds() != 15 || sb.ReadTimeout.Seconds() != 60 {
		t.Errorf("sandbox endpoint = %+v", sb)
	}
	opt, err := c.TransformOptions("acme", codes.Embedded())
	if err != nil || opt.Profile.Delimiter != '|' || opt.Profile.Columns["patient_id"] != "MRN" || opt.Site.ID != "DEMO01" {
		t.Errorf("acme options = %+v, %v", opt.Profile, err)
	}
	for file, want := range map[string]string{"x/visit.csv": "clinic", "acme-ehr-export.txt": "acme", "other.dat": "acme",
		"clinic-day-batch.hl7": "hl7", "clinic-day-Immunization.ndjson": "fhir"} {
		if got := c.InboxFor(file); got != want {
			t.Errorf("InboxFor(%s) = %s, want %s", file, got, want)
		}
	}
}

const minimal = `
[sites.s]
id = "S1"
region = "CAIRLO"
county = "Los Angeles"

[inboxes.a]
path = "in"
site = "s"
endpoint = "sandbox"
`

func TestUnknownKeysNameTheirLine(t *testing.T) {
	doc := minimal + "\n[inboxes.b]\npath = \"in2\"\nsite = \"s\"\nstable_fr = \"3s\"\n\n[endpoints.reg]\nurl = \"https://r.example/x\"\npassword = \"hunter2\"\n"
	_, err := Parse([]byte(doc), "c.toml")
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	msg := err.Error()
	for _, want := range []string{`c.toml:15: unknown key "inboxes.b.stable_fr"`, `c.toml:19: unknown key "endpoints.reg.password"`, "password_env", "password_file"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Error("the error repeats the secret")
	}
	_, err = Parse([]byte("[service]\nshutdown_grace = \"soon\"\n"), "d.toml")
	if err == nil || !strings.Contains(err.Error(), "d.toml:2") || !strings.Contains(err.Error(), "not a duration") {
		t.Errorf("bad duration: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	doc := `
[service]
log_format = "xml"

[sites.s]
id = "S1"
region = "CAIRCV"
county = "Merced"

[sites.bad]
region = "LA"

[endpoints.reg]
url = "http://registry.example/x"
codec = "2019"

[inboxes.a]
path = "in"
site = "s"
endpoint = "reg"
profile = "nope"
marker = "flag"
schedule = "every morning"

[inboxes.b]
path = "in"
site = "ghost"

[profiles.p]
delimiter = ":"
`
	c, err := Parse([]byte(doc), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(codes.Embedded())
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`c.toml:3: service.log_format: "xml"`, "c.toml:10: sites.bad:", "c.toml:14: endpoints.reg.url:", "over https",
		"c.toml:13: endpoints.reg: environment is required", "c.toml:13: endpoints.reg: set password_env or password_file",
		"c.toml:13: endpoints.reg: username and facility_id", `c.toml:15: endpoints.reg.codec: "2019"`,
		`c.toml:21: inboxes.a.profile: profile "nope"`, `c.toml:22: inboxes.a.marker: "flag"`,
		`c.toml:23: inboxes.a.schedule: "every morning"`, `c.toml:27: inboxes.b.site: site "ghost"`,
		"c.toml:26: inboxes.b.path: same folder as inboxes.a", "c.toml:25: inboxes.b: endpoint is required",
		"c.toml:19: inboxes.a.site: site s is in Merced county, in the CAIR San Joaquin region", `c.toml:29: profiles.p: delimiter ":"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestSecretsComeFromEnvOrFileAndAreMasked(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("  file-secret-42\n"), 0o600)
	t.Setenv("IZDROP_TEST_PW", "env-secret-17")
	doc := minimal + `
[endpoints.a]
environment = "staging"
url = "https://a.example/CATRN-WS/IISService"
username = "ORG"
facility_id = "ORG"
password_env = "IZDROP_TEST_PW"

[endpoints.b]
environment = "production"
url = "https://b.example/x"
username = "ORG"
facility_id = "ORG"
password_file = "` + pwFile + `"

[endpoints.c]
environment = "production"
url = "https://c.example/x"
username = "ORG"
facility_id = "ORG"
password_env = "IZDROP_TEST_UNSET"
`
	c, err := Parse([]byte(doc), filepath.Join(dir, "c.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	if v, err := c.EndpointPassword("a"); v != "env-secret-17" || err != nil {
		t.Errorf("env secret = %q, %v", v, err)
	}
	if v, err := c.EndpointPassword("b"); v != "file-secret-42" || err != nil {
		t.Errorf("file secret = %q, %v", v, err)
	}
	if _, err := c.EndpointPassword("c"); !errors.Is(err, ErrNoSecret) || !strings.Contains(err.Error(), "IZDROP_TEST_UNSET") {
		t.Errorf("unset secret: %v", err)
	}
	if v, err := c.EndpointPassword(SandboxEndpoint); v != "sandbox" || err != nil {
		t.Errorf("sandbox default password = %q, %v", v, err)
	}
	var out bytes.Buffer
	c.Describe(&out)
	s := out.String()
	if strings.Contains(s, "env-secret-17") || strings.Contains(s, "file-secret-42") {
		t.Fatalf("Describe shows a secret:\n%s", s)
	}
	for _, want := range []string{"from $IZDROP_TEST_PW (set)", "(readable)", "from $IZDROP_TEST_UNSET (NOT SET)", `concurrency = 4`, `[inboxes.a]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Describe lacks %q", want)
		}
	}
}

func TestSchedulesAndSFTPSettings(t *testing.T) {
	ok := minimal + `
[inboxes.b]
path = "b"
site = "s"
schedule = "CRON_TZ=America/Los_Angeles 30 1 * * *"
endpoint = "sandbox"

[inboxes.r]
kind = "sftp"
host = "sftp.example"
user = "u"
key_file = "id"
known_hosts = "kh"
path = "/exports"
archive = "ra"
site = "s"
endpoint = "sandbox"
`
	c, err := Parse([]byte(ok), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	r := c.Inboxes["r"]
	if r.Port != 22 || r.RemoteArchive == nil || !*r.RemoteArchive || !filepath.IsAbs(r.KnownHosts) || r.Path != "/exports" {
		t.Errorf("sftp defaults: %+v", r)
	}
	bad := minimal + `
[inboxes.b]
path = "b"
site = "s"
schedule = "CRON_TZ=Mars/Olympus 30 1 * * *"

[inboxes.r]
kind = "sftp"
path = "/x"
site = "s"
`
	c, _ = Parse([]byte(bad), "c.toml")
	err = c.Validate(codes.Embedded())
	for _, want := range []string{"Mars/Olympus", "needs host and user", "key_file, password_env or password_file", "needs archive"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q: %v", want, err)
		}
	}
}

func TestOtherFormats(t *testing.T) {
	doc := minimal + `
[inboxes.hl7]
path = "in-hl7"
site = "s"
profile = "legacy"
endpoint = "sandbox"

[inboxes.fhir]
path = "in-fhir"
site = "s"
profile = "bulk"
endpoint = "sandbox"

[inboxes.own]
path = "in-own"
site = "s"
profile = "bulk"
endpoint = "sandbox"
patterns = ["*-Immunization.ndjson", "*-Patient.ndjson"]

[profiles.legacy]
format = "hl7"
set_site_fields = true

[profiles.bulk]
format = "fhir-ndjson"

[profiles.legacy.values.patient_sex]
W = "F"
`
	c, err := Parse([]byte(doc), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	if got := c.Inboxes["hl7"].Patterns; strings.Join(got, ",") != "*.hl7" {
		t.Errorf("hl7 patterns %v", got)
	}
	if got := c.Inboxes["fhir"].Patterns; strings.Join(got, ",") != "*.ndjson,*.json" {
		t.Errorf("fhir patterns %v", got)
	}
	if got := c.Inboxes["own"].Patterns; len(got) != 2 || got[0] != "*-Immunization.ndjson" {
		t.Errorf("own patterns %v", got)
	}
	if got := c.Inboxes["a"].Patterns; strings.Join(got, ",") != "*.csv,*.txt" {
		t.Errorf("csv patterns %v", got)
	}
	opt, err := c.TransformOptions("hl7", codes.Embedded())
	if err != nil || opt.Profile.Format != "hl7" || !opt.Profile.SetSiteFields || opt.Profile.MSH10 != "keep" || opt.Profile.Values["patient_sex"]["W"] != "F" {
		t.Errorf("hl7 options %+v %v", opt.Profile, err)
	}
	if opt, _ := c.TransformOptions("fhir", codes.Embedded()); opt.Profile.Format != "fhir-ndjson" || opt.Profile.Pairing() == nil {
		t.Errorf("fhir options %+v", opt.Profile)
	}
	if opt, _ := c.TransformOptions("a", codes.Embedded()); opt.Profile.Format != "csv" && opt.Profile.Format != "" || opt.Profile.Pairing() != nil {
		t.Errorf("csv options %+v", opt.Profile)
	}
	var out bytes.Buffer
	c.Describe(&out)
	if !strings.Contains(out.String(), "format = \"hl7\"\nset_site_fields = true\nmsh10 = \"keep\"") {
		t.Errorf("Describe:\n%s", out.String())
	}

	bad := minimal + `
[inboxes.r]
kind = "sftp"
host = "sftp.example"
user = "u"
key_file = "id"
known_hosts = "kh"
path = "/exports"
archive = "ra"
site = "s"
profile = "bulk"
endpoint = "sandbox"

[profiles.bulk]
format = "fhir-ndjson"
msh10 = "replace"

[profiles.legacy]
format = "hl7"
delimiter = "|"
date_format = "YYYYMMDD"
msh10 = "sometimes"

[profiles.csv]
set_site_fields = true

[profiles.odd]
format = "x12"
`
	c, err = Parse([]byte(bad), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(codes.Embedded())
	for _, want := range []string{
		`c.toml:21: inboxes.r.profile: profile "bulk" reads FHIR exports, whose two files izdrop takes together from local inboxes only`,
		`profiles.bulk: profile "bulk": set_site_fields and msh10 apply to format "hl7" only`,
		`profiles.legacy: profile "legacy": date_format applies to format "csv" only`,
		`profile "legacy": delimiter applies to format "csv" only`,
		`msh10 "sometimes"`,
		`profiles.csv: profile "csv": set_site_fields applies to format "hl7" only`,
		`profiles.odd: profile "odd": format "x12"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
}

func TestRetentionIsOffUnlessDaysAreGiven(t *testing.T) {
	c, err := Parse([]byte(minimal), "c.toml")
	if err != nil || c.Retention.Days != 0 || c.Retention.Age() != 0 {
		t.Fatalf("default retention %+v %v", c.Retention, err)
	}
	c, err = Parse([]byte(minimal+"\n[retention]\ndays = 90\n"), "c.toml")
	if err != nil || c.Validate(codes.Embedded()) != nil || c.Retention.Age().Hours() != 90*24 {
		t.Fatalf("90 days: %+v %v", c.Retention, err)
	}
	c, _ = Parse([]byte(minimal+"\n[retention]\ndays = -1\n"), "c.toml")
	if err := c.Validate(codes.Embedded()); err == nil || !strings.Contains(err.Error(), "c.toml:13: retention.days") {
		t.Errorf("negative days: %v", err)
	}
	if _, err := Parse([]byte(minimal+"\n[retention]\nmonths = 3\n"), "c.toml"); err == nil || !strings.Contains(err.Error(), `"retention.months"`) {
		t.Errorf("unknown key: %v", err)
	}
}

func TestJournalSettings(t *testing.T) {
	base := `
[sites.s]
id = "DEMO01"
region = "CAIRBA"
county = "San Francisco"
[inboxes.in]
path = "in"
create = true
site = "s"
`
	for _, tc := range []struct{ journal, want string }{
		{``, ``},
		{"[journal]\nurl = \"postgres://izdrop@db.example:5432/izdrop?sslmode=verify-full\"\npassword_env = \"IZDROP_DB_PW\"\n", ``},
		{"[journal]\nurl = \"postgres://izdrop:hunter2@db.example/izdrop\"\n", `journal.url: holds a password`},
		{"[journal]\nurl = \"postgres://izdrop@db.example/izdrop?password=x\"\n", `journal.url: holds a password`},
		{"[journal]\nurl = \"mysql://db.example/izdrop\"\n", `a postgres:// URL`},
		{"[journal]\nurl = \"postgres://izdrop@db.example\"\n", `names no database`},
		{"[journal]\npassword_env = \"X\"\n", `a password without url`},
		{"[journal]\nurl = \"postgres://u@h/d\"\npassword_env = \"X\"\npassword_file = \"f\"\n", `set one`},
	} {
		path := filepath.Join(t.TempDir(), "config.toml")
		os.WriteFile(path, []byte(base+tc.journal), 0o600)
		c, err := Parse([]byte(base+tc.journal), path)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, e := range c.validateJournal() {
			got += e.Error()
		}
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.journal, got, tc.want)
		}
		if strings.Contains(got, "hunter2") {
			t.Errorf("the error shows the password: %s", got)
		}
		if tc.want == "" && tc.journal != "" {
			if w := c.Journal.Where(c.Service.DataDir); !strings.HasPrefix(w, "postgres://izdrop@db.example:5432/izdrop") {
				t.Errorf("where = %q", w)
			}
		}
	}
}
