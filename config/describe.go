package config

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Describe writes the effective settings, defaults included. Secrets are
// never shown: each is given as where it comes from and whether it is set.
func (c *Config) Describe(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("# effective settings of %s", c.path)
	p("[service]")
	p("data_dir = %q", c.Service.DataDir)
	p("log_format = %q", c.Service.LogFormat)
	p("log_level = %q", c.Service.LogLevel)
	p("timezone = %q", c.Service.Timezone)
	p("shutdown_grace = %q", c.Service.ShutdownGrace)
	p("log_file = %q\nlog_max_size_mb = %d\nlog_backups = %d", c.Service.LogFile, c.Service.LogMaxSizeMB, c.Service.LogBackups)
	for _, name := range sorted(c.Sites) {
		s := c.Sites[name]
		p("\n[sites.%s]", name)
		p("id = %q\nsending_facility = %q\nregion = %q\ncounty = %q\nassigning_authority = %q", s.ID, s.SendingFacility, s.Region, s.County, s.AssigningAuthority)
	}
	for _, name := range sorted(c.Endpoints) {
		e := c.Endpoints[name]
		p("\n[endpoints.%s]", name)
		if name == SandboxEndpoint && e.URL == "" {
			p("# the embedded sandbox registry, started in-process on %s", c.Sandbox.Listen)
		}
		p("environment = %q", e.Environment)
		p("url = %q\ncodec = %q\nregistry = %q\nusername = %q\nfacility_id = %q", e.URL, e.Codec, e.Registry, e.Username, e.FacilityID)
		p("# registry identity (what \"already accepted\" is remembered by): %s", e.Identity())
		p("password = %s", secretState(e.PasswordEnv, e.PasswordFile))
		if e.CAFile != "" {
			p("ca_file = %q", e.CAFile)
		}
		if e.ClientCert != "" {
			p("client_cert = %q\nclient_key = %q", e.ClientCert, e.ClientKey)
		}
		p("connect_timeout = %q\nread_timeout = %q\nconcurrency = %d\nrate = %g", e.ConnectTimeout, e.ReadTimeout, e.Concurrency, e.Rate)
		p("retry_budget = %q\nmax_attempts = %d\nbreaker_failures = %d\nbreaker_cooldown = %q\nbreaker_max_cooldown = %q", e.RetryBudget, e.MaxAttempts, e.BreakerFailures, e.BreakerCooldown, e.BreakerMaxCooldown)
	}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		p("\n[inboxes.%s]", name)
		p("kind = %q\npath = %q\ncreate = %v\narchive = %q", in.Kind, in.Path, in.Create, in.Archive)
		p("patterns = [%s]", quoteAll(in.Patterns))
		p("profile = %q\nsite = %q\nendpoint = %q\nmarker = %q", in.Profile, in.Site, in.Endpoint, in.Marker)
		p("stable_for = %q\nrescan = %q\nschedule = %q", in.StableFor, in.Rescan, in.Schedule)
		if in.Kind == "local" {
			p("inbox_mode = %q\ninbox_group = %q", in.InboxMode, in.InboxGroup)
		}
		if in.Kind == "sftp" {
			p("host = %q\nport = %d\nuser = %q\nknown_hosts = %q", in.Host, in.Port, in.User, in.KnownHosts)
			if in.KeyFile != "" {
				p("key_file = %q\npassphrase = %s", in.KeyFile, secretState(in.PassphraseEnv, in.PassphraseFile))
			}
			if in.PasswordEnv != "" || in.PasswordFile != "" {
				p("password = %s", secretState(in.PasswordEnv, in.PasswordFile))
			}
			p("insecure_ignore_host_key = %v\nremote_archive = %v", in.InsecureIgnoreHostKey, in.RemoteArchive != nil && *in.RemoteArchive)
		}
	}
	for _, name := range sorted(c.Profiles) {
		pr := c.Profiles[name]
		p("\n[profiles.%s]", name)
		p("format = %q", pr.Format)
		if pr.Format == "hl7" {
			p("set_site_fields = %v\nmsh10 = %q", pr.SetSiteFields, pr.MSH10)
		}
		p("delimiter = %q\nencoding = %q\ndate_format = %q\nid_type = %q\nname_policy = %q", pr.Delimiter, pr.Encoding, pr.DateFormat, pr.IDType, pr.NamePolicy)
		for _, k := range sorted(pr.Columns) {
			p("columns.%s = %q", k, pr.Columns[k])
		}
		for _, k := range sorted(pr.Values) {
			for _, v := range sorted(pr.Values[k]) {
				p("values.%s.%q = %q", k, v, pr.Values[k][v])
			}
		}
	}
	p("\n[retention]\ndays = %d # 0: archived files and their journal rows are kept for ever", c.Retention.Days)
	if c.Journal.Postgres() {
		p("\n[journal]\nurl = %q\npassword = %s", c.Journal.Where(c.Service.DataDir), secretState(c.Journal.PasswordEnv, c.Journal.PasswordFile))
	} else {
		p("\n[journal]\n# SQLite: %s", c.Journal.Where(c.Service.DataDir))
	}
	p("\n[sandbox]\nlisten = %q\nusername = %q\nfacility_id = %q\npassword = %s", c.Sandbox.Listen, c.Sandbox.Username, c.Sandbox.FacilityID, secretState(c.Sandbox.PasswordEnv, ""))
}

// secretState says where a secret comes from and whether it is there.
func secretState(env, file string) string {
	switch {
	case env != "":
		if os.Getenv(env) != "" {
			return fmt.Sprintf("\"********\" # from $%s (set)", env)
		}
		return fmt.Sprintf("\"\" # from $%s (NOT SET)", env)
	case file != "":
		if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) != "" {
			return fmt.Sprintf("\"********\" # from %s (readable)", file)
		}
		return fmt.Sprintf("\"\" # from %s (MISSING OR EMPTY)", file)
	}
	return "\"\" # not configured"
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
