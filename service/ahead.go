// Journalling ahead: a file read for the first time has its messages
// journalled as they are read, many to a commit, before they reach the
// scheduler, so that a worker's way to the registry holds nothing but the
// send itself and the commit of its answer. Each message is still durable
// before it is sent: a job is submitted only once its start is committed.

package service

import (
	"context"
	"errors"
	"hash/maphash"
	"sync/atomic"

	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/transform"
)

// ahead journals a file's messages as the reader hands them over and
// submits each to the scheduler once it is journalled. A message that
// cannot be started ahead - one holding a vaccination id an earlier
// message of the file holds too, whose "already accepted" check must wait
// for that one's answer, or one whose start failed for a reason deliver
// knows how to handle - is submitted to deliver instead, in its turn.
type ahead struct {
	in      *inbox
	ctx     context.Context
	sc      *sched
	b       *batch
	f       journal.File
	differs *atomic.Bool
	seen    *bloom

	queue chan aheadItem
	done  chan struct{}
}

type aheadItem struct {
	prog *progress
	key  string
	m    *transform.Message
	p    *started // nil: leave the message to deliver
}

// maxAhead bounds the messages read but not yet submitted.
const maxAhead = 64

func (in *inbox) startAhead(ctx context.Context, sc *sched, b *batch, f journal.File, differs *atomic.Bool) *ahead {
	a := &ahead{in: in, ctx: ctx, sc: sc, b: b, f: f, differs: differs, seen: newBloom(f.Size),
		queue: make(chan aheadItem, maxAhead), done: make(chan struct{})}
	go a.run()
	return a
}

// add prepares a message (the reader's goroutine does the checks and the
// encoding) and queues it for the next commit.
func (a *ahead) add(key string, m *transform.Message, prog *progress) {
	it := aheadItem{key: key, m: m, prog: prog}
	// A patient blocked in this pass (an earlier message of theirs, in an
	// earlier file, has no answer yet) must not have a message journalled
	// now: what the registry holds is only known once that one is
	// answered. It takes the slow way, where the scheduler holds it back.
	repeat := a.sc.isBlocked(key)
	for _, r := range m.Records {
		if r.VaccinationID != "" && a.seen.add(m.SiteID, r.VaccinationID) {
			repeat = true
		}
	}
	if !repeat {
		if p, ok := a.in.prepare(a.ctx, a.f, m); ok {
			it.p = p
		}
	}
	a.queue <- it
}

// close waits until every message added is submitted.
func (a *ahead) close() {
	close(a.queue)
	<-a.done
}

func (a *ahead) run() {
	defer close(a.done)
	j := a.in.s.journal
	items := make([]aheadItem, 0, maxAhead)
	starts := make([]journal.Start, 0, maxAhead)
	for it := range a.queue {
		items = append(items[:0], it)
	more:
		for len(items) < maxAhead {
			select {
			case it, ok := <-a.queue:
				if !ok {
					break more
				}
				items = append(items, it)
			default:
				break more
			}
		}
		if a.ctx.Err() != nil || a.differs.Load() {
			continue // nothing more is started; what was is resumed later
		}
		starts = starts[:0]
		for _, it := range items {
			if it.p != nil {
				starts = append(starts, journal.Start{Message: it.p.msg, Records: it.p.recs})
			}
		}
		var errs []error
		if len(starts) > 0 {
			errs = j.StartMessages(a.ctx, starts)
		}
		k := 0
		for _, it := range items {
			if it.p == nil {
				a.deliver(it)
				continue
			}
			err := errs[k]
			k++
			switch {
			case errors.Is(err, journal.ErrLinesTaken):
				a.differs.Store(true)
				a.in.log.Error().Str("file", a.f.Name).Int("message", it.m.Seq).Int("line", it.m.Records[0].Line).
					Msg("the file reads differently than when it was first read: nothing more of it is sent")
			case a.differs.Load():
				// Nothing more of the file is sent now; what was journalled
				// is finished from the journal when the file is taken up again.
			case err == nil:
				a.send(it)
			case a.ctx.Err() != nil:
				// Stopping: the message was not recorded, and is read again
				// at the next start.
			case errors.Is(err, journal.ErrStarted), errors.Is(err, journal.ErrDuplicateControlID):
				a.deliver(it) // follows the journal, or tries other MSH-10s
			case errors.Is(err, journal.ErrLockLost):
				// The pass stops (its context ends); nothing more is started.
				a.b.submit(a.ctx, a.sc, it.key, func() bool { return false })
			default:
				a.in.log.Error().Err(err).Msg("journal: the message could not be recorded; not sent")
				a.b.submit(a.ctx, a.sc, it.key, func() bool { return false })
			}
		}
	}
}

// send submits a message journalled ahead: the job only sends it.
func (a *ahead) send(it aheadItem) {
	if it.p.msg.State == journal.Done {
		it.prog.done.Add(int64(len(it.m.Records)))
		return // nothing to send: every record invalid or already accepted
	}
	row, recs := it.p.msg, it.m.Records
	a.b.start(a.ctx, a.sc, it.key, func(finish func(bool)) {
		if a.ctx.Err() != nil {
			finish(false)
			return
		}
		a.in.send(a.ctx, a.f, row, recs, it.prog.counting(len(recs), finish))
	})
}

// deliver submits a message to be started in its turn.
func (a *ahead) deliver(it aheadItem) {
	a.b.start(a.ctx, a.sc, it.key, func(finish func(bool)) {
		a.in.deliver(a.ctx, a.f, it.m, a.differs, it.prog.counting(len(it.m.Records), finish))
	})
}

// bloom remembers the site and vaccination ids of a file's records read so
// far in a fixed space: add reports true for an id seen before, and
// sometimes for one not (that message then takes the slower way, never a
// wrong one).
type bloom struct {
	bits []uint64
	seed maphash.Seed
}

// newBloom sizes the filter for a file of size bytes: about 10 bits per
// record of 120 bytes or more, between 8 KiB and 1 MiB (a million records;
// beyond, more messages take the slower way).
func newBloom(size int64) *bloom {
	n := min(max(size/96, 8<<10), 1<<20) / 8
	return &bloom{bits: make([]uint64, n), seed: maphash.MakeSeed()}
}

func (b *bloom) add(site, id string) bool {
	var h maphash.Hash
	h.SetSeed(b.seed)
	h.WriteString(site)
	h.WriteByte(0)
	h.WriteString(id)
	x := h.Sum64()
	m := uint64(len(b.bits)) * 64
	seen := true
	for i := uint64(0); i < 4; i++ {
		bit := (x + i*(x>>32|1)) % m
		w, mask := bit/64, uint64(1)<<(bit%64)
		if b.bits[w]&mask == 0 {
			seen = false
			b.bits[w] |= mask
		}
	}
	return seen
}
