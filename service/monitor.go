// Watching the service itself: metrics for Prometheus, the endpoints' state
// and a heartbeat written to the journal (what `izdrop status` and the
// status page read), alerts when something needs a person, and the
// progress of files being sent.

package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/izdrop/izdrop/alert"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/status"
)

// metrics are the service's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg     *prometheus.Registry
	files   *prometheus.CounterVec
	records *prometheus.CounterVec
	submit  *prometheus.HistogramVec
	fails   *prometheus.CounterVec
	retries *prometheus.CounterVec
	alerts  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "izdrop_files_total",
			Help: "Files filed, by inbox and result (done, failed)."}, []string{"inbox", "result"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "izdrop_records_total",
			Help: "Records of filed files, by inbox and outcome."}, []string{"inbox", "outcome"}),
		submit: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "izdrop_submit_seconds",
			Help:    "Duration of submitSingleMessage calls, by endpoint.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"endpoint"}),
		fails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "izdrop_submit_failures_total",
			Help: "submitSingleMessage calls that got no answer (transport error, fault, HTTP error), by endpoint."}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "izdrop_retries_total",
			Help: "Attempts beyond the first of answered messages, by endpoint."}, []string{"endpoint"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "izdrop_alerts_total",
			Help: "Alerts raised, by kind."}, []string{"kind"}),
	}
	m.reg.MustRegister(m.files, m.records, m.submit, m.fails, m.retries, m.alerts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// breakerValue is the breaker gauge's value for a state.
func breakerValue(c *outbound.Client) float64 {
	if _, _, refused := c.Refused(); refused {
		return 3
	}
	st, _ := c.Breaker()
	return float64(st) // closed 0, open 1, half-open 2
}

func (s *Service) registerGauges() {
	for name, ep := range s.endpoints {
		s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "izdrop_breaker_state",
			Help:        "The endpoint's state: 0 closed (sending), 1 open (down), 2 half-open (trying), 3 credentials refused.",
			ConstLabels: prometheus.Labels{"endpoint": name}}, func() float64 { return breakerValue(ep.client) }))
	}
	for _, in := range s.inboxes {
		s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "izdrop_queue_files",
			Help:        "Files waiting: in the inbox not yet taken, and in work/ without every record answered, at the last pass.",
			ConstLabels: prometheus.Labels{"inbox": in.name}}, func() float64 { return float64(in.queue.Load()) }))
	}
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "izdrop_journal_bytes",
		Help: "The journal's size on disk."}, func() float64 { return float64(s.journal.Size()) }))
}

// Metrics is what /metrics serves.
func (s *Service) Metrics() prometheus.Gatherer { return s.metrics.reg }

// onSubmit feeds an endpoint's call durations to the metrics.
func (m *metrics) onSubmit(endpoint string) func(time.Duration, error) {
	h, f := m.submit.WithLabelValues(endpoint), m.fails.WithLabelValues(endpoint)
	return func(took time.Duration, err error) {
		h.Observe(took.Seconds())
		if err != nil {
			f.Inc()
		}
	}
}

// filed counts a filed file and tells a person when it failed.
func (in *inbox) filed(f journal.File, result archive.Result, counts map[string]int) {
	m := in.s.metrics
	m.files.WithLabelValues(in.name, string(result)).Inc()
	for k, n := range counts {
		m.records.WithLabelValues(in.name, k).Add(float64(n))
	}
	if result == archive.Failed {
		text := fmt.Sprintf("%s was filed under failed/: %s", f.Name, countText(counts))
		if f.Error != "" {
			text = fmt.Sprintf("%s could not be read and was filed under failed/", f.Name)
		}
		in.s.alert(alert.Alert{Kind: alert.FileFailed, Inbox: in.name, Endpoint: in.ep.name, File: f.Name, Claim: f.Claim, Counts: counts, Text: text})
	}
}

func countText(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", counts[k], k)
	}
	return s
}

func (s *Service) alert(a alert.Alert) {
	if a.Host == "" {
		a.Host = s.host
	}
	s.metrics.alerts.WithLabelValues(a.Kind).Inc()
	s.notifier.Send(a)
}

