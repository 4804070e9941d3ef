// Package config is izdrop's configuration: one config.toml, decoded
// strictly (an unknown key is an error naming its line), with every default
// set in one place (Default) and every problem reported at once (Validate).
// Secrets never live in the file: an endpoint names the environment
// variable or the file that holds its password (*_env, *_file), and the
// effective settings print with secrets masked (Config.Describe).
//
// config only describes; cmd/izdrop and the service package turn it into
// running parts.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/transform"
)

// Config is the whole file.
type Config struct {
	// Service holds settings of the process as a whole.
	Service Service `toml:"service"`
	// Sites are the CAIR2 reporting sites, by a name of the user's choice.
	Sites map[string]*Site `toml:"sites"`
	// Endpoints are the registries to send to, by name. The name "sandbox",
	// unless defined here, is the embedded sandbox registry.
	Endpoints map[string]*Endpoint `toml:"endpoints"`
	// Inboxes are the folders exports are dropped into, by name.
	Inboxes map[string]*Inbox `toml:"inboxes"`
	// Profiles describe export layouts other than the default ("izdrop-csv").
	Profiles map[string]*Profile `toml:"profiles"`
	// Sandbox configures the embedded sandbox registry.
	Sandbox Sandbox `toml:"sandbox"`
	// Status configures the status page and metrics `izdrop serve` serves.
	Status Status `toml:"status"`
	// Alerts say whom to tell when something needs a person.
	Alerts Alerts `toml:"alerts"`
	// Retention says how long archived files and their journal rows are
	// kept (default: for ever).
	Retention Retention `toml:"retention"`
	// Journal says where the journal is: by default SQLite in data_dir;
	// with url, a PostgreSQL database shared by several hosts.
	Journal Journal `toml:"journal"`

	path  string // the file read, for relative paths and messages
	dir   string
	lines map[string]int // key -> line, for messages (positions)
}

// Service holds process-wide settings.
type Service struct {
	// DataDir holds the journal and imported code tables. Relative paths in
	// the file are relative to the file's folder.
	DataDir string `toml:"data_dir"`
	// LogFormat is "auto" (console on a terminal, JSON otherwise), "json" or
	// "console".
	LogFormat string `toml:"log_format"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// Timezone is the registry's time zone, for "today" and MSH-7.
	Timezone string `toml:"timezone"`
	// ShutdownGrace bounds how long a stop waits for calls in flight.
	ShutdownGrace Duration `toml:"shutdown_grace"`

	// LogFile, when set, is where the logs go instead of stderr (JSON unless
	// log_format is "console"), rotated by size. Relative to the config
	// file's folder. Without it logs go to stderr, which systemd hands to
	// the journal; a Windows service has no stderr, so set it there.
	LogFile string `toml:"log_file"`
	// LogMaxSizeMB is the size in megabytes at which the log file is
	// rotated (default 50).
	LogMaxSizeMB int `toml:"log_max_size_mb"`
	// LogBackups is how many rotated log files are kept (default 10).
	LogBackups int `toml:"log_backups"`
}

// Site is one CAIR2 reporting site.
type Site struct {
	// ID is the CAIR Site ID (org code): MSH-22 and RXA-11.4.
	ID string `toml:"id"`
	// SendingFacility is MSH-4 when one organisation sends for several
	// sites; defaults to ID.
	SendingFacility string `toml:"sending_facility"`
	// Region is the CAIR region code for MSH-6 (CAIRBA, CAIRLO, ...).
	Region string `toml:"region"`
	// County is the site's California county, for the San Joaquin rule.
	County string `toml:"county"`
	// AssigningAuthority is PID-3.4; defaults to SendingFacility.
	AssigningAuthority string `toml:"assigning_authority"`
}

// Endpoint is a registry's CDC IIS SOAP web service.
type Endpoint struct {
	// Environment is what the endpoint is for: "staging" (the registry's
	// test or training endpoint, where the test plan runs) or "production".
	// Required. When the endpoint has [endpoints.NAME.staging] and
	// [endpoints.NAME.production] tables, it picks the one in use, so going
	// live is this one line.
	Environment string `toml:"environment"`
	// Staging and Production hold what differs between the registry's two
	// endpoints (url, credentials); their settings override the endpoint's
	// own for the environment selected.
	Staging    *EndpointEnv `toml:"staging"`
	Production *EndpointEnv `toml:"production"`
	// RegistryID names the registry for "already accepted": a record the
	// registry holds is not sent to it again. By default a registry is its
	// URL and facility_id, so acceptances by the sandbox or a staging
	// endpoint never stop a record from going to production. Set it to
	// keep a registry's memory across a change of URL; the environment
	// stays part of the identity either way.
	RegistryID string `toml:"registry_id"`
	// URL of the service, e.g. https://host/CATRN-WS/IISService.
	URL string `toml:"url"`
	// Codec is the WSDL generation: "2011" (CAIR's, default) or "2014".
	Codec string `toml:"codec"`
	// Registry is what the endpoint is: "CAIR2" (default) or another
	// registry (the San Joaquin rule applies to CAIR2 only).
	Registry string `toml:"registry"`
	// Username and FacilityID are usually the CAIR org code.
	Username   string `toml:"username"`
	FacilityID string `toml:"facility_id"`
	// PasswordEnv names the environment variable holding the password;
	// PasswordFile names a file holding it. One of them is required for a
	// real registry.
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
	// CAFile adds a PEM CA bundle to the system roots.
	CAFile string `toml:"ca_file"`
	// ClientCert and ClientKey give a client certificate (PEM files).
	ClientCert string `toml:"client_cert"`
	ClientKey  string `toml:"client_key"`
	// ConnectTimeout bounds TCP connect and TLS handshake (default 15s);
	// ReadTimeout bounds waiting for the answer (default 60s).
	ConnectTimeout Duration `toml:"connect_timeout"`
	ReadTimeout    Duration `toml:"read_timeout"`
	// Concurrency is the number of calls in flight and of kept-alive
	// connections (default 4).
	Concurrency int `toml:"concurrency"`
	// MaxMessageBytes caps one message (default 65536): a larger one is
	// never sent, its records are refused with the reason.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// Rate caps calls per second (0: no cap).
	Rate float64 `toml:"rate"`
	// RetryBudget is how long one message is retried after transient
	// failures before it is left for the next pass (default 10m).
	RetryBudget Duration `toml:"retry_budget"`
	// MaxAttempts caps the tries of one message within the budget (default 8).
	MaxAttempts int `toml:"max_attempts"`
	// BreakerFailures is the run of transient failures that opens the
	// circuit breaker (default 5); BreakerCooldown is how long it stays open
	// before a connectivity probe (default 30s).
	BreakerFailures int      `toml:"breaker_failures"`
	BreakerCooldown Duration `toml:"breaker_cooldown"`
	// BreakerMaxCooldown caps the cool-down, which doubles while probes
	// fail (default 2 x breaker_cooldown): it bounds how long sending
	// waits after the registry is back.
	BreakerMaxCooldown Duration `toml:"breaker_max_cooldown"`
}

// EndpointEnv is what differs between a registry's staging and production
// endpoints. Empty settings keep the endpoint's own.
type EndpointEnv struct {
	URL          string `toml:"url"`
	Username     string `toml:"username"`
	FacilityID   string `toml:"facility_id"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
	RegistryID   string `toml:"registry_id"`
}

