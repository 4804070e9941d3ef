package service

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

// inbox is one configured inbox at work.
type inbox struct {
	s       *Service
	name    string
	cfg     *config.Inbox
	topt    transform.Options
	client  *outbound.Client
	tracker *watcher.Tracker
	work    string
	log     zerolog.Logger
	busy    chan struct{} // one pass at a time
}

func newInbox(s *Service, name string, ic *config.Inbox, cl *outbound.Client) (*inbox, error) {
	topt, err := s.cfg.TransformOptions(name, s.codes)
	if err != nil {
		return nil, err
	}
	topt.Application = "izdrop " + s.opt.Version
	if ic.Kind != "local" {
		return nil, fmt.Errorf("inbox %s: kind %q is not supported by this build", name, ic.Kind)
	}
	for _, d := range []string{ic.Path, ic.Archive} {
		if err := ensureDir(d); err != nil {
			return nil, fmt.Errorf("inbox %s: %w", name, err)
		}
	}
	return &inbox{
		s: s, name: name, cfg: ic, topt: topt, client: cl,
		tracker: watcher.NewTracker(watcher.Rules{Patterns: ic.Patterns, Marker: ic.Marker, StableFor: ic.StableFor.Duration, TrustModTime: true}),
		work:    filepath.Join(ic.Path, "work"),
		log:     s.log.With().Str("inbox", name).Logger(),
		busy:    make(chan struct{}, 1),
	}, nil
}

// watch runs passes when files arrive (events), on the rescan period, and
// while files wait (for stability, or for the registry), until ctx ends.
func (in *inbox) watch(ctx context.Context) error {
	sig := make(chan struct{}, 1)
	go watcher.Notify(ctx, in.cfg.Path, sig, in.log)
	in.log.Info().Str("path", in.cfg.Path).Msg("watching inbox")
	rescan := time.NewTicker(in.cfg.Rescan.Duration)
	defer rescan.Stop()
	var soon <-chan time.Time
	for {
		sum, err := in.pass(ctx, false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			in.log.Error().Err(err).Msg("pass failed; retrying at the next rescan")
		}
		// Come back soon while something waits: files settling, or
		// messages the registry did not take yet.
		soon = nil
		if !sum.next.IsZero() {
			// Wake when the first waiting file will have been stable long
			// enough (a little after, so it has).
			soon = time.After(max(time.Until(sum.next)+20*time.Millisecond, 20*time.Millisecond))
		} else if sum.waiting > 0 {
			soon = time.After(max(in.cfg.StableFor.Duration/4, 100*time.Millisecond))
		} else if sum.Pending > 0 {
			soon = time.After(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sig:
		case <-rescan.C:
		case <-soon:
		}
	}
}

type passSummary struct {
	Summary
	waiting int       // files seen but not yet stable or not yet marked
	next    time.Time // when the first of them will be stable, if unchanged
}

// pass processes the inbox once: files already in work/ (resumed after a
// stop or waiting for the registry), oldest claim first, then new files as
// they become ready, oldest first. With once, it waits for files still
// being written (a bounded time) instead of leaving them for later.
func (in *inbox) pass(ctx context.Context, once bool) (passSummary, error) {
	select {
	case in.busy <- struct{}{}:
		defer func() { <-in.busy }()
	case <-ctx.Done():
		return passSummary{}, ctx.Err()
	}
	var sum passSummary
	if st, _ := in.client.Breaker(); st == outbound.Open && !once {
		// Nothing can be delivered now; files stay where they are.
		claimed, _ := watcher.WorkFiles(in.cfg.Path, in.work, in.cfg.Marker)
		sum.Pending = len(claimed)
		return sum, nil
	}
	sc := newSched(in.client.Endpoint().Concurrency, 4*in.client.Endpoint().Concurrency)
	defer sc.close()
	claimed, err := watcher.WorkFiles(in.cfg.Path, in.work, in.cfg.Marker)
	if err != nil {
		return sum, err
	}
	for _, c := range claimed {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		sum.add(in.process(ctx, sc, c))
	}
	settleUntil := time.Now().Add(3*in.cfg.StableFor.Duration + 10*time.Second)
	for ctx.Err() == nil {
		entries, err := watcher.ListLocal(in.cfg.Path)
		if err != nil {
			return sum, fmt.Errorf("listing %s: %w", in.cfg.Path, err)
		}
		ready, waiting, next := in.tracker.UpdateNext(entries, in.s.opt.Now())
		sum.waiting, sum.next = waiting, next
		if len(ready) == 0 {
			if once && waiting > 0 && time.Now().Before(settleUntil) {
				t := time.NewTimer(max(in.cfg.StableFor.Duration/4, 50*time.Millisecond))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				continue
			}
			break
		}
		e := ready[0]
		c, err := watcher.ClaimLocal(in.cfg.Path, in.work, e.Name, in.cfg.Marker, in.s.opt.Now())
		in.tracker.Forget(e.Name)
		if errors.Is(err, watcher.ErrGone) {
			continue // another izdrop took it
		}
		if err != nil {
			return sum, err
		}
		in.log.Info().Str("file", e.Name).Str("claim", c.ID).Int64("size", e.Size).Msg("file claimed")
		sum.add(in.process(ctx, sc, c))
	}
	return sum, ctx.Err()
}
