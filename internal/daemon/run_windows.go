package daemon

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	kservice "github.com/kardianos/service"
)

// Run runs serve and returns what it returns. Started by the service
// control manager, its stop and the machine's shutdown cancel serve's
// context - izdrop's graceful stop, as SIGTERM elsewhere - and the start,
// the stop and a fatal error are written to the Windows event log under
// name. From a console, Ctrl-C cancels it.
func Run(name string, serve func(context.Context) error) error {
	if kservice.Interactive() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx)
	}
	w := &scm{program: program{serve: serve}}
	svc, err := newService(Spec{Name: name}, w)
	if err != nil {
		return err
	}
	if w.log, err = svc.Logger(nil); err != nil {
		w.log = nil // no event source: keep going without it
	}
	w.fatal = func(err error) {
		if w.log != nil {
			w.log.Errorf("%s stopped: %v", name, err)
		}
		os.Exit(1) // the service control manager's recovery restarts it
	}
	return svc.Run()
}

// scm is the program as the service control manager drives it.
type scm struct {
	program
	log kservice.Logger
}

func (w *scm) Start(kservice.Service) error {
	w.start()
	if w.log != nil {
		w.log.Info("izdrop started")
	}
	return nil
}

func (w *scm) Stop(kservice.Service) error {
	err := w.stop()
	if w.log != nil {
		if err != nil {
			w.log.Errorf("izdrop stopped: %v", err)
		} else {
			w.log.Info("izdrop stopped")
		}
	}
	return err
}