// Environments of an endpoint.
const (
	Staging    = "staging"
	Production = "production"
	// SandboxEnv is the embedded sandbox's environment (and that of a
	// sandbox started with `izdrop sandbox`, on loopback).
	SandboxEnv = "sandbox"
)

// Inbox is a folder (local or on an SFTP server) exports are dropped into.
type Inbox struct {
	// Kind is "local" (default) or "sftp".
	Kind string `toml:"kind"`
	// Path is the inbox folder (local path, or remote path for sftp).
	Path string `toml:"path"`
	// Create lets izdrop create a missing local inbox folder. Without it a
	// missing folder is an error at start: a mistyped path would otherwise
	// be watched, empty, forever, while the EHR writes elsewhere.
	Create bool `toml:"create"`
	// Archive is the local folder holding work/, done/ and failed/ for this
	// inbox; defaults to Path for local inboxes.
	Archive string `toml:"archive"`
	// PatternsCaseSensitive makes patterns match names in their case only;
	// by default "*.csv" also takes EXPORT.CSV.
	PatternsCaseSensitive bool `toml:"patterns_case_sensitive"`
	// Patterns are the file names taken (shell patterns); default *.csv and
	// *.txt.
	Patterns []string `toml:"patterns"`
	// Profile is the export layout: "izdrop-csv" (default) or a [profiles]
	// name.
	Profile string `toml:"profile"`
	// Site is the [sites] name whose identities the records get.
	Site string `toml:"site"`
	// Endpoint is the [endpoints] name (or "sandbox") records are sent to.
	// Required: nothing is sent anywhere by default.
	Endpoint string `toml:"endpoint"`
	// Marker, when "done" or "ready", takes a file only once NAME.done (or
	// NAME.ready) exists beside it.
	Marker string `toml:"marker"`
	// StableFor is how long size and mtime must not change before a file is
	// taken (default 2s).
	StableFor Duration `toml:"stable_for"`
	// Rescan is the period of the full scan that backs up file events
	// (default 30s); for sftp inboxes, the polling interval.
	Rescan Duration `toml:"rescan"`
	// Schedule, a cron spec (CRON_TZ= allowed), processes the inbox on a
	// schedule instead of watching it.
	Schedule string `toml:"schedule"`

	// SFTP settings (kind = "sftp").
	Host           string `toml:"host"`
	Port           int    `toml:"port"`
	User           string `toml:"user"`
	PasswordEnv    string `toml:"password_env"`
	PasswordFile   string `toml:"password_file"`
	KeyFile        string `toml:"key_file"`
	PassphraseEnv  string `toml:"passphrase_env"`
	PassphraseFile string `toml:"passphrase_file"`
	KnownHosts     string `toml:"known_hosts"`
	// InsecureIgnoreHostKey skips host key checking. For tests only: every
	// connect logs a warning.
	InsecureIgnoreHostKey bool `toml:"insecure_ignore_host_key"`
	// RemoteArchive puts the file and its sidecars back into remote done/ and
	// failed/ folders under the inbox, for the EHR side to read (default
	// true). With false, a processed file stays in the remote work/ folder.
	RemoteArchive *bool `toml:"remote_archive"`

	// InboxMode is the permission, in octal, the inbox folder gets when
	// izdrop creates it (local inboxes; default "0700", the service's
	// account only). "0770" with InboxGroup lets the EHR's export account
	// write into it, "1770" also keeps that account from renaming what
	// izdrop keeps there. work/, done/, failed/, the lock file and the
	// journal stay private (0700/0600) whatever it is. Bits for all users
	// are refused. Not on Windows, where the folder's ACL decides.
	InboxMode string `toml:"inbox_mode"`
	// InboxGroup is the group (a name, or a number) the inbox folder gets
	// when izdrop creates it; the service's account must belong to it.
	InboxGroup string `toml:"inbox_group"`
}