// monitor runs until ctx ends: every tick it records each endpoint's
// state in the journal and alerts on a change that needs a person, beats
// the heartbeat, and alerts on files waiting too long. It also logs the
// progress of long files.
func (s *Service) monitor(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	s.check(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check(ctx)
		}
	}
}

// check does one round of the monitor's work.
func (s *Service) check(ctx context.Context) {
	now := s.opt.Now()
	if now.Sub(s.lastBeat) >= 30*time.Second {
		if err := s.journal.Beat(ctx, journal.Heartbeat{Host: s.host, PID: os.Getpid(), StartedAt: s.started, At: now}); err == nil {
			s.lastBeat = now
		}
	}
	for _, name := range sortedEndpoints(s.endpoints) {
		ep := s.endpoints[name]
		state, reason, since := ep.state(now)
		if state == ep.lastState {
			continue
		}
		prev := ep.lastState
		if err := s.journal.SetEndpointState(ctx, journal.EndpointState{Name: name, Registry: ep.registry, State: state, Reason: reason, Since: since}); err != nil {
			continue // written at the next check
		}
		ep.lastState = state
		switch {
		case state == "breaker-open":
			s.alert(alert.Alert{Kind: alert.BreakerOpen, Endpoint: name, Since: &since,
				Text: "the registry does not answer: sending to " + name + " stopped until it does (" + reason + ")"})
		case state == "credentials-refused":
			s.alert(alert.Alert{Kind: alert.CredentialsRefused, Endpoint: name, Since: &since,
				Text: "the registry refused our credentials: nothing is sent to " + name + " until they are fixed and `izdrop ping -endpoint " + name + " -auth` passes"})
		case state == "ok" && (prev == "breaker-open" || prev == "credentials-refused"):
			s.alert(alert.Alert{Kind: alert.Recovered, Endpoint: name, Text: name + " answers again: sending resumed"})
		}
	}
	s.alertWaiting(ctx, now)
	s.logProgress(now)
}

// state names an endpoint's state for status and alerts.
func (ep *endpoint) state(now time.Time) (state, reason string, since time.Time) {
	if r, at, ok := ep.client.Refused(); ok {
		return "credentials-refused", r, at
	}
	switch st, r := ep.client.Breaker(); st {
	case outbound.Open:
		return "breaker-open", r, now
	case outbound.HalfOpen:
		return "half-open", r, now
	}
	return "ok", "", now
}

func sortedEndpoints(m map[string]*endpoint) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// alertWaiting tells a person once about each file that has waited in
// work/ for the registry longer than alerts.waiting_longer_than.
func (s *Service) alertWaiting(ctx context.Context, now time.Time) {
	limit := s.cfg.Alerts.WaitingLongerThan.Duration
	for _, in := range s.inboxes {
		// Pending: files whose records wait for the registry (a file still
		// being read and sent is not waiting).
		for _, state := range []string{journal.Pending} {
			fs, err := s.journal.FilesInState(ctx, in.name, state)
			if err != nil {
				continue
			}
			for _, f := range fs {
				if now.Sub(f.ClaimedAt) < limit {
					continue
				}
				if _, told := s.waitAlerted.LoadOrStore(f.Claim, true); told {
					continue
				}
				since := f.ClaimedAt
				s.alert(alert.Alert{Kind: alert.FileWaiting, Inbox: in.name, Endpoint: in.ep.name, File: f.Name, Claim: f.Claim, Since: &since,
					Text: fmt.Sprintf("%s has waited %s for the registry", f.Name, now.Sub(f.ClaimedAt).Round(time.Minute))})
			}
		}
	}
}

// progress is a file's progress while it is read and sent.
type progress struct {
	Inbox, File, Claim string
	Size               int64
	Started            time.Time
	read, records      atomic.Int64 // bytes read, records read
	done               atomic.Int64 // records with their outcome
	lastLog            time.Time
}

// counting returns a finish that adds n records done when final, then
// passes final on to finish.
func (p *progress) counting(n int, finish func(final bool)) func(final bool) {
	return func(final bool) {
		if final {
			p.done.Add(int64(n))
		}
		finish(final)
	}
}

// Progress is a snapshot of a file being processed.
type Progress struct {
	Inbox, File, Claim string
	Size, Read         int64 // bytes
	Records, Done      int64 // records read so far, and with their outcome
	Started            time.Time
}

