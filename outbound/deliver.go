package outbound

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/izdrop/izdrop/ack"
)

// ErrNotDelivered is wrapped by Deliver when a message could not be
// delivered for now - breaker open, retry budget spent, stop requested. The
// message has no outcome yet: keep it and deliver it later, with the same
// bytes.
var ErrNotDelivered = errors.New("not delivered")

// ErrCredentialsRefused is wrapped, with ErrNotDelivered, while the
// registry refuses the endpoint's credentials (it answered a
// SecurityFault): nothing is sent and no login is tried until the client
// is told the credentials work again (ClearRefused).
var ErrCredentialsRefused = errors.New("the registry refused our credentials")

type refusal struct {
	reason string
	at     time.Time
}

// Refused reports whether the client is stopped by a credentials refusal,
// since when and why.
func (c *Client) Refused() (reason string, at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == nil {
		return "", time.Time{}, false
	}
	return c.refused.reason, c.refused.at, true
}

// Refuse stops the client as if the registry had just refused its
// credentials (a refusal remembered from an earlier run).
func (c *Client) Refuse(reason string, at time.Time) {
	c.mu.Lock()
	c.refused = &refusal{reason, at}
	c.mu.Unlock()
}

// ClearRefused lets the client send again: the credentials were checked
// and accepted, or changed. The first call after it goes alone again.
func (c *Client) ClearRefused() {
	c.mu.Lock()
	c.refused = nil
	c.mu.Unlock()
	c.answered.Store(false)
}