// FolderMode is InboxMode as a file mode: permission bits, with setgid and
// sticky where asked for; 0700 when unset.
func (in *Inbox) FolderMode() (os.FileMode, error) {
	if in.InboxMode == "" {
		return 0o700, nil
	}
	v, err := strconv.ParseUint(in.InboxMode, 8, 32)
	switch {
	case err != nil || v > 0o7777:
		return 0, fmt.Errorf("inbox_mode %q: an octal mode such as \"0770\"", in.InboxMode)
	case v&0o700 != 0o700:
		return 0, fmt.Errorf("inbox_mode %q: izdrop's own account needs rwx (0700)", in.InboxMode)
	case v&0o007 != 0:
		return 0, fmt.Errorf("inbox_mode %q: gives every account on the machine access to patient data; use the group bits with inbox_group", in.InboxMode)
	case v&0o4000 != 0:
		return 0, fmt.Errorf("inbox_mode %q: setuid means nothing on a folder", in.InboxMode)
	}
	m := os.FileMode(v & 0o777)
	if v&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m, nil
}

// Profile is an export layout, mapped onto the default one.
type Profile struct {
	// Columns maps default-layout column names to this export's headers.
	Columns map[string]string `toml:"columns"`
	// Values maps, per column, export values to default-layout values.
	Values map[string]map[string]string `toml:"values"`
	// Delimiter: ",", "|", ";" or "\t".
	Delimiter string `toml:"delimiter"`
	// Encoding: "utf-8" or "windows-1252".
	Encoding string `toml:"encoding"`
	// DateFormat pins "YYYY-MM-DD", "YYYYMMDD" or "MM/DD/YYYY".
	DateFormat string `toml:"date_format"`
	// IDType is PID-3.5 (default MR).
	IDType string `toml:"id_type"`
	// NamePolicy is "strip" (default) or "reject".
	NamePolicy string `toml:"name_policy"`

	// Other export formats (see formatDefaults and validateFormats).

	// Format is the export's format: "csv" (default), "hl7" (files of
	// VXU^V04 messages, one or many, with or without FHS/BHS batch
	// wrappers) or "fhir-ndjson" (FHIR R4 bulk export: a PREFIX
	// Patient.ndjson + PREFIX Immunization.ndjson pair, or a Bundle).
	// columns, delimiter and date_format are for csv only; values maps
	// apply to every format.
	Format string `toml:"format"`
	// SetSiteFields (hl7) takes MSH-4, MSH-6, MSH-22 and RXA-11.4 from the
	// inbox's site and sends MSH-11 as P, whatever the messages say.
	// Default false: a message's own values are kept where it has them.
	SetSiteFields bool `toml:"set_site_fields"`
	// MSH10 (hl7) is "keep" (default: a message goes out under its own
	// MSH-10 unless izdrop sent one with it before) or "replace" (every
	// message gets a new one).
	MSH10 string `toml:"msh10"`
}

// Status configures the status page, its metrics and progress logging.
type Status struct {
	// Listen is the status page's address (default 127.0.0.1:8932; "off"
	// for none). An address other than loopback needs username and a
	// password: the page lists files and record ids.
	Listen string `toml:"listen"`
	// Username and PasswordEnv / PasswordFile guard the page with basic
	// auth.
	Username     string `toml:"username"`
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
	// ProgressEvery is how often serve logs the progress of a file still
	// being sent (default 30s).
	ProgressEvery Duration `toml:"progress_every"`
}

// Alerts say how izdrop tells a person that something needs them: a file
// filed under failed/, an endpoint's breaker open, credentials refused, a
// file waiting too long. Each alert is a small JSON document (kind, inbox,
// endpoint, file name, claim, counts, text) - never patient data.
type Alerts struct {
	// Command runs with the alert as JSON on its standard input, e.g.
	// ["/usr/local/bin/notify-team", "--izdrop"].
	Command []string `toml:"command"`
	// Webhook receives the alert as a JSON POST.
	Webhook string `toml:"webhook"`
	// WebhookHeaderEnv names an environment variable holding one
	// "Name: value" header for the webhook (a token, say).
	WebhookHeaderEnv string `toml:"webhook_header_env"`
	// WaitingLongerThan alerts when a file has waited in work/ for the
	// registry this long (default 2h).
	WaitingLongerThan Duration `toml:"waiting_longer_than"`
}

// Sandbox configures the embedded sandbox registry, started in-process for
// the endpoint "sandbox".
type Sandbox struct {
	// Listen is its loopback address (default 127.0.0.1:8931; port 0 picks
	// a free one).
	Listen string `toml:"listen"`
	// Username, FacilityID and PasswordEnv are the credentials it accepts;
	// defaults "sandbox"/"sandbox", password from IZDROP_SANDBOX_PASSWORD or
	// "sandbox".
	Username    string `toml:"username"`
	FacilityID  string `toml:"facility_id"`
	PasswordEnv string `toml:"password_env"`
}

// Duration is a time.Duration written as "15s", "2m".
type Duration struct{ time.Duration }

// UnmarshalText reads "15s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as \"15s\" or \"2m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes "15s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultProfile is the name of the built-in layout.
const DefaultProfile = "izdrop-csv"

// SandboxEndpoint is the endpoint name of the embedded sandbox.
const SandboxEndpoint = "sandbox"

// Load reads, decodes strictly, fills defaults and validates a config file.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(raw, path)
	if err != nil {
		return nil, err
	}
	return c, c.Validate(codes.Embedded())
}

// Parse decodes a config document and fills defaults, without validating.
func Parse(raw []byte, path string) (*Config, error) {
	c := &Config{}
	dec := toml.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	c.path, c.dir = path, filepath.Dir(abs)
	c.lines = positions(raw)
	c.defaults()
	return c, nil
}

