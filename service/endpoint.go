// Endpoints: one client per registry endpoint in use, with the registry's
// identity ("already accepted" is per registry) and its credentials state
// (a refusal survives restarts, and is lifted by a passing credentials check
// or a change of the endpoint's settings).

package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
)

// endpoint is a configured registry endpoint at work.
type endpoint struct {
	name        string
	environment string
	registry    string // identity, for "already accepted"
	fingerprint string // of the settings it logs in with
	client      *outbound.Client
	j           journal.Store
	log         zerolog.Logger

	mu            sync.Mutex
	refusalLogged bool
	// persisted: the client's refusal is in the journal, so its absence
	// there means a check lifted it. Until it is, the refusal holds.
	persisted bool
	lastState string // as the monitor last recorded it
}

func newEndpoint(ctx context.Context, name string, e *config.Endpoint, cl *outbound.Client, j journal.Store, log zerolog.Logger) (*endpoint, error) {
	ep := &endpoint{name: name, environment: e.Environment, registry: e.Identity(), fingerprint: e.Fingerprint(), client: cl, j: j,
		log: log.With().Str("endpoint", name).Logger()}
	r, ok, err := j.Refused(ctx, ep.registry)
	if err != nil {
		return nil, err
	}
	switch {
	case ok && r.Fingerprint == ep.fingerprint:
		cl.Refuse(r.Reason, r.At)
		ep.persisted = true
	case ok:
		// The settings it logs in with changed since: try them.
		ep.log.Info().Time("refused_at", r.At).Msg("the endpoint's settings changed since the registry refused our credentials: trying the new ones")
		if err := j.ClearRefused(ctx, ep.registry); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

// refused reports whether the registry refuses our credentials now. A
// refusal lifted meanwhile in the journal (by `izdrop ping -auth` from
// another process) lets the client send again. The refusal is logged once
// per episode, not on every pass.
func (ep *endpoint) refused(ctx context.Context) (string, bool) {
	reason, at, ok := ep.client.Refused()
	if !ok {
		return "", false
	}
	ep.mu.Lock()
	persisted := ep.persisted
	ep.mu.Unlock()
	if !persisted {
		// Met by a send whose journal write has not happened (or failed):
		// the refusal is not lifted because the journal lacks it.
		ep.persist()
		return reason, true
	}
	r, still, err := ep.j.Refused(ctx, ep.registry)
	if err == nil && (!still || r.Fingerprint != ep.fingerprint) {
		ep.client.ClearRefused()
		ep.mu.Lock()
		ep.refusalLogged, ep.persisted = false, false
		ep.mu.Unlock()
		ep.log.Info().Msg("the registry's refusal of our credentials was lifted (a credentials check passed): sending resumes")
		return "", false
	}
	ep.mu.Lock()
	first := !ep.refusalLogged
	ep.refusalLogged = true
	ep.mu.Unlock()
	if first {
		ep.log.Error().Bool("alert", true).Time("since", at).Str("reason", reason).
			Msg("registry refused our credentials: files stay in the inbox until they are fixed and `izdrop ping -auth` passes")
	}
	return reason, true
}

// noteRefusal records a refusal the client just met, so that it holds
// across restarts and other izdrop commands see it.
func (ep *endpoint) noteRefusal(err error) {
	if errors.Is(err, outbound.ErrCredentialsRefused) {
		ep.persist()
	}
}

// persist writes the client's refusal to the journal, once.
func (ep *endpoint) persist() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	reason, at, ok := ep.client.Refused()
	if !ok || ep.persisted {
		return
	}
	if r, known, jerr := ep.j.Refused(context.Background(), ep.registry); jerr == nil && known && r.Fingerprint == ep.fingerprint {
		ep.persisted = true
		return
	}
	if err := ep.j.SetRefused(context.Background(), journal.Refusal{Registry: ep.registry, Fingerprint: ep.fingerprint, Reason: reason, At: at}); err != nil {
		ep.log.Error().Err(err).Msg("journal: the refusal could not be recorded; it holds in this process and is written again at the next pass")
		return
	}
	ep.persisted = true
}

// CredentialsChecked records the result of an explicit credentials check
// against endpoint name (izdrop ping -auth, izdrop testplan): a refusal
// (err wraps a *outbound.SecurityFault or ErrCredentialsRefused) is recorded, so the service stops
// sending; a pass (err nil) lifts any refusal.
func CredentialsChecked(ctx context.Context, j journal.Store, e *config.Endpoint, err error) error {
	var sec *outbound.SecurityFault
	switch {
	case err == nil:
		return j.ClearRefused(ctx, e.Identity())
	case errors.As(err, &sec), errors.Is(err, outbound.ErrCredentialsRefused):
		return j.SetRefused(ctx, journal.Refusal{Registry: e.Identity(), Fingerprint: e.Fingerprint(), Reason: ack.Redact(err.Error()), At: time.Now()})
	}
	return nil
}
