package service

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// NewLogger builds the logger every part receives: JSON, or console lines
// when format is "console" or "auto" on a terminal.
func NewLogger(format, level string, w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level %q: %w", level, err)
	}
	out := w
	if format == "console" || format == "auto" && isTerminal(w) {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	}
	// Workers, the monitor and the alerts log at once: one line at a time,
	// whatever the writer.
	return zerolog.New(zerolog.SyncWriter(out)).Level(lvl).With().Timestamp().Logger(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// EmbeddedSandbox starts the embedded sandbox registry, or, when its
// address is taken by the embedded sandbox of another izdrop on this
// machine (a `run --once` beside a `serve`), uses that one: srv is then nil
// and only url is set. Any other program on the address is an error that
// says so.
func EmbeddedSandbox(c *config.Config, log zerolog.Logger) (srv *sandbox.Server, url string, err error) {
	srv, err = StartSandbox(c, log)
	if err == nil {
		return srv, srv.URL(), nil
	}
	if !addrInUse(err) {
		return nil, "", err
	}
	url = "http://" + c.Sandbox.Listen
	client := http.Client{Timeout: 3 * time.Second}
	resp, gerr := client.Get(url + sandbox.Path2011 + "?wsdl")
	if gerr == nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), "urn:cdc:iisb:2011") {
			log.Info().Str("url", url).Msg("another izdrop's embedded sandbox is at [sandbox] listen: using it")
			return nil, url, nil
		}
	}
	return nil, "", fmt.Errorf("[sandbox] listen %s is in use by another program (not an izdrop sandbox): give [sandbox] listen another address", c.Sandbox.Listen)
}

// StartSandbox starts the embedded sandbox registry with the [sandbox]
// settings.
func StartSandbox(c *config.Config, log zerolog.Logger) (*sandbox.Server, error) {
	pw, err := config.Secret(c.Sandbox.PasswordEnv, "")
	if err != nil {
		pw = "sandbox"
	}
	return sandbox.Start(sandbox.Options{Addr: c.Sandbox.Listen, Username: c.Sandbox.Username, Password: pw,
		FacilityID: c.Sandbox.FacilityID, Location: c.Location(), Log: log.With().Str("component", "sandbox").Logger()})
}

// Embedded reports whether endpoint name is the embedded sandbox.
func Embedded(c *config.Config, name string) bool {
	e, ok := c.Endpoints[name]
	return ok && name == config.SandboxEndpoint && e.URL == ""
}

// OutboundEndpoint turns a configured endpoint into outbound's settings,
// reading its password. sandboxURL is the embedded sandbox's address, used
// when name is the embedded sandbox.
func OutboundEndpoint(c *config.Config, name, sandboxURL string) (outbound.Endpoint, error) {
	e, ok := c.Endpoints[name]
	if !ok {
		return outbound.Endpoint{}, fmt.Errorf("endpoint %q is not defined", name)
	}
	codec, err := outbound.CodecByName(e.Codec)
	if err != nil {
		return outbound.Endpoint{}, err
	}
	pw, err := c.EndpointPassword(name)
	if err != nil {
		return outbound.Endpoint{}, err
	}
	url := e.URL
	if Embedded(c, name) {
		url = strings.TrimSuffix(sandboxURL, "/") + sandbox.Path2011
		if codec.Name == "2014" {
			url = strings.TrimSuffix(sandboxURL, "/") + sandbox.Path2014
		}
	}
	return outbound.Endpoint{
		Name: name, URL: url, Codec: codec, Username: e.Username, Password: pw, FacilityID: e.FacilityID,
		CAFile: e.CAFile, ClientCert: e.ClientCert, ClientKey: e.ClientKey,
		ConnectTimeout: e.ConnectTimeout.Duration, ReadTimeout: e.ReadTimeout.Duration,
		Concurrency: e.Concurrency, Rate: e.Rate, RetryBudget: e.RetryBudget.Duration, MaxAttempts: e.MaxAttempts,
		BreakerFailures: e.BreakerFailures, BreakerCooldown: e.BreakerCooldown.Duration, MaxCooldown: e.BreakerMaxCooldown.Duration,
	}, nil
}

// addrInUse reports an address taken by another listener (WSAEADDRINUSE,
// 10048, on Windows).
func addrInUse(err error) bool {
	var errno syscall.Errno
	return errors.Is(err, syscall.EADDRINUSE) || errors.As(err, &errno) && errno == 10048
}