// decodeError names the file, line and key of each problem.
func decodeError(path string, err error) error {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		var errs []error
		for i := range sm.Errors {
			e := &sm.Errors[i]
			line, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			msg := fmt.Sprintf("%s:%d: unknown key %q", path, line, key)
			last := e.Key()[len(e.Key())-1]
			if strings.Contains(last, "password") || strings.Contains(last, "passphrase") || strings.Contains(last, "secret") {
				msg += ": secrets never go in config.toml; name them with " + last + "_env (an environment variable) or " + last + "_file"
			}
			errs = append(errs, errors.New(msg))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		return fmt.Errorf("%s:%d:%d: %s", path, line, col, strings.TrimPrefix(de.Error(), "toml: "))
	}
	return fmt.Errorf("%s: %w", path, err)
}

// defaults fills every default, in one place.
func (c *Config) defaults() {
	c.formatDefaults()
	s := &c.Service
	if s.DataDir == "" {
		s.DataDir = "./var"
	}
	if s.LogFormat == "" {
		s.LogFormat = "auto"
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	if s.Timezone == "" {
		s.Timezone = "America/Los_Angeles"
	}
	if s.ShutdownGrace.Duration == 0 {
		s.ShutdownGrace.Duration = 30 * time.Second
	}
	s.DataDir = c.Abs(s.DataDir)
	c.journalDefaults()
	// Log file and inbox folder permissions.
	if s.LogFile != "" {
		s.LogFile = c.Abs(s.LogFile)
	}
	if s.LogMaxSizeMB == 0 {
		s.LogMaxSizeMB = 50
	}
	if s.LogBackups == 0 {
		s.LogBackups = 10
	}
	for _, in := range c.Inboxes {
		if in.InboxMode == "" && (in.Kind == "" || in.Kind == "local") {
			in.InboxMode = "0700"
		}
	}
	for _, site := range c.Sites {
		if site.SendingFacility == "" {
			site.SendingFacility = site.ID
		}
		if site.AssigningAuthority == "" {
			site.AssigningAuthority = site.SendingFacility
		}
	}
	for _, e := range c.Endpoints {
		e.defaults(c)
	}
	for _, in := range c.Inboxes {
		if in.Kind == "" {
			in.Kind = "local"
		}
		if len(in.Patterns) == 0 {
			in.Patterns = []string{"*.csv", "*.txt"}
		}
		if in.Profile == "" {
			in.Profile = DefaultProfile
		}
		if in.StableFor.Duration == 0 {
			in.StableFor.Duration = 2 * time.Second
		}
		if in.Rescan.Duration == 0 {
			in.Rescan.Duration = 30 * time.Second
		}
		if in.Kind == "local" {
			in.Path = c.Abs(in.Path)
			if in.Archive == "" {
				in.Archive = in.Path
			}
		}
		if in.Archive != "" {
			in.Archive = c.Abs(in.Archive)
		}
		if in.Kind == "sftp" {
			if in.Port == 0 {
				in.Port = 22
			}
			if in.RemoteArchive == nil {
				t := true
				in.RemoteArchive = &t
			}
			if in.KnownHosts == "" {
				if home, err := os.UserHomeDir(); err == nil {
					in.KnownHosts = filepath.Join(home, ".ssh", "known_hosts")
				}
			}
			for _, p := range []*string{&in.KnownHosts, &in.KeyFile, &in.PasswordFile, &in.PassphraseFile} {
				if *p != "" {
					*p = c.Abs(*p)
				}
			}
		}
	}
	if c.Status.Listen == "" {
		c.Status.Listen = "127.0.0.1:8932"
	}
	if c.Status.ProgressEvery.Duration == 0 {
		c.Status.ProgressEvery.Duration = 30 * time.Second
	}
	if c.Status.PasswordFile != "" {
		c.Status.PasswordFile = c.Abs(c.Status.PasswordFile)
	}
	if c.Alerts.WaitingLongerThan.Duration == 0 {
		c.Alerts.WaitingLongerThan.Duration = 2 * time.Hour
	}
	sb := &c.Sandbox
	if sb.Listen == "" {
		sb.Listen = "127.0.0.1:8931"
	}
	if sb.Username == "" {
		sb.Username = "sandbox"
	}
	if sb.FacilityID == "" {
		sb.FacilityID = "sandbox"
	}
	if sb.PasswordEnv == "" {
		sb.PasswordEnv = "IZDROP_SANDBOX_PASSWORD"
	}
	if _, ok := c.Endpoints[SandboxEndpoint]; !ok {
		if c.Endpoints == nil {
			c.Endpoints = map[string]*Endpoint{}
		}
		e := &Endpoint{Environment: SandboxEnv, Codec: "2011", Registry: "CAIR2", Username: sb.Username, FacilityID: sb.FacilityID, PasswordEnv: sb.PasswordEnv}
		e.defaults(c)
		c.Endpoints[SandboxEndpoint] = e
	}
}

func (e *Endpoint) defaults(c *Config) {
	if env := e.Selected(); env != nil {
		for _, f := range []struct{ dst, src *string }{
			{&e.URL, &env.URL}, {&e.Username, &env.Username}, {&e.FacilityID, &env.FacilityID},
			{&e.RegistryID, &env.RegistryID},
		} {
			if *f.src != "" {
				*f.dst = *f.src
			}
		}
		if env.PasswordEnv != "" || env.PasswordFile != "" {
			e.PasswordEnv, e.PasswordFile = env.PasswordEnv, env.PasswordFile
		}
	}
	if e.Codec == "" {
		e.Codec = "2011"
	}
	if e.Registry == "" {
		e.Registry = "CAIR2"
	}
	if e.ConnectTimeout.Duration == 0 {
		e.ConnectTimeout.Duration = 15 * time.Second
	}
	if e.ReadTimeout.Duration == 0 {
		e.ReadTimeout.Duration = 60 * time.Second
	}
	if e.Concurrency == 0 {
		e.Concurrency = 4
	}
	if e.MaxMessageBytes == 0 {
		e.MaxMessageBytes = 64 << 10
	}
	if e.RetryBudget.Duration == 0 {
		e.RetryBudget.Duration = 10 * time.Minute
	}
	if e.MaxAttempts == 0 {
		e.MaxAttempts = 8
	}
	if e.BreakerFailures == 0 {
		e.BreakerFailures = 5
	}
	if e.BreakerCooldown.Duration == 0 {
		e.BreakerCooldown.Duration = 30 * time.Second
	}
	if e.BreakerMaxCooldown.Duration == 0 {
		e.BreakerMaxCooldown.Duration = 2 * e.BreakerCooldown.Duration
	}
	for _, p := range []*string{&e.PasswordFile, &e.CAFile, &e.ClientCert, &e.ClientKey} {
		if *p != "" {
			*p = c.Abs(*p)
		}
	}
}

// Abs resolves a path relative to the config file's folder.
func (c *Config) Abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// Path is the file the config was read from.
func (c *Config) Path() string { return c.path }

// Selected returns the environment table the endpoint's environment picks,
// nil when it has none.
func (e *Endpoint) Selected() *EndpointEnv {
	switch e.Environment {
	case Staging:
		return e.Staging
	case Production:
		return e.Production
	}
	return nil
}

// Identity names the registry behind an endpoint, for "already accepted":
// its registry_id when set, otherwise its URL (scheme and host in lower
// case, default port and trailing slash dropped) and facility id. The
// embedded sandbox is "embedded-sandbox". Two endpoints with one identity
// share what the registry is known to hold.
func (e *Endpoint) Identity() string {
	if e.RegistryID != "" {
		// The environment is part of it: a registry_id kept while going
		// live must not carry staging's acceptances into production.
		return "id:" + e.RegistryID + "@" + e.Environment
	}
	if e.URL == "" {
		return "embedded-sandbox"
	}
	u, err := url.Parse(strings.TrimSpace(e.URL))
	if err != nil {
		return strings.TrimSpace(e.URL) + "#" + e.FacilityID
	}
	host := strings.ToLower(u.Host)
	host = strings.TrimSuffix(strings.TrimSuffix(host, ":443"), ":80")
	return strings.ToLower(u.Scheme) + "://" + host + strings.TrimRight(u.Path, "/") + "#" + e.FacilityID
}

// Validate reports every problem at once, each with the file, the line and
// the key it concerns.
func (c *Config) Validate(cs *codes.Set) error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.At(key), fmt.Sprintf(format, args...)))
	}
	switch c.Service.LogFormat {
	case "auto", "json", "console":
	default:
		add("service.log_format", "%q: use auto, json or console", c.Service.LogFormat)
	}
	switch c.Service.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("service.log_level", "%q: use debug, info, warn or error", c.Service.LogLevel)
	}
	if _, err := time.LoadLocation(c.Service.Timezone); err != nil {
		add("service.timezone", "%q: %v", c.Service.Timezone, err)
	}
	if len(c.Inboxes) == 0 {
		errs = append(errs, fmt.Errorf("%s: no [inboxes.NAME] table: izdrop needs at least one inbox", c.path))
	}
	// Log file and inbox folder permissions.
	if c.Service.LogMaxSizeMB < 1 || c.Service.LogBackups < 0 {
		add("service.log_max_size_mb", "must be at least 1, and log_backups not negative")
	}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		switch {
		case in.Kind != "local" && (in.InboxMode != "" || in.InboxGroup != ""):
			add("inboxes."+name+".inbox_mode", "inbox_mode and inbox_group are for local inboxes: an sftp inbox's permissions are the server's")
		case in.Kind == "local" && runtime.GOOS == "windows" && (in.InboxGroup != "" || in.InboxMode != "0700"):
			add("inboxes."+name+".inbox_mode", "inbox_mode and inbox_group do not apply on Windows: give the export account write access to the folder in its security settings (izdrop does not manage ACLs)")
		case in.Kind == "local":
			if _, err := in.FolderMode(); err != nil {
				add("inboxes."+name+".inbox_mode", "%v", err)
			}
		}
	}
	for _, name := range sorted(c.Sites) {
		s := c.Sites[name]
		if err := s.TransformSite().Validate(cs, false); err != nil {
			add("sites."+name, "%v", err)
		}
	}
	for _, name := range sorted(c.Profiles) {
		p, err := c.Profiles[name].transform(name)
		if err == nil {
			err = p.Validate(cs)
		}
		if err != nil {
			add("profiles."+name, "%v", err)
		}
	}
	if _, ok := c.Profiles[DefaultProfile]; ok {
		add("profiles."+DefaultProfile, "that name is the built-in layout; give the profile another name")
	}
	errs = append(errs, c.validateFormats()...)
	errs = append(errs, c.validateRetention()...)
	errs = append(errs, c.validateJournal()...)
	for _, name := range sorted(c.Endpoints) {
		c.validateEndpoint(name, add)
	}
	for _, name := range sorted(c.Inboxes) {
		c.validateInbox(name, cs, add)
	}
	if st := c.Status; st.Listen != "off" {
		host, _, err := net.SplitHostPort(st.Listen)
		switch {
		case err != nil:
			add("status.listen", "%q: %v", st.Listen, err)
		case !isLoopback("http://"+st.Listen) && (st.Username == "" || st.PasswordEnv == "" && st.PasswordFile == ""):
			add("status.listen", "%q is reachable from other machines: set username and password_env (or password_file), or listen on 127.0.0.1 (host %q)", st.Listen, host)
		}
		if (st.Username == "") != (st.PasswordEnv == "" && st.PasswordFile == "") {
			add("status", "username and password_env (or password_file) go together")
		}
	}
	if a := c.Alerts; a.Webhook != "" {
		if u, err := url.Parse(a.Webhook); err != nil || u.Host == "" || u.Scheme != "https" && !isLoopback(a.Webhook) {
			add("alerts.webhook", "%q: an https URL (plain http only on loopback)", a.Webhook)
		}
	}
	// Two inboxes on one archive would clean up after each other's
	// filings in progress, under different pass locks.
	archives := map[string]string{}
	for _, name := range sorted(c.Inboxes) {
		a := filepath.Clean(c.Inboxes[name].Archive)
		if other, dup := archives[a]; dup && a != "." {
			add("inboxes."+name+".archive", "same archive folder as inboxes.%s: give each inbox its own", other)
		}
		archives[a] = name
	}
	// Two inboxes on one folder would claim each other's files.
	paths := map[string]string{}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		key := in.Kind + ":" + in.Host + ":" + filepath.Clean(in.Path)
		if other, dup := paths[key]; dup {
			add("inboxes."+name+".path", "same folder as inboxes.%s", other)
		}
		paths[key] = name
	}
	return errors.Join(errs...)
}

