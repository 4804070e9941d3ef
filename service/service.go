package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"

	"github.com/izdrop/izdrop/alert"
	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

// Options are what the service needs besides its configuration.
type Options struct {
	Log     zerolog.Logger
	Version string           // for MSH-3
	Now     func() time.Time // default time.Now
}

// Service is izdrop running: inboxes watched or scheduled, files claimed,
// read, delivered and archived, all journalled.
type Service struct {
	cfg        *config.Config
	loc        *time.Location // cfg.Location(), loaded once: MSH-7 of every message is in it
	opt        Options
	log        zerolog.Logger
	journal    journal.Store
	codes      *codes.Set
	sandbox    *sandbox.Server // nil when none runs here (or another izdrop's is used)
	sandboxURL string
	endpoints  map[string]*endpoint
	inboxes    []*inbox

	metrics     *metrics
	notifier    *alert.Notifier
	progress    progressTable
	host        string
	started     time.Time
	lastBeat    time.Time
	waitAlerted sync.Map // claims of files a waiting alert went out for
	statusURL   string

	// sendCtx outlives a stop request by the shutdown grace, so calls in
	// flight can finish; stopSending ends it.
	sendCtx     context.Context
	stopSending context.CancelFunc
}

// New opens the journal, starts the embedded sandbox if an inbox uses it and
// builds one client per endpoint in use. Close releases them.
func New(cfg *config.Config, opt Options) (*Service, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Service{cfg: cfg, loc: cfg.Location(), opt: opt, log: opt.Log, endpoints: map[string]*endpoint{}, metrics: newMetrics(), started: opt.Now()}
	s.host, _ = os.Hostname()
	hdr := ""
	if cfg.Alerts.WebhookHeaderEnv != "" {
		hdr = os.Getenv(cfg.Alerts.WebhookHeaderEnv)
	}
	s.notifier = alert.New(alert.Options{Command: cfg.Alerts.Command, Webhook: cfg.Alerts.Webhook, Header: hdr, Log: opt.Log.With().Str("component", "alert").Logger()})
	s.sendCtx, s.stopSending = context.WithCancel(context.Background())
	var err error
	if s.codes, err = codes.Load(filepath.Join(cfg.Service.DataDir, "codes")); err != nil {
		return nil, err
	}
	j, err := OpenJournal(cfg)
	if err != nil {
		return nil, err
	}
	s.journal = j
	fail := func(err error) (*Service, error) { s.Close(); return nil, err }
	for _, name := range cfg.InboxNames() {
		in := cfg.Inboxes[name]
		if Embedded(cfg, in.Endpoint) && s.sandboxURL == "" {
			if s.sandbox, s.sandboxURL, err = EmbeddedSandbox(cfg, s.log); err != nil {
				return fail(fmt.Errorf("embedded sandbox: %w", err))
			}
			if s.sandbox != nil {
				s.log.Info().Str("url", s.sandboxURL).Msg("embedded sandbox registry started: its page shows what it received")
			}
		}
	}
	if n, err := s.journal.LegacyAccepted(context.Background()); err == nil && n > 0 {
		s.log.Warn().Int("records", n).Msg("the journal holds acceptances from before izdrop named the registry that accepted them: " +
			"those records are sent again if dropped again (a registry treats a resent dose with the same vaccination id as an update)")
	}
	for _, name := range cfg.InboxNames() {
		ic := cfg.Inboxes[name]
		ep, ok := s.endpoints[ic.Endpoint]
		if !ok {
			oep, err := OutboundEndpoint(cfg, ic.Endpoint, s.sandboxURL)
			if err != nil {
				return fail(err)
			}
			oep.FailFast = true
			oep.OnSubmit = s.metrics.onSubmit(ic.Endpoint)
			cl, err := outbound.New(oep, s.log)
			if err != nil {
				return fail(err)
			}
			if ep, err = newEndpoint(context.Background(), ic.Endpoint, cfg.Endpoints[ic.Endpoint], cl, s.journal, s.log); err != nil {
				cl.Close()
				return fail(err)
			}
			s.endpoints[ic.Endpoint] = ep
		}
		in, err := newInbox(s, name, ic, ep)
		if err != nil {
			return fail(err)
		}
		s.inboxes = append(s.inboxes, in)
	}
	s.registerGauges()
	return s, nil
}

// Sandbox is the embedded sandbox, when one runs.
func (s *Service) Sandbox() *sandbox.Server { return s.sandbox }

// Journal is the service's journal.
func (s *Service) Journal() journal.Store { return s.journal }

