// Package alert tells a person when something needs them: a file filed
// under failed/, an endpoint's circuit breaker open, the registry refusing
// our credentials, a file waiting too long for the registry. An alert is a
// small JSON document - what happened, where, ids and counts - handed to a
// configured command on its standard input and/or POSTed to a webhook. It
// never carries patient data: no names, birth dates, addresses or phones,
// and no record contents.
//
// Alerts go out from one goroutine, in order, each with a timeout; a
// notifier that is down costs a log line, never a stalled pipeline: when the
// queue is full, the alert is dropped and counted.
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Kinds of alert.
const (
	FileFailed         = "file_failed"
	BreakerOpen        = "breaker_open"
	CredentialsRefused = "credentials_refused"
	FileWaiting        = "file_waiting"
	Recovered          = "recovered" // an endpoint answers again
)

// Alert is what is sent.
type Alert struct {
	Kind     string         `json:"kind"`
	At       time.Time      `json:"at"`
	Host     string         `json:"host,omitempty"`
	Inbox    string         `json:"inbox,omitempty"`
	Endpoint string         `json:"endpoint,omitempty"`
	File     string         `json:"file,omitempty"`  // the export's file name
	Claim    string         `json:"claim,omitempty"` // its claim id (izdrop find, izdrop status)
	Counts   map[string]int `json:"counts,omitempty"`
	Since    *time.Time     `json:"since,omitempty"`
	Text     string         `json:"text"`
}

// Options say where alerts go.
type Options struct {
	Command []string
	Webhook string
	Header  string // "Name: value", for the webhook
	Timeout time.Duration
	Log     zerolog.Logger
}

// Notifier sends alerts; Close waits for those queued.
type Notifier struct {
	o       Options
	once    sync.Once
	closed  atomic.Bool
	q       chan Alert
	wg      sync.WaitGroup
	client  *http.Client
	Dropped atomic.Int64 // alerts not sent: the queue was full
	Failed  atomic.Int64 // alerts a command or webhook did not take
	Sent    atomic.Int64
}

// New starts a notifier. With neither command nor webhook it only logs.
func New(o Options) *Notifier {
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	n := &Notifier{o: o, q: make(chan Alert, 256), client: &http.Client{Timeout: o.Timeout}}
	n.wg.Add(1)
	go n.run()
	return n
}

// Send queues an alert; it never blocks.
func (n *Notifier) Send(a Alert) {
	if n.closed.Load() {
		return
	}
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	n.o.Log.Warn().Str("alert", a.Kind).Str("inbox", a.Inbox).Str("endpoint", a.Endpoint).Str("file", a.File).Str("claim", a.Claim).Msg(a.Text)
	if len(n.o.Command) == 0 && n.o.Webhook == "" {
		return
	}
	select {
	case n.q <- a:
	default:
		n.Dropped.Add(1)
	}
}

// Close sends what is queued and stops.
func (n *Notifier) Close() {
	n.once.Do(func() { n.closed.Store(true); close(n.q) })
	n.wg.Wait()
}

func (n *Notifier) run() {
	defer n.wg.Done()
	for a := range n.q {
		body, _ := json.Marshal(a)
		ok := true
		if len(n.o.Command) > 0 {
			if err := n.command(body); err != nil {
				ok = false
				n.o.Log.Error().Err(err).Str("alert", a.Kind).Msg("the alert command failed")
			}
		}
		if n.o.Webhook != "" {
			if err := n.webhook(body); err != nil {
				ok = false
				n.o.Log.Error().Err(err).Str("alert", a.Kind).Msg("the alert webhook failed")
			}
		}
		if ok {
			n.Sent.Add(1)
		} else {
			n.Failed.Add(1)
		}
	}
}

func (n *Notifier) command(body []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), n.o.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.o.Command[0], n.o.Command[1:]...)
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", n.o.Command[0], err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Notifier) webhook(body []byte) error {
	req, err := http.NewRequest(http.MethodPost, n.o.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "izdrop-alert")
	if name, value, ok := strings.Cut(n.o.Header, ":"); ok {
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := n.client.Do(req)
	if err != nil {
		// A webhook URL often carries its secret in the path: name the host only.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("POST to %s: %w", req.URL.Host, ue.Err)
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST to %s: HTTP %d", req.URL.Host, resp.StatusCode)
	}
	return nil
}