func (c *Config) validateEndpoint(name string, add func(key, format string, args ...any)) {
	e := c.Endpoints[name]
	where := "endpoints." + name
	embedded := name == SandboxEndpoint && e.URL == ""
	switch e.Environment {
	case Staging, Production:
	case SandboxEnv:
		if !embedded && !isLoopback(e.URL) {
			add(where+".environment", "\"sandbox\" is for a sandbox on this machine; a registry at %s is \"staging\" or \"production\"", e.URL)
		}
	case "":
		add(where, "environment is required: \"staging\" (the registry's test endpoint, where `izdrop testplan` runs) or \"production\"")
	default:
		add(where+".environment", "%q: use \"staging\" or \"production\"", e.Environment)
	}
	if (e.Staging != nil || e.Production != nil) && (e.Environment == Staging || e.Environment == Production) && e.Selected() == nil {
		add(where+".environment", "%q is selected but [%s.%s] is not defined", e.Environment, where, e.Environment)
	}
	if !embedded {
		if e.URL == "" {
			add(where, "url is required")
		} else if err := checkURL(e.URL); err != nil {
			add(where+".url", "%q: %v", e.URL, err)
		}
		if e.PasswordEnv == "" && e.PasswordFile == "" {
			add(where, "set password_env or password_file (the password itself never goes in this file)")
		}
		if e.Username == "" || e.FacilityID == "" {
			add(where, "username and facility_id are required (usually the CAIR org code)")
		}
	}
	if e.Codec != "2011" && e.Codec != "2014" {
		add(where+".codec", "%q: use \"2011\" or \"2014\"", e.Codec)
	}
	if e.Concurrency < 1 || e.Concurrency > 64 {
		add(where+".concurrency", "%d: use 1 to 64", e.Concurrency)
	}
	if e.Rate < 0 {
		add(where+".rate", "must not be negative")
	}
	if e.MaxMessageBytes < 4096 {
		add(where+".max_message_bytes", "%d: use at least 4096", e.MaxMessageBytes)
	}
	if e.BreakerMaxCooldown.Duration < e.BreakerCooldown.Duration {
		add(where+".breaker_max_cooldown", "%s is shorter than breaker_cooldown (%s)", e.BreakerMaxCooldown, e.BreakerCooldown)
	}
	if (e.ClientCert == "") != (e.ClientKey == "") {
		add(where, "client_cert and client_key go together")
	}
}