// gateFirst lets one call at a time through until the registry has
// answered a call (answered); release reports whether this call got an
// answer that shows the credentials work.
func (c *Client) gateFirst(ctx context.Context) (release func(answered bool), err error) {
	if c.answered.Load() {
		return func(bool) {}, nil
	}
	select {
	case c.first <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.answered.Load() {
		<-c.first
		return func(bool) {}, nil
	}
	return func(ok bool) {
		if ok {
			c.answered.Store(true)
		}
		<-c.first
	}, nil
}

// Delivery is the final answer to one message.
type Delivery struct {
	ACK      *ack.ACK // the registry's ACK; nil when the answer was a MessageTooLargeFault
	Outcome  ack.Outcome
	Fault    error // the MessageTooLargeFault, when that was the answer
	Attempts int
	Elapsed  time.Duration
	MSH10    string // the message's control id
}

// Errors are the ACK's ERRs about this message: in a batch answer, those
// following the MSAs that name it.
func (d Delivery) Errors() []ack.ERR {
	if d.ACK == nil {
		return nil
	}
	if len(d.ACK.MSAs) <= 1 || d.MSH10 == "" {
		return d.ACK.Errors
	}
	var out []ack.ERR
	for _, m := range d.ACK.MSAs {
		if m.ControlID == "" || m.ControlID == d.MSH10 {
			out = append(out, m.Errors...)
		}
	}
	return out
}

// Raw is the registry's answer as received: the ACK text, or the fault.
func (d Delivery) Raw() string {
	if d.ACK != nil {
		return d.ACK.Raw
	}
	if d.Fault != nil {
		return d.Fault.Error()
	}
	return ""
}

// class is how a failed call is handled.
type class int

const (
	final     class = iota // an answer: never resend
	transient              // retry with backoff
	endpoint               // the endpoint or credentials are wrong: open the breaker
)

func classify(err error) class {
	var tooLarge *MessageTooLargeFault
	var sec *SecurityFault
	var unsup *UnsupportedOperationFault
	var httpErr *HTTPError
	switch {
	case errors.As(err, &tooLarge):
		return final
	case errors.As(err, &sec), errors.As(err, &unsup):
		return endpoint
	case errors.As(err, &httpErr):
		switch {
		case httpErr.Status == http.StatusRequestEntityTooLarge:
			return final
		case httpErr.Status >= 500, httpErr.Status == http.StatusRequestTimeout, httpErr.Status == http.StatusTooManyRequests:
			return transient
		}
		return endpoint
	}
	var te *TransportError
	if errors.As(err, &te) && te.Op == "tls" {
		return endpoint // a certificate problem does not heal by retrying
	}
	return transient
}

// Deliver sends one message until the registry answers, applying the
// delivery policy of the package documentation. msh10 is the message's
// control id, for logs and for checking the ACK's MSA-2. A nil error means
// a final outcome; an error wrapping ErrNotDelivered means none yet.
func (c *Client) Deliver(ctx context.Context, msh10 string, hl7 []byte) (Delivery, error) {
	start := time.Now()
	// The budget bounds waiting (backoff, an open breaker), never a call in
	// progress: a call cut short would leave it unknown whether the
	// registry got the message.
	wait, cancel := context.WithDeadline(ctx, start.Add(c.ep.RetryBudget))
	defer cancel()
	var last error
	answersAtStart := c.answers.Load()
	refusedEach := true // every failed attempt was answered with a processing failure
	notDelivered := func(n int, why error) (Delivery, error) {
		c.count(func(s *Stats) { s.NotDelivered++ })
		if last != nil && !errors.Is(why, last) {
			return Delivery{Attempts: n}, fmt.Errorf("%w after %d attempt(s): %w (last: %w)", ErrNotDelivered, n, why, last)
		}
		return Delivery{Attempts: n}, fmt.Errorf("%w after %d attempt(s): %w", ErrNotDelivered, n, why)
	}
	for attempt := 1; ; attempt++ {
		if attempt > c.ep.MaxAttempts {
			return notDelivered(attempt-1, fmt.Errorf("retry limit of %d attempts reached", c.ep.MaxAttempts))
		}
		// Until the registry has answered once, calls go one at a time:
		// credentials it refuses then cost one failed login, not one per
		// call in flight. Every path below releases the gate.
		release, err := c.gateFirst(wait)
		if err != nil {
			return notDelivered(attempt-1, waitEnded(ctx))
		}
		if reason, _, ok := c.Refused(); ok {
			release(false)
			return notDelivered(attempt-1, fmt.Errorf("%w: %s", ErrCredentialsRefused, reason))
		}
		acq := wait
		if c.ep.FailFast {
			done, cancelNow := context.WithCancel(wait)
			cancelNow()
			acq = done
		}
		trial, err := c.br.acquire(acq)
		if err != nil {
			release(false)
			return notDelivered(attempt-1, err)
		}
		select {
		case c.sem <- struct{}{}:
		case <-wait.Done():
			release(false)
			c.br.abandon(trial)
			return notDelivered(attempt-1, waitEnded(ctx))
		}
		if c.limiter != nil {
			if err := c.limiter.Wait(wait); err != nil {
				<-c.sem
				release(false)
				c.br.abandon(trial)
				return notDelivered(attempt-1, waitEnded(ctx))
			}
		}
		began := time.Now()
		text, err := c.Submit(ctx, hl7)
		<-c.sem
		if c.ep.OnSubmit != nil {
			c.ep.OnSubmit(time.Since(began), err)
		}
		var sec *SecurityFault
		if errors.As(err, &sec) {
			// Before the gate opens: the next call must see the refusal.
			c.Refuse(ack.Redact(err.Error()), time.Now())
		}
		release(err == nil || sec == nil && classify(err) == final)
		if err == nil {
			a, perr := ack.Parse([]byte(text))
			var outcome ack.Outcome
			answers := false
			if perr == nil {
				outcome, answers = a.For(msh10)
			}
			switch {
			case perr != nil:
				err = fmt.Errorf("%w: %w", ErrBadResponse, perr)
			case !answers:
				// An answer to another message (a proxy or registry mix-up)
				// says nothing about this one: it is not recorded as its
				// outcome, and the message is sent again with its MSH-10.
				err = fmt.Errorf("%w: the ACK answers MSH-10 %q, not %q", ErrBadResponse, a.ControlID, msh10)
			default:
				c.br.success(trial)
				c.answers.Add(1)
				if a.ControlID == "" {
					c.log.Warn().Str("msh10", msh10).Msg("the ACK names no control id (MSA-2 empty); taken as this message's answer")
				}
				c.count(func(s *Stats) { s.Delivered++ })
				return Delivery{ACK: a, Outcome: outcome, Attempts: attempt, Elapsed: time.Since(start), MSH10: msh10}, nil
			}
		}
		if ctx.Err() != nil {
			c.br.abandon(trial)
			return notDelivered(attempt, ctx.Err())
		}
		last = err
		switch classify(err) {
		case final:
			c.br.success(trial)
			c.count(func(s *Stats) { s.Faults++; s.Delivered++ })
			c.log.Warn().Str("msh10", msh10).Str("error", ack.Redact(err.Error())).Msg("message refused by the registry: not resent")
			return Delivery{Outcome: ack.Rejected, Fault: err, Attempts: attempt, Elapsed: time.Since(start)}, nil
		case endpoint:
			c.count(func(s *Stats) { s.Faults++ })
			if errors.As(err, &sec) {
				// Not an outage: trying again would only fail more logins
				// (and may lock the account). Stop until told otherwise.
				c.br.abandon(trial)
				reason := ack.Redact(err.Error())
				c.log.Error().Bool("alert", true).Str("error", reason).
					Msg("the registry refused our credentials: nothing more is sent to this endpoint until they are fixed and `izdrop ping -auth` passes")
				return notDelivered(attempt, fmt.Errorf("%w: %s", ErrCredentialsRefused, reason))
			}
			if c.br.endpointFailure(trial, ack.Redact(err.Error())) {
				c.opened(err)
			}
		case transient:
			c.count(func(s *Stats) { s.Transient++ })
			if c.br.transient(trial, ack.Redact(err.Error()), msh10, unreachable(err)) {
				c.opened(err)
			}
			refusedEach = refusedEach && processingFailed(err)
			if attempt >= c.ep.MaxAttempts {
				if refusedEach && c.answered.Load() && c.answersSince(answersAtStart) {
					// The registry answers other messages but answered this
					// one, every time, that it failed to process it: that is
					// its answer. Waiting for it would hold the patient's
					// later records forever. Timeouts, dropped connections,
					// 503s and throttling never end here: the message may
					// have been stored, or the registry may be busy.
					c.count(func(s *Stats) { s.Faults++; s.Delivered++ })
					c.log.Warn().Str("msh10", msh10).Int("attempts", attempt).Str("error", ack.Redact(err.Error())).
						Msg("the registry failed this message on every attempt while answering others: it is recorded as refused")
					return Delivery{Outcome: ack.Rejected, Attempts: attempt, Elapsed: time.Since(start),
						Fault: fmt.Errorf("%w: the registry failed this message on all %d attempts while answering other messages; last: %w", ErrMessageFailed, attempt, err)}, nil
				}
				return notDelivered(attempt, fmt.Errorf("retry limit of %d attempts reached", c.ep.MaxAttempts))
			}
			d := c.backoff(attempt)
			c.log.Debug().Str("msh10", msh10).Int("attempt", attempt).Dur("backoff", d).Str("error", ack.Redact(err.Error())).Msg("delivery attempt failed; will retry")
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-wait.Done():
				t.Stop()
				return notDelivered(attempt, waitEnded(ctx))
			}
		}
	}
}

