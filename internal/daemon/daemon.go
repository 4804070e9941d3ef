// Package daemon installs izdrop as the operating system's service and
// runs it as one: a systemd unit on Linux, a Windows service, a launchd
// daemon on macOS. cmd/izdrop's `service` command and `serve` use it; the
// flow packages know nothing of it.
//
// On Linux the unit is izdrop's own (Unit), written to
// /etc/systemd/system and driven with systemctl, so that what is installed
// is what the tests verify with systemd-analyze. On Windows and macOS,
// github.com/kardianos/service talks to the service control manager and
// launchd. Logs: under systemd stderr goes to the journal (journalctl -u
// izdrop); a Windows service has no stderr, so there izdrop writes its own
// starts, stops and fatal errors to the Windows event log (source
// "izdrop") and everything else to the [service] log_file.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"
)

// Spec is the service to install.
type Spec struct {
	Name        string   // service name: "izdrop"
	Description string   // one line
	Executable  string   // absolute path of the izdrop binary
	Args        []string // after the executable: serve -config ABS
	// User is the account it runs as: "" is root (Linux, macOS) or
	// LocalSystem (Windows).
	User string
	// EnvFile is a file of NAME=value lines systemd loads into the
	// environment (the secrets password_env names), if it exists.
	EnvFile string
	// StopTimeout is how long the service manager waits for a stop before
	// it kills the process: izdrop's shutdown grace and a margin.
	StopTimeout time.Duration
	// Root, on Linux, installs into another root folder (systemctl --root)
	// without touching the running system: for tests and images.
	Root string
}

// ErrUnsupported is returned where izdrop has no service manager to use.
var ErrUnsupported = errors.New("daemon: no supported service manager on this system")

// Unit is the systemd unit for s.
func Unit(s Spec) (string, error) {
	if s.Name == "" || s.Executable == "" {
		return "", errors.New("daemon: a unit needs a name and an executable")
	}
	var b strings.Builder
	err := unitTemplate.Execute(&b, struct {
		Spec
		ExecStart   string
		StopTimeout int
	}{s, execStart(append([]string{s.Executable}, s.Args...)), int((s.StopTimeout + time.Second - 1) / time.Second)})
	return b.String(), err
}

var unitTemplate = template.Must(template.New("unit").Parse(`# Installed by "izdrop service install"; removed by "izdrop service uninstall".
[Unit]
Description={{.Description}}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={{.ExecStart}}
{{if .User}}User={{.User}}
{{end}}{{if .EnvFile}}EnvironmentFile=-{{.EnvFile}}
{{end}}# stderr goes to the journal: journalctl -u {{.Name}}
# A stop is SIGTERM: no new file or message is started, calls in flight get
# shutdown_grace, and what is unfinished resumes at the next start.
KillSignal=SIGTERM
{{if .StopTimeout}}TimeoutStopSec={{.StopTimeout}}
{{end}}Restart=on-failure
RestartSec=10s
# Exit status 2 is a configuration error: restarting would not fix it.
RestartPreventExitStatus=2
UMask=0077
NoNewPrivileges=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`))

// execStart quotes each word for systemd's command line: words with
// spaces, quotes or backslashes in double quotes with C escapes, % and $
// doubled so that systemd expands nothing.
func execStart(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		w = strings.NewReplacer("%", "%%", "$", "$$").Replace(w)
		if w == "" || strings.ContainsAny(w, " \t\"'\\;") {
			w = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(w) + `"`
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

// program adapts serve to a service manager's start and stop: Start runs
// serve in the background, Stop cancels its context - the same graceful
// stop as SIGTERM - and waits for it to return. fatal is called when serve
// ends without being asked to.
type program struct {
	serve  func(context.Context) error
	fatal  func(error)
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (p *program) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		err := p.serve(ctx)
		p.err = err
		close(p.done)
		if ctx.Err() == nil && p.fatal != nil {
			if err == nil {
				err = errors.New("the service stopped by itself")
			}
			p.fatal(err)
		}
	}()
}

func (p *program) stop() error {
	p.cancel()
	<-p.done
	return p.err
}

func describe(name, what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", what, name, err)
}
