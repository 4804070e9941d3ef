package journal

import (
	"context"
	"os"
	"time"
)

// What `izdrop status` and the status page read: the journal's files and
// records seen per inbox, and what the running service says of itself and
// its endpoints (it writes those; the commands only read).

const statusSchema = `
CREATE TABLE IF NOT EXISTS endpoint_state (
	name       TEXT PRIMARY KEY,
	registry   TEXT NOT NULL,
	state      TEXT NOT NULL,
	reason     TEXT NOT NULL DEFAULT '',
	since      TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS heartbeat (
	host       TEXT NOT NULL,
	pid        INTEGER NOT NULL,
	started_at TEXT NOT NULL,
	beat_at    TEXT NOT NULL,
	PRIMARY KEY (host, pid)
);
CREATE INDEX IF NOT EXISTS files_inbox_updated ON files(inbox, updated_at);
`

// EndpointState is what the service last said of an endpoint.
type EndpointState struct {
	Name, Registry string
	State          string // ok, retrying, breaker-open, half-open, credentials-refused
	Reason         string
	Since          time.Time
	UpdatedAt      time.Time
}

// SetEndpointState records an endpoint's state; Since is kept while the
// state does not change.
func (j *Journal) SetEndpointState(ctx context.Context, s EndpointState) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO endpoint_state(name, registry, state, reason, since, updated_at) VALUES(?,?,?,?,?,?)
			ON CONFLICT(name) DO UPDATE SET registry = excluded.registry, reason = excluded.reason, updated_at = excluded.updated_at,
				since = CASE WHEN endpoint_state.state = excluded.state THEN endpoint_state.since ELSE excluded.since END,
				state = excluded.state`,
			s.Name, s.Registry, s.State, s.Reason, s.Since.UTC().Format(time.RFC3339Nano), now())
		return err
	})
}

// EndpointStates returns every endpoint state recorded.
func (j *Journal) EndpointStates(ctx context.Context) (map[string]EndpointState, error) {
	rows, err := j.query(ctx, `SELECT name, registry, state, reason, since, updated_at FROM endpoint_state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]EndpointState{}
	for rows.Next() {
		var s EndpointState
		var since, upd string
		if err := rows.Scan(&s.Name, &s.Registry, &s.State, &s.Reason, &since, &upd); err != nil {
			return nil, err
		}
		s.Since, s.UpdatedAt = parseTime(since), parseTime(upd)
		out[s.Name] = s
	}
	return out, rows.Err()
}

// Heartbeat is a running izdrop's sign of life.
type Heartbeat struct {
	Host          string
	PID           int
	StartedAt, At time.Time
}

// Beat records that this process (host, pid) is alive.
func (j *Journal) Beat(ctx context.Context, h Heartbeat) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO heartbeat(host, pid, started_at, beat_at) VALUES(?,?,?,?)
			ON CONFLICT(host, pid) DO UPDATE SET beat_at = excluded.beat_at`,
			h.Host, h.PID, h.StartedAt.UTC().Format(time.RFC3339Nano), h.At.UTC().Format(time.RFC3339Nano))
		if err == nil {
			// Old processes' beats are of no use after a day.
			_, err = t.exec(`DELETE FROM heartbeat WHERE beat_at < ?`, h.At.Add(-24*time.Hour).UTC().Format(time.RFC3339Nano))
		}
		return err
	})
}

// Heartbeats returns the processes that beat since t, newest first.
func (j *Journal) Heartbeats(ctx context.Context, since time.Time) ([]Heartbeat, error) {
	rows, err := j.query(ctx, `SELECT host, pid, started_at, beat_at FROM heartbeat WHERE beat_at >= ? ORDER BY beat_at DESC`,
		since.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Heartbeat
	for rows.Next() {
		var h Heartbeat
		var st, at string
		if err := rows.Scan(&h.Host, &h.PID, &st, &at); err != nil {
			return nil, err
		}
		h.StartedAt, h.At = parseTime(st), parseTime(at)
		out = append(out, h)
	}
	return out, rows.Err()
}

// InboxFiles returns an inbox's files not yet archived, and those archived
// since t, newest claim first (at most limit; 0 for all).
func (j *Journal) InboxFiles(ctx context.Context, inbox string, since time.Time, limit int) ([]File, error) {
	q := `SELECT ` + fileCols + ` FROM files WHERE inbox = ? AND (state != ? OR updated_at >= ?) ORDER BY claim DESC`
	args := []any{inbox, Archived, since.UTC().Format(time.RFC3339Nano)}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	return j.files(ctx, q, args...)
}

// OutcomeCounts tallies, per outcome ("" for waiting), the records of an
// inbox's files not yet archived or archived since t.
func (j *Journal) OutcomeCounts(ctx context.Context, inbox string, since time.Time) (map[string]int, error) {
	return j.tally(ctx, `SELECT r.outcome, COUNT(*) FROM records r JOIN files f ON f.id = r.file
		WHERE f.inbox = ? AND (f.state != ? OR f.updated_at >= ?) GROUP BY r.outcome`, inbox, Archived, since.UTC().Format(time.RFC3339Nano))
}

// Problems calls fn with the problems (JSON, as FinishMessage and
// StartMessage keep them) of every record of an inbox's files not yet
// archived or archived since t that has any.
func (j *Journal) Problems(ctx context.Context, inbox string, since time.Time, fn func(outcome, problems string) error) error {
	rows, err := j.query(ctx, `SELECT r.outcome, r.problems FROM records r JOIN files f ON f.id = r.file
		WHERE f.inbox = ? AND (f.state != ? OR f.updated_at >= ?) AND r.problems != ''`, inbox, Archived, since.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var o, p string
		if err := rows.Scan(&o, &p); err != nil {
			return err
		}
		if err := fn(o, p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ArchivedCounts calls fn, for each file of an inbox archived since t, with
// when it was archived and its records' counts by outcome.
func (j *Journal) ArchivedCounts(ctx context.Context, inbox string, since time.Time, fn func(at time.Time, outcome string, n int)) error {
	rows, err := j.query(ctx, `SELECT f.updated_at, r.outcome, COUNT(*) FROM files f JOIN records r ON r.file = f.id
		WHERE f.inbox = ? AND f.state = ? AND f.updated_at >= ? GROUP BY f.id, r.outcome`, inbox, Archived, since.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var at, o string
		var n int
		if err := rows.Scan(&at, &o, &n); err != nil {
			return err
		}
		fn(parseTime(at), o, n)
	}
	return rows.Err()
}

// Size is the journal's size on disk (its write-ahead log included).
func (j *Journal) Size() int64 {
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		if st, err := os.Stat(j.path + suffix); err == nil {
			n += st.Size()
		}
	}
	return n
}

// tally runs a query of (key, count) rows into a map.
func (j *Journal) tally(ctx context.Context, query string, args ...any) (map[string]int, error) {
	rows, err := j.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}