// Close stops the clients and the sandbox and closes the journal.
func (s *Service) Close() {
	s.stopSending()
	for _, in := range s.inboxes {
		in.src.close()
	}
	for _, ep := range s.endpoints {
		ep.client.Close()
	}
	if s.sandbox != nil {
		s.sandbox.Close()
	}
	if s.notifier != nil {
		s.notifier.Close()
	}
	if s.journal != nil {
		s.journal.Close()
	}
}

// Summary is what a run did.
type Summary struct {
	Done, Failed, Pending int // files
	Records               map[string]int
	// Refused names the endpoints whose registry refused our credentials:
	// their inboxes' files were left where they are.
	Refused []string
	// ByInbox is the same, per inbox (RunOnce only).
	ByInbox map[string]Summary
}

func (a *Summary) add(b Summary) {
	a.Done += b.Done
	a.Failed += b.Failed
	a.Pending += b.Pending
	for _, r := range b.Refused {
		if !slices.Contains(a.Refused, r) {
			a.Refused = append(a.Refused, r)
		}
	}
	for k, v := range b.Records {
		if a.Records == nil {
			a.Records = map[string]int{}
		}
		a.Records[k] += v
	}
}

// RunOnce processes what is in the inboxes now - files already claimed,
// then new ones, waiting for files still being written to settle - and
// returns. Files whose messages could not be delivered stay in work/ and
// are counted as pending.
func (s *Service) RunOnce(ctx context.Context) (Summary, error) {
	var mu sync.Mutex
	var total Summary
	defer s.graceOnStop(ctx)()
	mctx, stopMonitor := context.WithCancel(context.Background())
	monitored := make(chan struct{})
	go func() { defer close(monitored); s.monitor(mctx, 2*time.Second) }()
	defer func() { stopMonitor(); <-monitored; s.check(context.Background()) }()
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range s.inboxes {
		g.Go(func() error {
			sum, err := in.pass(gctx, true)
			mu.Lock()
			total.add(sum.Summary)
			if total.ByInbox == nil {
				total.ByInbox = map[string]Summary{}
			}
			total.ByInbox[in.name] = sum.Summary
			mu.Unlock()
			return err
		})
	}
	err := g.Wait()
	return total, err
}

// Serve runs until ctx ends: each inbox is watched (file events plus a
// periodic rescan) or, when it has a schedule, processed on it. On stop,
// no new file or message is started; calls in flight get the shutdown
// grace to finish, and whatever is unfinished resumes at the next start.
func (s *Service) Serve(ctx context.Context) error {
	defer s.graceOnStop(ctx)()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { s.monitor(gctx, 2*time.Second); return nil })
	if stop, err := s.serveStatus(); err != nil {
		// The page is for people; the records go on without it.
		s.log.Error().Err(err).Str("listen", s.cfg.Status.Listen).Msg("the status page could not start")
	} else if stop != nil {
		defer stop()
	}
	var crons []*cron.Cron
	for _, in := range s.inboxes {
		if in.cfg.Schedule != "" {
			c := cron.New(cron.WithParser(config.CronParser), cron.WithLocation(s.cfg.Location()),
				cron.WithChain(cron.SkipIfStillRunning(cronLogger{in.log})))
			if _, err := c.AddFunc(in.cfg.Schedule, func() {
				if _, err := in.pass(gctx, true); err != nil && gctx.Err() == nil {
					in.log.Error().Err(err).Msg("scheduled run failed")
				}
			}); err != nil {
				return err
			}
			c.Start()
			crons = append(crons, c)
			in.log.Info().Str("schedule", in.cfg.Schedule).Msg("inbox runs on a schedule")
			continue
		}
		g.Go(func() error { return in.watch(gctx) })
	}
	<-gctx.Done()
	for _, c := range crons {
		<-c.Stop().Done() // a scheduled run in progress is finished (or left for resume)
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// graceOnStop arranges that, once ctx ends, calls in flight get the
// shutdown grace to finish before they are cut. The returned func releases
// the arrangement.
func (s *Service) graceOnStop(ctx context.Context) func() {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			t := time.NewTimer(s.cfg.Service.ShutdownGrace.Duration)
			defer t.Stop()
			select {
			case <-t.C:
				s.log.Warn().Msg("shutdown grace over: cutting calls in flight (their messages resume at the next start)")
				s.stopSending()
			case <-done:
			}
		case <-done:
		}
	}()
	return func() { close(done) }
}

type cronLogger struct{ log zerolog.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.log.Warn().Msg("the previous scheduled run is still going: this one is skipped")
	}
}

func (l cronLogger) Error(err error, msg string, kv ...any) { l.log.Error().Err(err).Msg(msg) }

// ensureDir creates an inbox or archive folder, private to the service's
// user unless it exists already.
func ensureDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	return os.MkdirAll(dir, 0o700)
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
