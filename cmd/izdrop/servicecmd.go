package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/internal/daemon"
)

// serviceName is the name of the installed service (systemd unit, Windows
// service, launchd label) and of its Windows event log source.
const serviceName = "izdrop"

func init() {
	commands["service"] = command{"service install|uninstall|start|stop|status|unit: izdrop as a systemd unit, Windows service or launchd daemon", serviceCmd}
}

func serviceCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("service", stderr)
	path := fs.String("config", "config.toml", "install, unit: the configuration the service runs with")
	user := fs.String("user", "", "install, unit: the account the service runs as (default root; LocalSystem on Windows)")
	root := fs.String("root", "", "Linux: install into this root folder (an image) instead of the running system")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: izdrop service ACTION [flags]

  install    register "izdrop serve -config ABS" to start at boot (does not start it)
  uninstall  stop it and remove it
  start      start it
  stop       stop it: a graceful stop, as Ctrl-C
  status     installed? running?
  unit       print the systemd unit install writes (Linux)

On Linux a systemd unit (/etc/systemd/system/izdrop.service; logs: journalctl -u
izdrop; secrets: NAME=value lines in izdrop.env beside the config); on Windows a
service (set [service] log_file; starts, stops and fatal errors go to the event
log); on macOS a launchd daemon. Needs root / an Administrator.`)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fs.Usage()
		return exitUsage
	}
	action := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail(stderr, usageError{fmt.Sprintf("service %s: unexpected %q", action, fs.Arg(0))})
	}
	spec := daemon.Spec{Name: serviceName, Root: *root}
	switch action {
	case "install", "unit":
		s, c, err := installSpec(*path, *user, *root)
		if err != nil {
			return fail(stderr, err)
		}
		if action == "unit" {
			u, err := daemon.Unit(s)
			if err != nil {
				return fail(stderr, err)
			}
			fmt.Fprint(stdout, u)
			return exitOK
		}
		if runtime.GOOS == "windows" && c.Service.LogFile == "" {
			return fail(stderr, fmt.Errorf("%w: %s: set log_file in [service]: a Windows service has no console to log to", errConfig, c.Path()))
		}
		if err := daemon.Install(s); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "installed the %s service: %s %v\nstart it with: izdrop service start\n", serviceName, s.Executable, s.Args)
	case "uninstall":
		if err := daemon.Uninstall(spec); err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "removed the %s service\n", serviceName)
	case "start":
		if err := daemon.Start(spec); err != nil {
			return fail(stderr, err)
		}
	case "stop":
		if err := daemon.Stop(spec); err != nil {
			return fail(stderr, err)
		}
	case "status":
		st, err := daemon.Status(spec)
		if err != nil {
			return fail(stderr, err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", serviceName, st)
	default:
		fs.Usage()
		return exitUsage
	}
	return exitOK
}

// installSpec checks the configuration and describes the service that runs
// it: this binary, serve, the config's absolute path.
func installSpec(path, user, root string) (daemon.Spec, *config.Config, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return daemon.Spec{}, nil, err
	}
	c, err := loadConfig(abs)
	if err != nil {
		return daemon.Spec{}, nil, err
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return daemon.Spec{}, nil, fmt.Errorf("finding the izdrop binary: %w", err)
	}
	return daemon.Spec{
		Name:        serviceName,
		Description: "izdrop: immunization records from EHR exports to CAIR2",
		Executable:  exe,
		Args:        []string{"serve", "-config", abs},
		User:        user,
		EnvFile:     filepath.Join(filepath.Dir(abs), "izdrop.env"),
		StopTimeout: c.Service.ShutdownGrace.Duration + 30*time.Second,
		Root:        root,
	}, c, nil
}
