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
type sched struct {
	mu      sync.Mutex
	queues  map[string][]*job // keys with a job running, and their waiting jobs
	blocked map[string]bool   // keys whose jobs are no longer run (see isBlocked)
	ready   chan *job
	slots   chan struct{} // bounds jobs submitted but not finished
	wg      sync.WaitGroup
}

type job struct {
	key  string
	run  func() (final bool) // delivers the message
	done func(final bool)    // reports the fate (final false: not delivered or not run)
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
		j.done(false)
		return
	}
	s.mu.Lock()
	if s.blocked[j.key] {
		s.mu.Unlock()
		<-s.slots
		j.done(false)
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

func (s *sched) worker() {
	defer s.wg.Done()
	for j := range s.ready {
		for j != nil {
			final := j.run()
			j.done(final)
			<-s.slots
			s.mu.Lock()
			if !final {
				s.blocked[j.key] = true
				for _, w := range s.queues[j.key] {
					w.done(false)
					<-s.slots
				}
				delete(s.queues, j.key)
				s.mu.Unlock()
				break
			}
			q := s.queues[j.key]
			if len(q) == 0 {
				delete(s.queues, j.key)
				s.mu.Unlock()
				break
			}
			j, s.queues[j.key] = q[0], q[1:]
			s.mu.Unlock()
		}
	}
}

// blocked reports whether a key's jobs are no longer run in this pass (an
// earlier one of them got no final outcome).
func (s *sched) isBlocked(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[key]
}

// close waits for every submitted job and stops the workers.
func (s *sched) close() {
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

// submit queues run under key on sc.
func (b *batch) submit(ctx context.Context, sc *sched, key string, run func() bool) {
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
