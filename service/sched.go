package service

import (
	"context"
	"sync"
)

// sched runs jobs on a fixed number of workers, keeping the jobs of one key
// (a patient at a site) in submission order and one at a time, while jobs of
// different keys run in parallel on whichever worker is free. When a job of
// a key ends without a final outcome (the registry could not be reached),
// the key is blocked for the rest of the pass: its later jobs are not run,
// so an update or delete never overtakes the dose it refers to; the next
// pass starts with the oldest pending file.
//
// A job ends when it calls its finish, which may be after its run returned,
// from another goroutine: a message's send holds a worker, the commit of
// its answer does not. The worker takes another key's job meanwhile, while
// the key's next job waits for the finish (a crash before the answer is
// durable must not find a later message of the patient sent and an earlier
// one to send again). A worker has at most one such answer committing
// while it sends.
type sched struct {
	mu      sync.Mutex
	queues  map[string][]*job // keys with a job running, and their waiting jobs
	blocked map[string]bool   // keys whose jobs are no longer run (see isBlocked)
	ready   chan *job
	slots   chan struct{}  // bounds jobs submitted but not finished
	live    sync.WaitGroup // jobs submitted but not finished
	wg      sync.WaitGroup // workers
}

type job struct {
	key string
	// run delivers the message and calls finish once, before or after it
	// returns, with whether the message has a final outcome.
	run  func(finish func(final bool))
	done func(final bool) // reports the fate (final false: not delivered or not run)
}

func newSched(workers, depth int) *sched {
	if workers < 1 {
		workers = 1
	}
	s := &sched{queues: map[string][]*job{}, blocked: map[string]bool{}, ready: make(chan *job, depth), slots: make(chan struct{}, depth)}
	for i := 0; i < workers; i++ {
		s.wg.Add(1)
		go s.worker()
	}
	return s
}

// submit queues a job; it blocks while depth jobs are unfinished.
func (s *sched) submit(ctx context.Context, j *job) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		// Not run, so not final: the key's later jobs must not run
		// either (a job that does not look at ctx would otherwise send a
		// later message of the patient before this one).
		s.mu.Lock()
		s.blocked[j.key] = true
		s.mu.Unlock()
		j.done(false)
		return
	}
	s.live.Add(1)
	s.mu.Lock()
	if s.blocked[j.key] {
		s.mu.Unlock()
		s.end(j, false)
		return
	}
	if q, busy := s.queues[j.key]; busy {
		s.queues[j.key] = append(q, j)
		s.mu.Unlock()
		return
	}
	s.queues[j.key] = nil
	s.mu.Unlock()
	s.ready <- j // never blocks: ready holds at most depth jobs
}

// worker runs jobs. A job's answer may still be committing while the
// worker sends the next one, but no more: before it takes a third, the
// first has finished. A crash thus finds at most two messages per worker
// sent and not yet recorded as answered (they are sent again, with their
// first MSH-10 and bytes).
func (s *sched) worker() {
	defer s.wg.Done()
	var prev chan struct{} // closed when the previous job has finished
	for j := range s.ready {
		fin := make(chan struct{})
		var once sync.Once
		j.run(func(final bool) {
			once.Do(func() {
				s.finish(j, final)
				close(fin)
			})
		})
		if prev != nil {
			<-prev
		}
		prev = fin
	}
}

// finish ends a running job and readies its key's next one, or, without a
// final outcome, blocks the key and ends its waiting jobs unrun.
func (s *sched) finish(j *job, final bool) {
	s.mu.Lock()
	q := s.queues[j.key]
	if !final {
		// Blocked before the fate is reported: whoever waits on it (a
		// batch, then the next file's ahead) finds the key blocked.
		s.blocked[j.key] = true
		delete(s.queues, j.key)
		s.mu.Unlock()
		s.end(j, false)
		for _, w := range q {
			s.end(w, false)
		}
		return
	}
	if len(q) == 0 {
		delete(s.queues, j.key)
		s.mu.Unlock()
		s.end(j, true)
		return
	}
	next := q[0]
	s.queues[j.key] = q[1:]
	s.mu.Unlock()
	s.end(j, true)
	s.ready <- next // never blocks, as in submit
}

// end reports a job's fate and frees its slot.
func (s *sched) end(j *job, final bool) {
	j.done(final)
	<-s.slots
	s.live.Done()
}

// blocked reports whether a key's jobs are no longer run in this pass (an
// earlier one of them got no final outcome).
func (s *sched) isBlocked(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[key]
}

// close waits for every submitted job to finish and stops the workers.
func (s *sched) close() {
	s.live.Wait()
	close(s.ready)
	s.wg.Wait()
}

// batch is a set of jobs submitted together (a file's messages) whose
// fates are awaited together.
type batch struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	pending bool // some job ended without a final outcome
}

// submit queues run under key on sc: the job ends when run returns.
func (b *batch) submit(ctx context.Context, sc *sched, key string, run func() bool) {
	b.start(ctx, sc, key, func(finish func(bool)) { finish(run()) })
}

// start queues run under key on sc: the job ends when run calls finish.
func (b *batch) start(ctx context.Context, sc *sched, key string, run func(finish func(final bool))) {
	b.wg.Add(1)
	sc.submit(ctx, &job{key: key, run: run, done: func(final bool) {
		if !final {
			b.mu.Lock()
			b.pending = true
			b.mu.Unlock()
		}
		b.wg.Done()
	}})
}

// wait waits for every job submitted and reports whether any ended
// without a final outcome.
func (b *batch) wait() bool {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}