func (c *Config) validateInbox(name string, cs *codes.Set, add func(key, format string, args ...any)) {
	in := c.Inboxes[name]
	where := "inboxes." + name
	if in.Path == "" {
		add(where, "path is required")
	}
	switch in.Kind {
	case "local":
	case "sftp":
		if in.Host == "" || in.User == "" {
			add(where, "an sftp inbox needs host and user")
		}
		if in.PasswordEnv == "" && in.PasswordFile == "" && in.KeyFile == "" {
			add(where, "an sftp inbox needs key_file, password_env or password_file")
		}
		if in.Archive == "" {
			add(where, "an sftp inbox needs archive, the local folder for work/, done/ and failed/")
		}
		if !in.InsecureIgnoreHostKey && in.KnownHosts == "" {
			add(where, "known_hosts is required to check the server's host key")
		}
		if in.Create {
			add(where+".create", "izdrop does not create remote folders; create it on the server")
		}
	default:
		add(where+".kind", "%q: use local or sftp", in.Kind)
	}
	if in.Kind == "local" && (in.RemoteArchive != nil || in.Host != "") {
		add(where, "host and remote_archive are sftp settings")
	}
	for _, p := range in.Patterns {
		if _, err := filepath.Match(p, "x"); err != nil {
			add(where+".patterns", "pattern %q: %v", p, err)
		}
	}
	switch in.Marker {
	case "", "done", "ready":
	default:
		add(where+".marker", "%q: use \"done\", \"ready\" or leave it out", in.Marker)
	}
	if in.Profile != DefaultProfile {
		if _, ok := c.Profiles[in.Profile]; !ok {
			add(where+".profile", "profile %q is not defined in [profiles]", in.Profile)
		}
	}
	site, ok := c.Sites[in.Site]
	if !ok {
		add(where+".site", "site %q is not defined in [sites]", in.Site)
	}
	var ep *Endpoint
	switch {
	case in.Endpoint == "":
		add(where, "endpoint is required: name the registry this inbox's records go to (an [endpoints.NAME], or \"sandbox\" for the embedded test registry)")
	default:
		if ep, ok = c.Endpoints[in.Endpoint]; !ok {
			add(where+".endpoint", "endpoint %q is not defined in [endpoints]", in.Endpoint)
		}
	}
	if site != nil && ep != nil && ep.Registry == "CAIR2" && site.County != "" && transform.InSanJoaquinRegion(site.County, cs) {
		add(where+".site", "site %s is in %s county, in the CAIR San Joaquin region: its sites report to the regional registry, not to CAIR2 (endpoint %q)", in.Site, site.County, in.Endpoint)
	}
	if in.Schedule != "" && !strings.HasPrefix(strings.TrimSpace(in.Schedule), "@every") {
		if err := checkCron(in.Schedule); err != nil {
			add(where+".schedule", "%q: %v", in.Schedule, err)
		}
	}
}

