//go:build windows || darwin

package daemon

import (
	"errors"
	"runtime"

	kservice "github.com/kardianos/service"
)

func newService(s Spec, i kservice.Interface) (kservice.Service, error) {
	opt := kservice.KeyValue{}
	switch runtime.GOOS {
	case "windows":
		opt["StartType"] = "automatic"
		opt["DelayedAutoStart"] = true // after the network is up
		opt["OnFailure"] = "restart"
		opt["OnFailureDelayDuration"] = "1m"
		opt["OnFailureResetPeriod"] = 24 * 60 * 60
	case "darwin":
		opt["RunAtLoad"] = true
		opt["KeepAlive"] = true // stderr goes to /var/log/NAME.err.log
	}
	return kservice.New(i, &kservice.Config{
		Name: s.Name, DisplayName: s.Name, Description: s.Description,
		Executable: s.Executable, Arguments: s.Args, UserName: s.User, Option: opt,
	})
}

// manageOnly is the Interface of a service that is installed or driven,
// not run, by this process.
type manageOnly struct{}

func (manageOnly) Start(kservice.Service) error { return nil }
func (manageOnly) Stop(kservice.Service) error  { return nil }

func control(s Spec, what string, do func(kservice.Service) error) error {
	svc, err := newService(s, manageOnly{})
	if err != nil {
		return err
	}
	return describe(s.Name, what, do(svc))
}

// Install registers the service (started at boot). It does not start it:
// Start does.
func Install(s Spec) error {
	return control(s, "installing", func(svc kservice.Service) error { return svc.Install() })
}

// Uninstall stops the service if it runs and removes it.
func Uninstall(s Spec) error {
	return control(s, "uninstalling", func(svc kservice.Service) error {
		svc.Stop() // may not be running
		return svc.Uninstall()
	})
}

// Start starts the installed service.
func Start(s Spec) error {
	return control(s, "starting", func(svc kservice.Service) error { return svc.Start() })
}

// Stop stops it through the service manager, which izdrop takes as it
// takes SIGTERM.
func Stop(s Spec) error {
	return control(s, "stopping", func(svc kservice.Service) error { return svc.Stop() })
}

// Status says whether it is installed and running.
func Status(s Spec) (string, error) {
	svc, err := newService(s, manageOnly{})
	if err != nil {
		return "", err
	}
	st, err := svc.Status()
	switch {
	case errors.Is(err, kservice.ErrNotInstalled):
		return "not installed", nil
	case err != nil:
		return "", describe(s.Name, "status of", err)
	case st == kservice.StatusRunning:
		return "running", nil
	case st == kservice.StatusStopped:
		return "stopped", nil
	}
	return "unknown", nil
}
