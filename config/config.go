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
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

	path string // the file read, for relative paths and messages
	dir  string
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
}

// Inbox is a folder (local or on an SFTP server) exports are dropped into.
type Inbox struct {
	// Kind is "local" (default) or "sftp".
	Kind string `toml:"kind"`
	// Path is the inbox folder (local path, or remote path for sftp).
	Path string `toml:"path"`
	// Archive is the local folder holding work/, done/ and failed/ for this
	// inbox; defaults to Path for local inboxes.
	Archive string `toml:"archive"`
	// Patterns are the file names taken (shell patterns); default *.csv and
	// *.txt.
	Patterns []string `toml:"patterns"`
	// Profile is the export layout: "izdrop-csv" (default) or a [profiles]
	// name.
	Profile string `toml:"profile"`
	// Site is the [sites] name whose identities the records get.
	Site string `toml:"site"`
	// Endpoint is the [endpoints] name (or "sandbox") records are sent to.
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
		if in.Endpoint == "" {
			in.Endpoint = SandboxEndpoint
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
		e := &Endpoint{Codec: "2011", Registry: "CAIR2", Username: sb.Username, FacilityID: sb.FacilityID, PasswordEnv: sb.PasswordEnv}
		e.defaults(c)
		c.Endpoints[SandboxEndpoint] = e
	}
}

func (e *Endpoint) defaults(c *Config) {
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

// Validate reports every problem at once.
func (c *Config) Validate(cs *codes.Set) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch c.Service.LogFormat {
	case "auto", "json", "console":
	default:
		add("service.log_format %q: use auto, json or console", c.Service.LogFormat)
	}
	switch c.Service.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("service.log_level %q: use debug, info, warn or error", c.Service.LogLevel)
	}
	if _, err := time.LoadLocation(c.Service.Timezone); err != nil {
		add("service.timezone %q: %v", c.Service.Timezone, err)
	}
	if len(c.Inboxes) == 0 {
		add("no [inboxes.NAME] table: izdrop needs at least one inbox")
	}
	for _, name := range sorted(c.Sites) {
		s := c.Sites[name]
		if err := s.TransformSite().Validate(cs, false); err != nil {
			add("sites.%s: %v", name, err)
		}
	}
	for _, name := range sorted(c.Profiles) {
		p, err := c.Profiles[name].transform(name)
		if err == nil {
			err = p.Validate(cs)
		}
		if err != nil {
			add("profiles.%s: %v", name, err)
		}
	}
	if _, ok := c.Profiles[DefaultProfile]; ok {
		add("profiles.%s: that name is the built-in layout; give the profile another name", DefaultProfile)
	}
	errs = append(errs, c.validateFormats()...)
	for _, name := range sorted(c.Endpoints) {
		e := c.Endpoints[name]
		if name != SandboxEndpoint || e.URL != "" {
			if e.URL == "" {
				add("endpoints.%s: url is required", name)
			} else if !strings.HasPrefix(e.URL, "https://") && !strings.HasPrefix(e.URL, "http://127.0.0.1") && !strings.HasPrefix(e.URL, "http://localhost") && !strings.HasPrefix(e.URL, "http://[::1]") {
				add("endpoints.%s: url %q: a registry is reached over https (plain http only on loopback)", name, e.URL)
			}
			if e.PasswordEnv == "" && e.PasswordFile == "" {
				add("endpoints.%s: set password_env or password_file (the password itself never goes in this file)", name)
			}
			if e.Username == "" || e.FacilityID == "" {
				add("endpoints.%s: username and facility_id are required (usually the CAIR org code)", name)
			}
		}
		if e.Codec != "2011" && e.Codec != "2014" {
			add("endpoints.%s: codec %q: use \"2011\" or \"2014\"", name, e.Codec)
		}
		if e.Concurrency < 1 || e.Concurrency > 64 {
			add("endpoints.%s: concurrency %d: use 1 to 64", name, e.Concurrency)
		}
		if e.Rate < 0 {
			add("endpoints.%s: rate must not be negative", name)
		}
		if (e.ClientCert == "") != (e.ClientKey == "") {
			add("endpoints.%s: client_cert and client_key go together", name)
		}
	}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		where := "inboxes." + name
		if in.Path == "" {
			add("%s: path is required", where)
		}
		switch in.Kind {
		case "local":
		case "sftp":
			if in.Host == "" || in.User == "" {
				add("%s: an sftp inbox needs host and user", where)
			}
			if in.PasswordEnv == "" && in.PasswordFile == "" && in.KeyFile == "" {
				add("%s: an sftp inbox needs key_file, password_env or password_file", where)
			}
			if in.Archive == "" {
				add("%s: an sftp inbox needs archive, the local folder for work/, done/ and failed/", where)
			}
			if !in.InsecureIgnoreHostKey && in.KnownHosts == "" {
				add("%s: known_hosts is required to check the server's host key", where)
			}
		default:
			add("%s: kind %q: use local or sftp", where, in.Kind)
		}
		if in.Kind == "local" && (in.RemoteArchive != nil || in.Host != "") {
			add("%s: host and remote_archive are sftp settings", where)
		}
		for _, p := range in.Patterns {
			if _, err := filepath.Match(p, "x"); err != nil {
				add("%s: pattern %q: %v", where, p, err)
			}
		}
		switch in.Marker {
		case "", "done", "ready":
		default:
			add("%s: marker %q: use \"done\", \"ready\" or leave it out", where, in.Marker)
		}
		if in.Profile != DefaultProfile {
			if _, ok := c.Profiles[in.Profile]; !ok {
				add("%s: profile %q is not defined in [profiles]", where, in.Profile)
			}
		}
		site, ok := c.Sites[in.Site]
		if !ok {
			add("%s: site %q is not defined in [sites]", where, in.Site)
		}
		ep, ok := c.Endpoints[in.Endpoint]
		if !ok {
			add("%s: endpoint %q is not defined in [endpoints]", where, in.Endpoint)
		}
		if site != nil && ep != nil && ep.Registry == "CAIR2" && site.County != "" && transform.InSanJoaquinRegion(site.County, cs) {
			add("%s: site %s is in %s county, in the CAIR San Joaquin region: its sites report to the regional registry, not to CAIR2 (endpoint %q)", where, in.Site, site.County, in.Endpoint)
		}
		if in.Schedule != "" && strings.HasPrefix(strings.TrimSpace(in.Schedule), "@every") == false {
			if err := checkCron(in.Schedule); err != nil {
				add("%s: schedule %q: %v", where, in.Schedule, err)
			}
		}
	}
	// Two inboxes on one folder would claim each other's files.
	paths := map[string]string{}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		key := in.Kind + ":" + in.Host + ":" + filepath.Clean(in.Path)
		if other, dup := paths[key]; dup {
			add("inboxes.%s: same folder as inboxes.%s", name, other)
		}
		paths[key] = name
	}
	return errors.Join(errs...)
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
			errs = append(errs, fmt.Errorf("inboxes.%s: profile %q reads FHIR exports, whose two files izdrop takes together from local inboxes only: point this inbox at a local folder (synchronised from the server) or use the csv or hl7 format", name, in.Profile))
		}
	}
	return errs
}
