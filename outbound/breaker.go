package outbound

import (
	"context"
	"errors"
	"sync"
	"time"
)

// BreakerState is the state of an endpoint's circuit breaker.
type BreakerState int

// The states: closed (calls flow), open (no calls; a probe is scheduled),
// half-open (the probe answered; one trial message may go).
const (
	Closed BreakerState = iota
	Open
	HalfOpen
)

func (s BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// ErrBreakerOpen is wrapped when a message waited for the endpoint's
// breaker to close and the wait ended first.
var ErrBreakerOpen = errors.New("the endpoint's circuit breaker is open")

type breaker struct {
	mu        sync.Mutex
	state     BreakerState
	failures  int
	threshold int
	base, max time.Duration
	cooldown  time.Duration
	reason    string
	trial     bool
	wake      chan struct{} // closed and replaced on every change
	// failing holds the messages in the current run of failures: one
	// message failing again and again is that message's problem, not
	// evidence that the endpoint is down.
	failing map[string]bool
}

func newBreaker(threshold int, base, max time.Duration) *breaker {
	return &breaker{threshold: threshold, base: base, max: max, cooldown: base, wake: make(chan struct{}), failing: map[string]bool{}}
}

func (b *breaker) changed() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// acquire waits until a call may be made. trial is true for the one call
// allowed through a half-open breaker; the caller reports its fate.
func (b *breaker) acquire(ctx context.Context) (trial bool, err error) {
	for {
		if ctx.Err() != nil {
			b.mu.Lock()
			st, reason := b.state, b.reason
			b.mu.Unlock()
			if st == Open || st == HalfOpen && b.trial {
				return false, &openError{reason: reason}
			}
		}
		b.mu.Lock()
		switch {
		case b.state == Closed:
			b.mu.Unlock()
			return false, nil
		case b.state == HalfOpen && !b.trial:
			b.trial = true
			b.mu.Unlock()
			return true, nil
		}
		wake, reason := b.wake, b.reason
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false, &openError{reason: reason}
		}
	}
}

type openError struct{ reason string }

func (e *openError) Error() string { return ErrBreakerOpen.Error() + ": " + e.reason }
func (e *openError) Unwrap() error { return ErrBreakerOpen }

// success: the endpoint answered (an ACK, or a final fault).
func (b *breaker) success(trial bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
	clear(b.failing)
	if trial || b.state == HalfOpen {
		b.trial = false
		b.state, b.cooldown, b.reason = Closed, b.base, ""
		b.changed()
	}
}

// abandon: a trial ended without a result (its caller gave up).
func (b *breaker) abandon(trial bool) {
	if !trial {
		return
	}
	b.mu.Lock()
	b.trial = false
	b.changed()
	b.mu.Unlock()
}

// transient records a failure in transit of message msh10; it reports
// whether the breaker opened because of it. Only endpoint-wide evidence
// counts: consecutive failures of different messages, or a failure to
// connect at all (wide). A message's own retries add nothing.
func (b *breaker) transient(trial bool, reason, msh10 string, wide bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial || b.state == HalfOpen {
		return b.reopen(reason)
	}
	if b.state != Closed {
		return false
	}
	if !wide && b.failing[msh10] {
		return false
	}
	b.failing[msh10] = true
	b.failures++
	if b.failures >= b.threshold {
		b.state, b.reason = Open, reason
		b.changed()
		return true
	}
	return false
}

// endpointFailure records an answer that says the endpoint or credentials
// are wrong: the breaker opens at once.
func (b *breaker) endpointFailure(trial bool, reason string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if trial || b.state == HalfOpen {
		return b.reopen(reason)
	}
	if b.state == Open {
		return false
	}
	b.state, b.reason = Open, reason
	b.changed()
	return true
}

func (b *breaker) reopen(reason string) bool {
	b.trial = false
	b.state, b.reason = Open, reason
	b.cooldown = min(b.cooldown*2, b.max)
	b.changed()
	return true
}

// probeResult: after the cool-down a connectivity test answered (ok) or
// not.
func (b *breaker) probeResult(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Open {
		return
	}
	if ok {
		b.state = HalfOpen
	} else {
		b.cooldown = min(b.cooldown*2, b.max)
	}
	b.changed()
}

// changes returns a channel closed at the breaker's next change of state.
func (b *breaker) changes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wake
}

func (b *breaker) snapshot() (BreakerState, string, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.reason, b.cooldown
}
