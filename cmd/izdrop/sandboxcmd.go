package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
)

func init() {
	commands["sandbox"] = command{"run the sandbox registry (a local double of CAIR2) on its own", sandboxCmd}
}

func sandboxCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sandbox", stderr)
	path := fs.String("config", "", "take listen address and credentials from this config's [sandbox] (optional)")
	listen := fs.String("listen", "127.0.0.1:8931", "address to listen on")
	user := fs.String("username", "sandbox", "username accepted")
	facility := fs.String("facility", "sandbox", "facility ID accepted")
	passEnv := fs.String("password-env", "IZDROP_SANDBOX_PASSWORD", "environment variable holding the password accepted (default password: sandbox)")
	latency := fs.Duration("latency", 0, "latency added to every call")
	jitter := fs.Duration("jitter", 0, "random extra latency, up to this")
	rate503 := fs.Float64("rate-503", 0, "share of calls answered HTTP 503 (0-1)")
	rateFault := fs.Float64("rate-fault", 0, "share of calls answered with an UnknownFault (0-1)")
	rateDrop := fs.Float64("rate-drop", 0, "share of calls whose connection is dropped mid-answer (0-1)")
	maxBytes := fs.Int("max-bytes", 256<<10, "largest message taken; larger ones get a MessageTooLargeFault")
	certFile := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	keyFile := fs.String("tls-key", "", "and this key (PEM)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *path != "" {
		c, err := loadConfig(*path)
		if err != nil {
			return fail(stderr, err)
		}
		*listen, *user, *facility, *passEnv = c.Sandbox.Listen, c.Sandbox.Username, c.Sandbox.FacilityID, c.Sandbox.PasswordEnv
	}
	log, _ := service.NewLogger("auto", "info", stderr)
	opt := sandbox.Options{Addr: *listen, Username: *user, FacilityID: *facility, MaxMessageBytes: *maxBytes, Log: log,
		Faults: sandbox.Faults{Latency: *latency, Jitter: *jitter, Rate503: *rate503, RateUnknown: *rateFault, RateDrop: *rateDrop}}
	opt.Password, _ = config.Secret(*passEnv, "")
	if opt.Password == "" {
		opt.Password = "sandbox"
	}
	if *certFile != "" {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fail(stderr, usageError{"TLS certificate: " + err.Error()})
		}
		opt.TLS = &cert
	}
	s, err := sandbox.Start(opt)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "sandbox registry at %s\n  2011 codec: %s\n  2014 codec: %s\n  status page: %s/\nstop with Ctrl-C\n", s.URL(), s.URL2011(), s.URL2014(), s.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s.Close()
	return exitOK
}
