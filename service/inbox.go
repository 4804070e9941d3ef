package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
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
	ep      *endpoint
	client  *outbound.Client
	tracker *watcher.Tracker
	src     source
	log     zerolog.Logger
	busy    chan struct{} // one pass at a time

	// Messages a pass could not deliver, and the last reason: logged once
	// per pass, not once per message (an outage is one event).
	undelivered atomic.Int64
	lastWhy     atomic.Value // string

	queue      atomic.Int64         // files waiting at the last pass, for the metrics
	cleaned    bool                 // leftovers of interrupted runs removed (first pass)
	openSince  map[string]time.Time // files stable but held open for writing, since when (zero: reported)
	lastRetain time.Time            // when retention last looked for what to purge
}

func newInbox(s *Service, name string, ic *config.Inbox, ep *endpoint) (*inbox, error) {
	topt, err := s.cfg.TransformOptions(name, s.codes)
	if err != nil {
		return nil, err
	}
	topt.Application = "izdrop " + s.opt.Version
	log := s.log.With().Str("inbox", name).Logger()
	if ic.Kind == "local" && !ic.Create {
		// A mistyped path would be watched, empty, forever.
		if st, err := os.Stat(ic.Path); err != nil || !st.IsDir() {
			where := s.cfg.At("inboxes." + name + ".path")
			if err == nil {
				return nil, fmt.Errorf("%s: %s is not a folder", where, ic.Path)
			}
			return nil, fmt.Errorf("%s: the inbox folder %s does not exist: create it (it is where the EHR writes its exports), correct the path, or set create = true", where, ic.Path)
		}
	}
	if ic.Kind == "local" {
		// First, so that folders made on the way let the inbox's group through.
		mode, err := ic.FolderMode()
		if err != nil {
			return nil, fmt.Errorf("inbox %s: %w", name, err)
		}
		notes, err := watcher.CreateInbox(ic.Path, mode, ic.InboxGroup)
		if err != nil {
			return nil, fmt.Errorf("inbox %s: %w", name, err)
		}
		for _, n := range notes {
			log.Warn().Str("path", ic.Path).Msg(n)
		}
	}
	if err := ensureDir(ic.Archive); err != nil {
		return nil, fmt.Errorf("inbox %s: %w", name, err)
	}
	// work/ holds claimed files, patient data, under izdrop's locks: a
	// link could put it anywhere, shared with anyone.
	work := filepath.Join(ic.Archive, "work")
	if ic.Kind == "local" {
		work = filepath.Join(ic.Path, "work")
	}
	if st, err := os.Lstat(work); err == nil && st.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s: %s is a symbolic link: izdrop keeps claimed files in a real folder there; replace the link with a folder", s.cfg.At("inboxes."+name+".path"), work)
	}
	pair := topt.Profile.Pairing()
	var src source = localSource{in: ic, pair: pair}
	if ic.Kind == "sftp" {
		if src, err = newSFTPSource(context.Background(), ic, s.journal, s.cfg.Location(), log); err != nil {
			return nil, fmt.Errorf("inbox %s: %w", name, err)
		}
	}
	return &inbox{
		s: s, name: name, cfg: ic, topt: topt, ep: ep, client: ep.client, src: src,
		tracker: watcher.NewTracker(watcher.Rules{Patterns: ic.Patterns, Marker: ic.Marker, StableFor: ic.StableFor.Duration, TrustModTime: src.trustModTime(), Pair: pair, CaseSensitive: ic.PatternsCaseSensitive}),
		log:     log,
		busy:    make(chan struct{}, 1),
	}, nil
}

// watch runs passes when files arrive (events), on the rescan period, and
// while files wait (for stability, or for the registry), until ctx ends.
func (in *inbox) watch(ctx context.Context) error {
	sig := make(chan struct{}, 1)
	if in.cfg.Kind == "local" {
		go watcher.Notify(ctx, in.cfg.Path, sig, in.log)
		in.log.Info().Str("path", in.cfg.Path).Msg("watching inbox")
	} else {
		in.log.Info().Str("host", in.cfg.Host).Str("path", in.cfg.Path).Dur("every", in.cfg.Rescan.Duration).Msg("polling remote inbox")
	}
	rescan := time.NewTicker(in.cfg.Rescan.Duration)
	defer rescan.Stop()
	var soon <-chan time.Time
	for {
		// Taken before the pass, so a change during it is not missed.
		breakerChanged := in.client.BreakerChanged()
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
			// enough (a little after, so it has). Files waiting only for
			// their marker wait for an event or the rescan.
			soon = time.After(max(time.Until(sum.next)+20*time.Millisecond, 20*time.Millisecond))
		} else if sum.Pending > 0 {
			soon = time.After(5 * time.Second)
			select {
			case <-breakerChanged:
				// The endpoint came back (or its trial passed) while the
				// pass ran: what it left waiting goes now, not in 5 s.
				if st, _ := in.client.Breaker(); st == outbound.Closed {
					soon = time.After(20 * time.Millisecond)
				}
			default:
			}
		} else if sum.otherPass {
			// Another process is in a pass; it takes what arrives
			// meanwhile, and this one is ready to take over.
			soon = time.After(time.Second)
		}
		var resumed <-chan struct{}
		if st, _ := in.client.Breaker(); st != outbound.Closed {
			// The endpoint is down: come back the moment its probe says it
			// answers again, not at the next tick.
			resumed = breakerChanged
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sig:
		case <-rescan.C:
		case <-resumed:
		case <-soon:
		}
	}
}

