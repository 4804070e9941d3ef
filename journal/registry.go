package journal

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Refusal is a registry's refusal of izdrop's credentials (a SecurityFault):
// nothing is sent to it, and no login is tried, until the endpoint's
// settings change (another fingerprint) or a credentials check passes
// (ClearRefused).
type Refusal struct {
	Registry    string
	Fingerprint string // of the endpoint's settings the registry refused
	Reason      string
	At          time.Time
}

// SetRefused records that a registry refused the credentials of the
// endpoint settings with fingerprint.
func (j *Journal) SetRefused(ctx context.Context, r Refusal) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO refusals(registry, fingerprint, reason, at) VALUES(?,?,?,?)
			ON CONFLICT(registry) DO UPDATE SET fingerprint = excluded.fingerprint, reason = excluded.reason, at = excluded.at`,
			r.Registry, r.Fingerprint, r.Reason, r.At.UTC().Format(time.RFC3339Nano))
		return err
	})
}

// Refused returns the refusal recorded for a registry, if any.
func (j *Journal) Refused(ctx context.Context, registry string) (Refusal, bool, error) {
	r := Refusal{Registry: registry}
	var at string
	err := j.queryRow(ctx, `SELECT fingerprint, reason, at FROM refusals WHERE registry = ?`, []any{registry}, &r.Fingerprint, &r.Reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Refusal{}, false, nil
	}
	r.At = parseTime(at)
	return r, err == nil, err
}

// ClearRefused forgets a registry's refusal: its credentials were checked
// and accepted.
func (j *Journal) ClearRefused(ctx context.Context, registry string) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`DELETE FROM refusals WHERE registry = ?`, registry)
		return err
	})
}

// TestplanRun is one `izdrop testplan` run against an endpoint.
type TestplanRun struct {
	Endpoint, Registry, Environment, Site string
	At                                    time.Time
	Cases                                 int      // cases run
	Failed                                []string // names of the cases that did not pass
}

// Passed reports whether every case of the run passed.
func (r TestplanRun) Passed() bool { return r.Cases > 0 && len(r.Failed) == 0 }

// AddTestplanRun records a test plan run.
func (j *Journal) AddTestplanRun(ctx context.Context, r TestplanRun) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO testplan_runs(endpoint, registry, environment, site, at, cases, failed) VALUES(?,?,?,?,?,?,?)`,
			r.Endpoint, r.Registry, r.Environment, r.Site, r.At.UTC().Format(time.RFC3339Nano), r.Cases, strings.Join(r.Failed, ","))
		return err
	})
}

// LastTestplanRun returns the newest run against an environment ("staging",
// ...), and the newest one that passed, if any.
func (j *Journal) LastTestplanRun(ctx context.Context, environment string) (last, passed TestplanRun, okLast, okPassed bool, err error) {
	scan := func(where string) (TestplanRun, bool, error) {
		var r TestplanRun
		var at, failed string
		err := j.db.QueryRowContext(ctx, `SELECT endpoint, registry, environment, site, at, cases, failed FROM testplan_runs
			WHERE environment = ? `+where+` ORDER BY id DESC LIMIT 1`, environment).
			Scan(&r.Endpoint, &r.Registry, &r.Environment, &r.Site, &at, &r.Cases, &failed)
		if errors.Is(err, sql.ErrNoRows) {
			return r, false, nil
		}
		r.At = parseTime(at)
		if failed != "" {
			r.Failed = strings.Split(failed, ",")
		}
		return r, err == nil, err
	}
	if last, okLast, err = scan(""); err != nil {
		return
	}
	passed, okPassed, err = scan("AND cases > 0 AND failed = ''")
	return
}

// LegacyAccepted counts acceptances journalled before they named their
// registry (they stop no send).
func (j *Journal) LegacyAccepted(ctx context.Context) (int, error) {
	var n int
	err := j.queryRow(ctx, `SELECT COUNT(*) FROM accepted WHERE registry = (SELECT id FROM registries WHERE name = '')`, nil, &n)
	return n, err
}
