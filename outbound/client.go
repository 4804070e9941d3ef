package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Endpoint is everything a Client needs to reach one registry.
type Endpoint struct {
	Name       string // for logs and errors
	URL        string
	Codec      Codec
	Username   string
	Password   string // from the environment or a file; never logged
	FacilityID string

	CAFile     string // extra trusted CA bundle (PEM)
	ClientCert string // client certificate and key (PEM files)
	ClientKey  string

	ConnectTimeout time.Duration // TCP connect and TLS handshake (default 15s)
	ReadTimeout    time.Duration // waiting for the answer (default 60s)

	Concurrency int     // calls in flight and kept-alive connections (default 4)
	Rate        float64 // calls per second, 0 for no cap

	RetryBudget     time.Duration // how long one message is retried (default 10m)
	MaxAttempts     int           // tries of one message within the budget (default 8)
	BackoffBase     time.Duration // first backoff (default 500ms), doubled per retry
	BackoffMax      time.Duration // backoff cap (default 1m)
	BreakerFailures int           // transient failures in a row that open the breaker (default 5)
	BreakerCooldown time.Duration // open time before a probe (default 30s)
	MaxCooldown     time.Duration // cap of the doubling cool-down (default 2 x BreakerCooldown)
	// OnSubmit, when set, is told of every submitSingleMessage call Deliver
	// makes: how long it took and its error (nil for an answer). For
	// metrics; it must not block.
	OnSubmit func(took time.Duration, err error)
	// FailFast makes Deliver return at once (ErrNotDelivered, ErrBreakerOpen)
	// while the breaker is open, instead of waiting for it within the
	// budget: for callers that keep undelivered messages and come back.
	FailFast bool
}

func (e *Endpoint) defaults() {
	if e.Codec.Name == "" {
		e.Codec = Codec2011
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&e.ConnectTimeout, 15*time.Second)
	def(&e.ReadTimeout, 60*time.Second)
	def(&e.RetryBudget, 10*time.Minute)
	def(&e.BackoffBase, 500*time.Millisecond)
	def(&e.BackoffMax, time.Minute)
	def(&e.BreakerCooldown, 30*time.Second)
	def(&e.MaxCooldown, 2*e.BreakerCooldown)
	e.MaxCooldown = max(e.MaxCooldown, e.BreakerCooldown)
	if e.Concurrency <= 0 {
		e.Concurrency = 4
	}
	if e.MaxAttempts <= 0 {
		e.MaxAttempts = 8
	}
	if e.BreakerFailures <= 0 {
		e.BreakerFailures = 5
	}
}

// Client talks to one endpoint. It is safe for concurrent use; Close stops
// its breaker probe and closes idle connections.
type Client struct {
	ep      Endpoint
	http    *http.Client
	tr      *http.Transport
	sem     chan struct{}
	limiter *rate.Limiter
	br      *breaker
	log     zerolog.Logger

	ctx     context.Context // ends at Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	probing atomic.Bool
	rnd     func() float64

	mu      sync.Mutex
	stats   Stats
	refused *refusal
	// first admits one call at a time until the registry has answered
	// one (answered): see gateFirst.
	first    chan struct{}
	answered atomic.Bool
	answers  atomic.Int64 // messages answered, for telling a message's failures from the endpoint's
}

// Stats counts what a client did.
type Stats struct {
	Calls, Transient, Faults int64
	Delivered, NotDelivered  int64
	BreakerOpens             int64
}

// New builds a client; nothing is dialled until the first call.
func New(ep Endpoint, log zerolog.Logger) (*Client, error) {
	ep.defaults()
	if ep.URL == "" {
		return nil, errors.New("outbound: endpoint URL is empty")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ep.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(ep.CAFile)
		if err != nil {
			return nil, fmt.Errorf("outbound: CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("outbound: CA file %s holds no PEM certificate", ep.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	if ep.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(ep.ClientCert, ep.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("outbound: client certificate: %w", err)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	}
	dialer := &net.Dialer{Timeout: ep.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   ep.ConnectTimeout,
		ResponseHeaderTimeout: ep.ReadTimeout,
		// One pool per endpoint, as large as the calls in flight (plus the
		// breaker's probe): connections are reused, not re-handshaken.
		MaxIdleConns:        ep.Concurrency + 1,
		MaxIdleConnsPerHost: ep.Concurrency + 1,
		MaxConnsPerHost:     ep.Concurrency + 1,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		ep:     ep,
		tr:     tr,
		http:   &http.Client{Transport: tr},
		sem:    make(chan struct{}, ep.Concurrency),
		log:    log.With().Str("endpoint", ep.Name).Logger(),
		ctx:    ctx,
		cancel: cancel,
		rnd:    newRand(),
		first:  make(chan struct{}, 1),
	}
	if ep.Rate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(ep.Rate), max(1, ep.Concurrency))
	}
	c.br = newBreaker(ep.BreakerFailures, ep.BreakerCooldown, ep.MaxCooldown)
	return c, nil
}

// Close stops the client's background probe and drops idle connections.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
	c.tr.CloseIdleConnections()
}

// Endpoint returns the client's endpoint settings (password included: do
// not log it).
func (c *Client) Endpoint() Endpoint { return c.ep }

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// TransportError is a call that got no answer: DNS, connect, TLS, reset,
// timeout.
type TransportError struct {
	Op  string // "dns", "connect", "tls", "timeout", "read", "write"
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// call makes one SOAP call and returns the result element's text.
func (c *Client) call(ctx context.Context, o op, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.ep.ConnectTimeout+c.ep.ReadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.ep.URL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", contentType(o.action))
	c.count(func(s *Stats) { s.Calls++ })
	resp, err := c.http.Do(req)
	if err != nil {
		return "", transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", transportError(ctx, err)
	}
	return c.ep.Codec.parseResponse(o, raw, resp.StatusCode)
}

func transportError(ctx context.Context, err error) error {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return &TransportError{"dns", err}
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &recErr):
		return &TransportError{"tls", err}
	case ctx.Err() == context.DeadlineExceeded || errors.As(err, &netErr) && netErr.Timeout():
		return &TransportError{"timeout", err}
	case errors.Is(err, context.Canceled):
		return err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return &TransportError{"connect", err}
	}
	return &TransportError{"read", err}
}

// Submit makes one submitSingleMessage call: the ACK text, or an error.
// It neither retries nor consults the breaker; Deliver does.
func (c *Client) Submit(ctx context.Context, hl7 []byte) (string, error) {
	return c.call(ctx, c.ep.Codec.submit, c.ep.Codec.SubmitRequest(c.ep.Username, c.ep.Password, c.ep.FacilityID, string(hl7)))
}

// Ping makes a connectivityTest call and checks the echo.
func (c *Client) Ping(ctx context.Context) error {
	const echo = "izdrop connectivity test"
	got, err := c.call(ctx, c.ep.Codec.connect, c.ep.Codec.ConnectivityRequest(echo))
	if err != nil {
		return err
	}
	if got != echo && !bytes.Contains([]byte(got), []byte(echo)) {
		return fmt.Errorf("%w: connectivityTest answered %q", ErrBadResponse, snippet([]byte(got)))
	}
	return nil
}