// checkURL says what is wrong with a registry URL, if anything.
func checkURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("not an http(s) URL")
	case u.Host == "" || strings.ContainsAny(u.Host, "<> "):
		return errors.New("no host name (replace the placeholder with the registry's host)")
	case u.Scheme == "http" && !isLoopback(raw):
		return errors.New("a registry is reached over https (plain http only on loopback)")
	}
	return nil
}

// isLoopback reports whether a URL's host is this machine.
func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// TransformSite is the site as transform takes it.
func (s *Site) TransformSite() transform.Site {
	return transform.Site{ID: s.ID, SendingFacility: s.SendingFacility, Region: s.Region, County: s.County, AssigningAuthority: s.AssigningAuthority}
}

// TransformProfile returns the named profile as transform takes it; the
// default layout for DefaultProfile.
func (c *Config) TransformProfile(name string) (transform.Profile, error) {
	if name == DefaultProfile || name == "" {
		return transform.Profile{Name: DefaultProfile, Delimiter: ','}, nil
	}
	p, ok := c.Profiles[name]
	if !ok {
		return transform.Profile{}, fmt.Errorf("profile %q is not defined in [profiles]", name)
	}
	return p.transform(name)
}

func (p *Profile) transform(name string) (transform.Profile, error) {
	tp := transform.Profile{Name: name, Columns: p.Columns, Values: p.Values, Encoding: p.Encoding,
		DateFormat: p.DateFormat, IDType: p.IDType, NamePolicy: p.NamePolicy,
		Format: p.Format, SetSiteFields: p.SetSiteFields, MSH10: p.MSH10}
	switch p.Delimiter {
	case "", ",":
		tp.Delimiter = ','
	case "|":
		tp.Delimiter = '|'
	case ";":
		tp.Delimiter = ';'
	case "\t", `\t`, "tab":
		tp.Delimiter = '\t'
	default:
		return tp, fmt.Errorf("delimiter %q: use \",\", \"|\", \";\" or \"\\t\"", p.Delimiter)
	}
	return tp, nil
}

// Sites returns every site as transform takes it, by Site ID.
func (c *Config) TransformSites() map[string]transform.Site {
	out := map[string]transform.Site{}
	for _, s := range c.Sites {
		out[s.ID] = s.TransformSite()
	}
	return out
}

// InboxNames returns the inbox names in order.
func (c *Config) InboxNames() []string { return sorted(c.Inboxes) }

// Location is the service time zone.
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Service.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

