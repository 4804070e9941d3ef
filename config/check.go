package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Severity of a Finding.
const (
	SevError   = "error"   // izdrop would fail at run time
	SevWarning = "warning" // it would run, but probably not as meant
	SevInfo    = "info"    // what will happen, said so
)

// Finding is one thing Check found, tied to the key (and line) it concerns.
type Finding struct {
	Severity string
	Key      string
	Line     int
	Text     string
	file     string
}

func (f Finding) String() string {
	where := f.file
	if f.Line > 0 {
		where = fmt.Sprintf("%s:%d", f.file, f.Line)
	}
	if f.Key != "" {
		where += ": " + f.Key
	}
	return fmt.Sprintf("%s: %s: %s", f.Severity, where, f.Text)
}

// Finding returns a finding about key.
func (c *Config) Finding(severity, key, format string, args ...any) Finding {
	return Finding{Severity: severity, Key: key, Line: c.Line(key), Text: fmt.Sprintf(format, args...), file: c.path}
}

// Check looks at what the configuration needs at run time, beyond its
// syntax: every secret set and readable, every folder there (or to be
// created, said so) and writable by this user, every endpoint URL well
// formed and matching its environment. It reads, and writes only a
// probe file it removes; it never contacts a registry (the service's
// preflight does, when asked).
func (c *Config) Check() []Finding {
	var out []Finding
	add := func(sev, key, format string, args ...any) { out = append(out, c.Finding(sev, key, format, args...)) }
	used := map[string]bool{}
	for _, name := range sorted(c.Inboxes) {
		used[c.Inboxes[name].Endpoint] = true
	}
	checkDir("service.data_dir", c.Service.DataDir, true, add)
	if _, err := c.Journal.Password(); err != nil {
		add(SevError, "journal", "the database password is not available: %v", err)
	}
	for _, name := range sorted(c.Endpoints) {
		e := c.Endpoints[name]
		where := "endpoints." + name
		sev := SevError
		if !used[name] {
			sev = SevWarning // defined, but no inbox sends to it
		}
		if name == SandboxEndpoint && e.URL == "" {
			continue // the embedded sandbox needs no secret
		}
		key := where + ".password_env"
		if e.PasswordEnv == "" {
			key = where + ".password_file"
		}
		if env := e.Selected(); env != nil && (env.PasswordEnv != "" || env.PasswordFile != "") {
			key = where + "." + e.Environment
		}
		if _, err := Secret(e.PasswordEnv, e.PasswordFile); err != nil {
			add(sev, key, "the password is not available: %v", err)
		}
		for k, f := range map[string]string{"ca_file": e.CAFile, "client_cert": e.ClientCert, "client_key": e.ClientKey} {
			if f != "" {
				if err := readable(f); err != nil {
					add(sev, where+"."+k, "%v", err)
				}
			}
		}
		upper := strings.ToUpper(e.URL)
		switch {
		case e.Environment == Production && strings.Contains(upper, "CATRN"):
			add(SevWarning, where+".environment", "\"production\", but the URL is CAIR's training endpoint (CATRN)")
		case e.Environment == Staging && strings.Contains(upper, "CAPRD"):
			add(SevWarning, where+".environment", "\"staging\", but the URL is CAIR's production endpoint (CAPRD)")
		}
	}
	for _, name := range sorted(c.Inboxes) {
		in := c.Inboxes[name]
		where := "inboxes." + name
		if in.Kind == "local" {
			checkInboxDir(where, in, add)
		}
		checkDir(where+".archive", in.Archive, true, add)
		if in.Kind != "sftp" {
			continue
		}
		for _, s := range []struct{ key, env, file string }{
			{"password", in.PasswordEnv, in.PasswordFile}, {"passphrase", in.PassphraseEnv, in.PassphraseFile},
		} {
			if s.env == "" && s.file == "" {
				continue
			}
			key := where + "." + s.key + "_env"
			if s.env == "" {
				key = where + "." + s.key + "_file"
			}
			if _, err := Secret(s.env, s.file); err != nil {
				add(SevError, key, "the %s is not available: %v", s.key, err)
			}
		}
		if in.KeyFile != "" {
			if err := readable(in.KeyFile); err != nil {
				add(SevError, where+".key_file", "%v", err)
			}
		}
		if !in.InsecureIgnoreHostKey {
			if err := readable(in.KnownHosts); err != nil {
				add(SevError, where+".known_hosts", "%v (izdrop checks the server's host key against it)", err)
			}
		} else {
			add(SevWarning, where+".insecure_ignore_host_key", "the server's host key is not checked: for tests only")
		}
	}
	return out
}

// checkInboxDir: a local inbox must exist, unless izdrop may create it.
func checkInboxDir(where string, in *Inbox, add func(sev, key, format string, args ...any)) {
	st, err := os.Stat(in.Path)
	switch {
	case errors.Is(err, os.ErrNotExist) && in.Create:
		checkDir(where+".path", in.Path, true, add)
	case errors.Is(err, os.ErrNotExist):
		add(SevError, where+".path", "%s does not exist: create it (the EHR's export folder), correct the path, or set create = true", in.Path)
	case err != nil:
		add(SevError, where+".path", "%v", err)
	case !st.IsDir():
		add(SevError, where+".path", "%s is not a folder", in.Path)
	default:
		checkDir(where+".path", in.Path, false, add)
	}
}

// checkDir checks that dir is (or can be made) a folder this user can
// write in; creatable says that izdrop creates it when missing.
func checkDir(key, dir string, creatable bool, add func(sev, key, format string, args ...any)) {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) && creatable {
		parent := dir
		for {
			parent = filepath.Dir(parent)
			if _, err := os.Stat(parent); err == nil || parent == filepath.Dir(parent) {
				break
			}
		}
		if err := writable(parent); err != nil {
			add(SevError, key, "%s does not exist and cannot be created: %v", dir, err)
			return
		}
		add(SevInfo, key, "%s does not exist yet; izdrop will create it", dir)
		return
	}
	if err != nil {
		add(SevError, key, "%v", err)
		return
	}
	if !st.IsDir() {
		add(SevError, key, "%s is not a folder", dir)
		return
	}
	if err := writable(dir); err != nil {
		add(SevError, key, "%s is not writable by this user: %v", dir, err)
	}
}

// writable creates and removes a hidden probe file in dir (hidden names
// are never taken as exports).
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".izdrop-check-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