// Rate is records done per second so far.
func (p Progress) Rate(now time.Time) float64 {
	if el := now.Sub(p.Started).Seconds(); el > 0 {
		return float64(p.Done) / el
	}
	return 0
}

// Fraction estimates how far the file is done, from its bytes read and its
// records answered.
func (p Progress) Fraction() float64 {
	if p.Size <= 0 || p.Records == 0 {
		return 0
	}
	return float64(p.Read) / float64(p.Size) * float64(p.Done) / float64(p.Records)
}

// ETA estimates the time left, zero when unknown.
func (p Progress) ETA(now time.Time) time.Duration {
	f := p.Fraction()
	if f <= 0 || f >= 1 {
		return 0
	}
	el := now.Sub(p.Started)
	return time.Duration(float64(el) * (1 - f) / f)
}

type progressTable struct {
	mu    sync.Mutex
	files map[string]*progress
}

func (t *progressTable) start(inbox, file, claim string, size int64, now time.Time) *progress {
	p := &progress{Inbox: inbox, File: file, Claim: claim, Size: size, Started: now, lastLog: now}
	t.mu.Lock()
	if t.files == nil {
		t.files = map[string]*progress{}
	}
	t.files[claim] = p
	t.mu.Unlock()
	return p
}

func (t *progressTable) end(claim string) {
	t.mu.Lock()
	delete(t.files, claim)
	t.mu.Unlock()
}

// Progress returns the files being processed now.
func (s *Service) Progress() []Progress {
	s.progress.mu.Lock()
	defer s.progress.mu.Unlock()
	out := make([]Progress, 0, len(s.progress.files))
	for _, p := range s.progress.files {
		out = append(out, Progress{Inbox: p.Inbox, File: p.File, Claim: p.Claim, Size: p.Size, Read: p.read.Load(),
			Records: p.records.Load(), Done: p.done.Load(), Started: p.Started})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Claim < out[j].Claim })
	return out
}

// logProgress logs, every status.progress_every, how far each long file is.
func (s *Service) logProgress(now time.Time) {
	every := s.cfg.Status.ProgressEvery.Duration
	s.progress.mu.Lock()
	defer s.progress.mu.Unlock()
	for _, p := range s.progress.files {
		if now.Sub(p.lastLog) < every {
			continue
		}
		p.lastLog = now
		snap := Progress{Size: p.Size, Read: p.read.Load(), Records: p.records.Load(), Done: p.done.Load(), Started: p.Started}
		ev := s.log.Info().Str("inbox", p.Inbox).Str("file", p.File).Str("claim", p.Claim).Int64("records_done", snap.Done).
			Int64("records_read", snap.Records).Int("percent", int(100*snap.Fraction())).Float64("records_per_second", float64(int(snap.Rate(now)*10))/10)
		if eta := snap.ETA(now); eta > 0 {
			ev = ev.Dur("eta", eta.Round(time.Second))
		}
		ev.Msg("file in progress")
	}
}

// ready says whether the service can do its work now, for /readyz.
func (s *Service) ready() error {
	var errs []error
	for _, name := range sortedEndpoints(s.endpoints) {
		if st, reason, _ := s.endpoints[name].state(s.opt.Now()); st == "breaker-open" || st == "credentials-refused" {
			errs = append(errs, fmt.Errorf("endpoint %s: %s (%s)", name, st, reason))
		}
	}
	return errors.Join(errs...)
}

// serveStatus starts the status page on [status] listen; stop ends it.
func (s *Service) serveStatus() (stop func(), err error) {
	st := s.cfg.Status
	if st.Listen == "off" {
		return nil, nil
	}
	srv := &status.Server{Config: s.cfg, Journal: s.journal, Metrics: s.Metrics(), Ready: s.ready, Username: st.Username, Now: s.opt.Now}
	if st.Username != "" {
		if srv.Password, err = config.Secret(st.PasswordEnv, st.PasswordFile); err != nil {
			return nil, fmt.Errorf("status page password: %w", err)
		}
	}
	ln, err := net.Listen("tcp", st.Listen)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	s.statusURL = "http://" + ln.Addr().String()
	s.log.Info().Str("url", s.statusURL).Msg("status page")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	}, nil
}

// StatusURL is the status page's address while Serve runs.
func (s *Service) StatusURL() string { return s.statusURL }