type passSummary struct {
	Summary
	waiting   int       // files seen but not yet stable or not yet marked
	next      time.Time // when the first of them will be stable, if unchanged
	otherPass bool      // another process was in a pass: nothing was done
}

// pass processes the inbox once: files already in work/ (resumed after a
// stop or waiting for the registry), oldest claim first, then new files as
// they become ready, oldest first. With once, it waits for files still
// being written (a bounded time) instead of leaving them for later.
func (in *inbox) pass(ctx context.Context, once bool) (sum passSummary, err error) {
	select {
	case in.busy <- struct{}{}:
		defer func() { <-in.busy }()
	case <-ctx.Done():
		return passSummary{}, ctx.Err()
	}
	in.undelivered.Store(0)
	defer in.logUndelivered()
	defer func() { in.queue.Store(int64(sum.waiting + sum.Pending)) }()
	if _, refused := in.ep.refused(ctx); refused {
		// Not an outage: every try would be another failed login. Files
		// stay in the inbox (and in work/) until the credentials work.
		sum.Refused = []string{in.ep.name}
		return sum, nil
	}
	if st, _ := in.client.Breaker(); st == outbound.Open && !once {
		// Nothing can be delivered now; files stay where they are.
		sum.Pending = 1
		return sum, nil
	}
	// One pass at a time per inbox across processes too: two passes
	// working on different files at once could send a patient's later
	// record before an earlier one.
	unlock, held, err := in.lockPass(ctx, once)
	if err != nil {
		return sum, err
	}
	if unlock == nil {
		sum.otherPass = true
		return sum, nil
	}
	defer unlock()
	if held != nil {
		// A lock held in the shared journal can be lost with the
		// connection that holds it; another host may then take the inbox
		// over, and this pass must stop as it would on a stop request.
		// Until this process knows, the journal starts no message of the
		// pass (WithLock).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(journal.WithLock(ctx, held))
		defer cancel()
		go func() {
			select {
			case <-held.Lost():
				in.log.Error().Msg("the pass lock in the journal was lost (the connection to the database broke): this pass stops; another host may take the inbox over")
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if !in.cleaned {
		// Under the pass lock: another izdrop on the inbox may be between
		// reserving an archive name and journalling it.
		in.cleaned = true
		in.cleanLeftovers(ctx)
	}
	in.retain(ctx)
	sum.add(in.finishArchiving(ctx))
	sc := newSched(in.client.Endpoint().Concurrency, 4*in.client.Endpoint().Concurrency)
	defer sc.close()
	claimed, err := in.src.claimed(ctx)
	if err != nil {
		return sum, err
	}
	cleanWaitingNotes(in.src.workDir(), claimed)
	for _, c := range claimed {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		s, stalled := in.process(ctx, sc, c)
		sum.add(s)
		if stalled {
			return sum, nil // newer files wait for this one
		}
		if _, refused := in.ep.refused(ctx); refused {
			sum.Refused = []string{in.ep.name}
			sum.Pending += len(claimed) - 1 // the rest wait in work/, untouched
			return sum, nil
		}
	}
	settleUntil := time.Now().Add(3*in.cfg.StableFor.Duration + 10*time.Second)
	for ctx.Err() == nil {
		entries, err := in.src.list(ctx)
		if err != nil {
			return sum, fmt.Errorf("listing %s: %w", in.cfg.Path, err)
		}
		ready, waiting, next := in.tracker.UpdateNext(entries, in.s.opt.Now())
		for _, sk := range in.tracker.Skipped(entries) {
			in.log.Warn().Str("file", sk.Name).Str("reason", sk.Why).Msg("not taken")
		}
		ready, waiting, next = in.notBeingWritten(ready, waiting, next)
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
		if _, refused := in.ep.refused(ctx); refused {
			// Met during this pass: what is not claimed yet stays in the
			// inbox until the credentials work.
			sum.Refused = []string{in.ep.name}
			break
		}
		if st, _ := in.client.Breaker(); st == outbound.Open {
			// The registry is down: new files stay in the inbox, where
			// the person who dropped them can still take them back.
			sum.Pending++
			break
		}
		e := ready[0]
		c, err := in.src.claim(ctx, e.Name, in.s.opt.Now())
		in.tracker.Forget(e.Name)
		if errors.Is(err, watcher.ErrGone) {
			continue // another izdrop took it
		}
		if err != nil {
			return sum, err
		}
		in.log.Info().Str("file", e.Name).Str("claim", c.ID).Int64("size", e.Size).Msg("file claimed")
		s, stalled := in.process(ctx, sc, c)
		sum.add(s)
		if stalled {
			return sum, nil
		}
	}
	if _, refused := in.ep.refused(ctx); refused {
		sum.Refused = []string{in.ep.name}
	}
	return sum, ctx.Err()
}

// notBeingWritten drops from ready the files a process still holds open
// for writing (Linux: a read lease is refused): a writer pausing longer
// than the stability window would otherwise have its export taken half
// written. They wait, and are looked at again after another window.
func (in *inbox) notBeingWritten(ready []watcher.Entry, waiting int, next time.Time) ([]watcher.Entry, int, time.Time) {
	if in.cfg.Kind != "local" {
		return ready, waiting, next
	}
	out := ready[:0]
	now := in.s.opt.Now()
	for _, e := range ready {
		if writing, _ := watcher.BeingWritten(filepath.Join(in.cfg.Path, e.Name)); writing {
			if in.openSince == nil {
				in.openSince = map[string]time.Time{}
			}
			since, seen := in.openSince[e.Name]
			if !seen {
				in.openSince[e.Name] = now
				since = now
			}
			// Nothing hides: a writer that never closes its file is said,
			// once, after it has held it a minute.
			if !since.IsZero() && now.Sub(since) >= max(time.Minute, 10*in.cfg.StableFor.Duration) {
				in.log.Warn().Str("file", e.Name).Dur("open_for", now.Sub(since).Round(time.Second)).
					Msg("not taken: a process still has the file open for writing (it is taken once closed)")
				in.openSince[e.Name] = time.Time{} // said
			}
			waiting++
			if at := in.s.opt.Now().Add(in.cfg.StableFor.Duration); next.IsZero() || at.Before(next) {
				next = at
			}
			in.tracker.Forget(e.Name) // its stability is judged again
			continue
		}
		delete(in.openSince, e.Name)
		out = append(out, e)
	}
	return out, waiting, next
}

// lockPass takes the inbox's pass lock. Without once it does not wait: a
// nil unlock means another process is in a pass. With once it waits for
// the lock until ctx ends. A journal shared by several hosts holds the lock
// (held, which says when it is lost); otherwise it is the inbox's lock
// file, shared by the processes of this machine.
func (in *inbox) lockPass(ctx context.Context, once bool) (unlock func(), held journal.Lock, err error) {
	path := in.src.lockPath()
	locker, shared := in.s.journal.(journal.Locker)
	for logged := false; ; {
		var ok bool
		if shared {
			if held, ok, err = locker.TryLock(ctx, "pass:"+in.name); ok {
				unlock = held.Unlock
			}
		} else {
			unlock, ok, err = watcher.LockPath(path)
		}
		if err != nil || ok || !once {
			return unlock, held, err
		}
		if !logged {
			in.log.Info().Msg("another izdrop process is in a pass of this inbox: waiting for it")
			logged = true
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
	}
}

// shared reports whether the journal is shared by several hosts: each
// keeps its own archive, and a file another host archived is its.
func (in *inbox) shared() bool {
	_, ok := in.s.journal.(journal.Locker)
	return ok
}

// ownArchive reports whether an archive path the journal holds is in this
// host's archive folder for the inbox. With a journal shared by several
// hosts, a file another host began to archive, in its own archive, is
// filed again here if it must be (see process and finishArchiving).
func (in *inbox) ownArchive(path string) bool {
	return path == "" || within(in.cfg.Archive, path)
}

// within reports whether path is dir or under it.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// noteUndelivered counts a message a pass could not deliver.
func (in *inbox) noteUndelivered(why string) {
	in.undelivered.Add(1)
	in.lastWhy.Store(why)
}

func (in *inbox) logUndelivered() {
	n := in.undelivered.Load()
	if n == 0 {
		return
	}
	why, _ := in.lastWhy.Load().(string)
	in.log.Warn().Int64("messages", n).Str("reason", why).Msg("messages not delivered yet: kept, and sent at a later pass with the same MSH-10")
}