func sorted[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// InboxFor picks the inbox whose settings apply to a file given by hand
// (izdrop validate): the inbox whose folder holds it, else the first whose
// patterns match its name, else the first inbox.
func (c *Config) InboxFor(path string) string {
	names := sorted(c.Inboxes)
	abs, _ := filepath.Abs(path)
	for _, n := range names {
		in := c.Inboxes[n]
		if in.Kind == "local" && strings.HasPrefix(abs, filepath.Clean(in.Path)+string(filepath.Separator)) {
			return n
		}
	}
	base := filepath.Base(path)
	for _, n := range names {
		for _, p := range c.Inboxes[n].Patterns {
			if ok, _ := filepath.Match(p, base); ok {
				return n
			}
		}
	}
	if len(names) > 0 {
		return names[0]
	}
	return ""
}

// TransformOptions are the options transform reads the inbox's files with.
func (c *Config) TransformOptions(inbox string, cs *codes.Set) (transform.Options, error) {
	in, ok := c.Inboxes[inbox]
	if !ok {
		return transform.Options{}, fmt.Errorf("inbox %q is not defined", inbox)
	}
	prof, err := c.TransformProfile(in.Profile)
	if err != nil {
		return transform.Options{}, err
	}
	site, ok := c.Sites[in.Site]
	if !ok {
		return transform.Options{}, fmt.Errorf("site %q is not defined", in.Site)
	}
	return transform.Options{Profile: prof, Site: site.TransformSite(), Sites: c.TransformSites(), Codes: cs, Location: c.Location()}, nil
}

// Fingerprint identifies the settings an endpoint logs in with - its
// registry, username, facility and where its password and certificate come
// from (never the secrets themselves): a refusal of its credentials holds
// until the fingerprint changes or a credentials check passes.
func (e *Endpoint) Fingerprint() string {
	h := sha256.New()
	for _, s := range []string{e.Identity(), e.Username, e.FacilityID, e.PasswordEnv, e.PasswordFile, e.ClientCert} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// formatDefaults fills the defaults of the other export formats' keys. It
// runs before the inbox defaults (which give an inbox the CSV patterns):
// an inbox reading HL7 takes *.hl7 files, one reading FHIR *.ndjson and
// *.json, unless it lists its own patterns.
func (c *Config) formatDefaults() {
	for _, p := range c.Profiles {
		if p.Format == "" {
			p.Format = transform.FormatCSV
		}
		if p.Format == transform.FormatHL7 && p.MSH10 == "" {
			p.MSH10 = "keep"
		}
	}
	for _, in := range c.Inboxes {
		p, ok := c.Profiles[in.Profile]
		if !ok || len(in.Patterns) > 0 {
			continue
		}
		switch p.Format {
		case transform.FormatHL7:
			in.Patterns = []string{"*.hl7"}
		case transform.FormatFHIR:
			in.Patterns = []string{"*.ndjson", "*.json"}
		}
	}
}

// validateFormats checks what the other export formats ask of the inboxes
// (the profiles' own keys are checked by transform.Profile.Validate).
func (c *Config) validateFormats() []error {
	var errs []error
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		p, ok := c.Profiles[in.Profile]
		if ok && p.Format == transform.FormatFHIR && in.Kind == "sftp" {
			errs = append(errs, fmt.Errorf("%s: profile %q reads FHIR exports, whose two files izdrop takes together from local inboxes only: point this inbox at a local folder (synchronised from the server) or use the csv or hl7 format", c.At("inboxes."+name+".profile"), in.Profile))
		}
	}
	return errs
}

// Retention: archived files, their sidecars and their journal rows can be
// purged after a time.

// Retention is the [retention] table.
type Retention struct {
	// Days, above 0, purges what was archived more than Days days ago: the
	// file in done/ or failed/, its sidecars, and its rows in the journal
	// (records, messages, ACKs), with an audit line in the log for each.
	// Nothing that is not archived - a file in work/, waiting for the
	// registry - is ever purged. What each registry holds (site,
	// vaccination id, content hash, MSH-10) is kept, so that a file dropped
	// again is still not sent twice. 0 (the default) keeps everything.
	Days int `toml:"days"`
}

// Age is how long ago a file must have been archived to be purged; 0 when
// retention is off.
func (r Retention) Age() time.Duration { return time.Duration(r.Days) * 24 * time.Hour }

func (c *Config) validateRetention() []error {
	if c.Retention.Days < 0 {
		return []error{fmt.Errorf("%s: %d: a number of days, 0 to keep everything", c.At("retention.days"), c.Retention.Days)}
	}
	return nil
}

// The journal: SQLite in data_dir (the default), or PostgreSQL for
// several hosts.

// Journal is the [journal] table.
type Journal struct {
	// URL, when set, keeps the journal in a PostgreSQL database instead
	// of data_dir/journal.db: postgres://USER@HOST:PORT/DATABASE, with
	// libpq's parameters (sslmode=verify-full, sslrootcert=...) after a
	// "?". Every izdrop host that shares inboxes uses the same database:
	// they take turns on each inbox through it, and what one sent the
	// others know. The password never goes in the URL: name it with
	// password_env or password_file (or let the PGPASSWORD variable or a
	// ~/.pgpass file give it).
	URL string `toml:"url"`
	// PasswordEnv names the environment variable holding the database
	// password; PasswordFile a file holding it.
	PasswordEnv  string `toml:"password_env"`
	PasswordFile string `toml:"password_file"`
}

// Postgres reports whether the journal is a PostgreSQL database.
func (j Journal) Postgres() bool { return j.URL != "" }

// Password is the database password named by password_env or
// password_file, "" when neither is set.
func (j Journal) Password() (string, error) {
	if j.PasswordEnv == "" && j.PasswordFile == "" {
		return "", nil
	}
	return Secret(j.PasswordEnv, j.PasswordFile)
}

func (c *Config) journalDefaults() {
	if c.Journal.PasswordFile != "" {
		c.Journal.PasswordFile = c.Abs(c.Journal.PasswordFile)
	}
}

func (c *Config) validateJournal() []error {
	j := c.Journal
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", c.At("journal."+key), fmt.Sprintf(format, args...)))
	}
	if j.PasswordEnv != "" && j.PasswordFile != "" {
		add("password_env", "password_env and password_file: set one")
	}
	if j.URL == "" {
		if j.PasswordEnv != "" || j.PasswordFile != "" {
			add("password_env", "a password without url: set url to the PostgreSQL database, or remove the password")
		}
		return errs
	}
	u, err := url.Parse(j.URL)
	switch {
	case err != nil:
		add("url", "not a URL: %v", errors.Unwrap(err))
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		add("url", "%q: a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)", u.Scheme+"://...")
	case u.User != nil && func() bool { _, ok := u.User.Password(); return ok }() || u.Query().Has("password"):
		add("url", "holds a password: secrets never go in config.toml; name it with password_env (an environment variable) or password_file")
	case u.Host == "" && !u.Query().Has("host"):
		add("url", "names no host: postgres://USER@HOST:PORT/DATABASE")
	case strings.Trim(u.Path, "/") == "" && !u.Query().Has("dbname"):
		add("url", "names no database: postgres://USER@HOST:PORT/DATABASE")
	}
	return errs
}

// Where tells where the journal is, without secrets: the PostgreSQL host
// and database, or the SQLite file.
func (j Journal) Where(dataDir string) string {
	if j.URL == "" {
		return filepath.Join(dataDir, "journal.db")
	}
	if u, err := url.Parse(j.URL); err == nil {
		if u.User != nil {
			u.User = url.User(u.User.Username()) // never a password
		}
		q := u.Query()
		q.Del("password")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return "postgres (url not readable)"
}