// ErrMessageFailed is wrapped in the Fault of a message the registry
// failed on every attempt while answering others: a final outcome.
var ErrMessageFailed = errors.New("the registry kept failing this message")

// processingFailed reports an answer in which the registry says it failed
// to process this message - a SOAP fault, or HTTP 500 - rather than that
// it could not be reached, was busy (503, 429) or did not answer in time.
func processingFailed(err error) bool {
	var uf *UnknownFault
	var he *HTTPError
	return errors.As(err, &uf) || errors.As(err, &he) && he.Status == http.StatusInternalServerError
}

// answersSince reports whether another message was answered since the
// count n was taken.
func (c *Client) answersSince(n int64) bool { return c.answers.Load() > n }

// unreachable reports a failure to reach the endpoint at all - DNS, connect
// - which says nothing about the message and all about the endpoint.
func unreachable(err error) bool {
	var te *TransportError
	return errors.As(err, &te) && (te.Op == "connect" || te.Op == "dns")
}

// BreakerChanged returns a channel closed at the breaker's next change of
// state: a caller waiting for an endpoint to come back wakes at once.
func (c *Client) BreakerChanged() <-chan struct{} { return c.br.changes() }

func waitEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("retry budget spent")
}

// backoff is full-jitter exponential: uniform in [0, min(max, base*2^(n-1))].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.ep.BackoffBase << min(attempt-1, 30)
	if d <= 0 || d > c.ep.BackoffMax {
		d = c.ep.BackoffMax
	}
	return time.Duration(c.rnd() * float64(d))
}

func newRand() func() float64 { return rand.Float64 }

// opened logs the breaker opening and starts the probe that will close it.
func (c *Client) opened(cause error) {
	c.count(func(s *Stats) { s.BreakerOpens++ })
	ev := c.log.Error().Str("error", ack.Redact(cause.Error()))
	var sec *SecurityFault
	if errors.As(cause, &sec) {
		ev = ev.Bool("alert", true)
	}
	ev.Msg("circuit breaker open: sending to this endpoint stops until it answers again")
	if c.probing.CompareAndSwap(false, true) {
		c.wg.Add(1)
		go c.probe()
	}
}

// probe waits out the cool-down and tests the endpoint until it answers,
// then lets one trial message through (half-open). It runs until the
// breaker leaves Open or the client closes.
func (c *Client) probe() {
	defer c.wg.Done()
	for {
		state, _, cool := c.br.snapshot()
		if state != Open {
			c.probing.Store(false)
			// A trial may have failed and reopened the breaker between the
			// snapshot and the store; whoever wins the flag probes.
			if s, _, _ := c.br.snapshot(); s == Open && c.ctx.Err() == nil && c.probing.CompareAndSwap(false, true) {
				continue
			}
			return
		}
		t := time.NewTimer(cool)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			c.probing.Store(false)
			return
		}
		err := c.Ping(c.ctx)
		if c.ctx.Err() != nil {
			c.probing.Store(false)
			return
		}
		c.br.probeResult(err == nil)
		if err == nil {
			c.log.Info().Msg("endpoint answers its connectivity test; sending one trial message")
			continue
		}
		c.log.Warn().Str("error", ack.Redact(err.Error())).Msg("endpoint still unreachable")
	}
}

// Breaker returns the breaker's state and, when open, why.
func (c *Client) Breaker() (BreakerState, string) {
	s, r, _ := c.br.snapshot()
	return s, r
}
