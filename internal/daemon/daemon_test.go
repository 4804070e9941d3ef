package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUnitRunsServeWithTheConfigAndStopsGracefully(t *testing.T) {
	u, err := Unit(Spec{Name: "izdrop", Description: "izdrop", Executable: "/opt/iz drop/izdrop",
		Args: []string{"serve", "-config", `/etc/izdrop/100%"real"$HOME.toml`}, User: "izdrop",
		EnvFile: "/etc/izdrop/izdrop.env", StopTimeout: 45*time.Second + time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/opt/iz drop/izdrop" serve -config "/etc/izdrop/100%%\"real\"$$HOME.toml"` + "\n",
		"User=izdrop\n", "EnvironmentFile=-/etc/izdrop/izdrop.env\n", "KillSignal=SIGTERM\n",
		"TimeoutStopSec=46\n", "RestartPreventExitStatus=2\n", "WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if _, err := Unit(Spec{Name: "izdrop"}); err == nil {
		t.Error("a unit without an executable")
	}
}

// What the Windows service control manager does through kardianos/service:
// Start runs serve, Stop cancels its context and returns once serve has
// finished, with its error.
func TestProgramStopsServeThroughItsContext(t *testing.T) {
	started := make(chan struct{})
	finished := false
	p := &program{serve: func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		finished = true
		return errors.New("grace over")
	}, fatal: func(err error) { t.Errorf("fatal on a requested stop: %v", err) }}
	p.start()
	<-started
	if err := p.stop(); err == nil || err.Error() != "grace over" || !finished {
		t.Fatalf("stop returned %v before serve finished (%v)", err, finished)
	}
}

func TestProgramReportsAServeThatEndsByItself(t *testing.T) {
	fatal := make(chan error, 1)
	p := &program{serve: func(context.Context) error { return errors.New("journal: disk I/O error") }, fatal: func(err error) { fatal <- err }}
	p.start()
	select {
	case err := <-fatal:
		if !strings.Contains(err.Error(), "disk I/O error") {
			t.Errorf("fatal got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a serve that failed on its own was not reported")
	}
	if err := p.stop(); err == nil {
		t.Error("stop after a failure lost the error")
	}
}
