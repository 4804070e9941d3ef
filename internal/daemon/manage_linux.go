package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func unitPath(s Spec) string {
	return filepath.Join(s.Root, "/etc/systemd/system", s.Name+".service")
}

// Install writes the unit and enables it (started at boot). It does not
// start it: Start does.
func Install(s Spec) error {
	unit, err := Unit(s)
	if err != nil {
		return err
	}
	p := unitPath(s)
	if _, err := os.Stat(p); err == nil {
		return fmt.Errorf("%s exists: izdrop service uninstall first", p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		return err
	}
	err = nil
	if s.Root == "" {
		err = systemctl(s, "daemon-reload")
	}
	if err == nil {
		err = systemctl(s, "enable", s.Name+".service")
	}
	if err != nil {
		os.Remove(p) // not installed: leave nothing a second try would trip on
	}
	return err
}

// Uninstall stops and disables the service and removes its unit.
func Uninstall(s Spec) error {
	args := []string{"disable", s.Name + ".service"}
	if s.Root == "" {
		args = []string{"disable", "--now", s.Name + ".service"}
	}
	if err := systemctl(s, args...); err != nil {
		return err
	}
	if err := os.Remove(unitPath(s)); err != nil {
		return err
	}
	if s.Root == "" {
		return systemctl(s, "daemon-reload")
	}
	return nil
}

// Start starts the installed service.
func Start(s Spec) error { return systemctl(s, "start", s.Name+".service") }

// Stop stops it: SIGTERM, then its graceful stop.
func Stop(s Spec) error { return systemctl(s, "stop", s.Name+".service") }

// Status says whether it is installed and running, as systemd does
// ("active", "inactive", "failed", ...), or "not installed".
func Status(s Spec) (string, error) {
	if _, err := os.Stat(unitPath(s)); errors.Is(err, os.ErrNotExist) {
		return "not installed", nil
	}
	if s.Root != "" {
		return "installed", nil // nothing runs in another root
	}
	out, err := exec.Command("systemctl", "is-active", s.Name+".service").Output()
	state := strings.TrimSpace(string(out))
	if state != "" {
		return state, nil // is-active exits non-zero for every state but active
	}
	return "", describe(s.Name, "systemctl is-active", err)
}

func systemctl(s Spec, args ...string) error {
	if s.Root != "" {
		args = append([]string{"--root", s.Root}, args...)
	}
	var out bytes.Buffer
	cmd := exec.Command("systemctl", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
