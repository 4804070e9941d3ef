// Moving from one host to several: a SQLite journal copied into an empty
// PostgreSQL journal.

package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Copied counts the rows CopyToPostgres copied, per table.
type Copied struct {
	Files, Messages, Records, Accepted, Registries, Other int
}

// ErrNotEmpty is returned by CopyToPostgres for a PostgreSQL journal that
// holds files or acceptances already.
var ErrNotEmpty = errors.New("journal: the PostgreSQL journal is not empty")

// CopyToPostgres copies everything a SQLite journal holds - files,
// messages (with the bytes of those not yet answered), records, what each
// registry holds, refusals, test plan runs, endpoint states - into an
// empty PostgreSQL journal, in one transaction: all of it or nothing.
// Heartbeats, which describe the processes of the old installation, are
// not copied. Stop every izdrop that writes to either journal first: what
// is written to the SQLite journal during the copy is not in it.
func CopyToPostgres(ctx context.Context, src *Journal, dst *PG) (Copied, error) {
	var n Copied
	// One read transaction: a snapshot of the SQLite journal.
	stx, err := src.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return n, err
	}
	defer stx.Rollback()
	tx, err := dst.pool.Begin(ctx)
	if err != nil {
		return n, err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgSetUpLock)); err != nil {
		return n, err
	}
	var used bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM files) OR EXISTS (SELECT 1 FROM accepted) OR EXISTS (SELECT 1 FROM registries)`).Scan(&used); err != nil {
		return n, err
	}
	if used {
		return n, ErrNotEmpty
	}
	parse := func(s string) *time.Time {
		if s == "" {
			return nil
		}
		t := parseTime(s)
		return &t
	}
	orEpoch := func(s string) time.Time {
		if t := parse(s); t != nil {
			return *t
		}
		return time.Unix(0, 0).UTC()
	}
	tables := []struct {
		name  string
		cols  []string
		query string
		count *int
		// row scans the SQLite row and returns the PostgreSQL one.
		row func(sc func(...any) error) ([]any, error)
	}{
		{"registries", []string{"id", "name"}, `SELECT id, name FROM registries`, &n.Registries,
			func(sc func(...any) error) ([]any, error) {
				var id int64
				var name string
				err := sc(&id, &name)
				return []any{id, name}, err
			}},
		{"files", []string{"id", "claim", "inbox", "name", "work_path", "sha256", "size", "claimed_at", "state", "result", "archive_path", "error", "updated_at"},
			`SELECT id, claim, inbox, name, work_path, sha256, size, claimed_at, state, result, archive_path, error, updated_at FROM files`, &n.Files,
			func(sc func(...any) error) ([]any, error) {
				var id, size int64
				var claim, inbox, name, work, sha, claimed, state, result, archivePath, errText, updated string
				err := sc(&id, &claim, &inbox, &name, &work, &sha, &size, &claimed, &state, &result, &archivePath, &errText, &updated)
				return []any{id, claim, inbox, name, work, sha, size, parse(claimed), state, result, archivePath, errText, orEpoch(updated)}, err
			}},
		{"messages", []string{"file", "seq", "msh10", "msh7", "lines", "state", "outcome", "attempts", "ack", "sent_at", "done_at", "registry", "last_error"},
			`SELECT file, seq, msh10, msh7, lines, state, outcome, attempts, ack, sent_at, done_at, registry, last_error FROM messages`, &n.Messages,
			func(sc func(...any) error) ([]any, error) {
				var file, sentAt, doneAt, reg int64
				var seq, attempts int32
				var msh10 sql.NullString
				var msh7, lines, state, outcome, lastErr string
				var ack any
				err := sc(&file, &seq, &msh10, &msh7, &lines, &state, &outcome, &attempts, &ack, &sentAt, &doneAt, &reg, &lastErr)
				var m *string
				if msh10.Valid {
					m = &msh10.String
				}
				return []any{file, seq, m, msh7, lines, state, outcome, attempts, pgPackACK(unpackACK(ack)), sentAt, doneAt, reg, lastErr}, err
			}},
		{"outbox", []string{"file", "seq", "raw"}, `SELECT file, seq, raw FROM outbox`, &n.Other,
			func(sc func(...any) error) ([]any, error) {
				var file int64
				var seq int32
				var raw []byte
				err := sc(&file, &seq, &raw)
				return []any{file, seq, raw}, err
			}},
		{"records", []string{"file", "line", "seq", "site", "patient_id", "vaccination_id", "action", "content_hash", "outcome", "sent", "msh10", "problems", "start_offset", "end_offset"},
			`SELECT file, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, sent, msh10, problems, start_offset, end_offset FROM records`, &n.Records,
			func(sc func(...any) error) ([]any, error) {
				var file, start, end int64
				var line, seq int32
				var site, pid, vid, action, outcome, msh10, problems string
				var hash any
				var sent bool
				err := sc(&file, &line, &seq, &site, &pid, &vid, &action, &hash, &outcome, &sent, &msh10, &problems, &start, &end)
				return []any{file, line, seq, site, pid, vid, action, unpackHash(hash), outcome, sent, msh10, problems, start, end}, err
			}},
		{"accepted", []string{"registry", "site", "vaccination_id", "content_hash", "msh10", "file", "at"},
			`SELECT registry, site, vaccination_id, content_hash, msh10, file, at FROM accepted`, &n.Accepted,
			func(sc func(...any) error) ([]any, error) {
				var reg, file, at int64
				var site, vid, msh10 string
				var hash any
				err := sc(&reg, &site, &vid, &hash, &msh10, &file, &at)
				return []any{reg, site, vid, unpackHash(hash), msh10, file, at}, err
			}},
		{"refusals", []string{"registry", "fingerprint", "reason", "at"}, `SELECT registry, fingerprint, reason, at FROM refusals`, &n.Other,
			func(sc func(...any) error) ([]any, error) {
				var reg, fp, reason, at string
				err := sc(&reg, &fp, &reason, &at)
				return []any{reg, fp, reason, orEpoch(at)}, err
			}},
		{"testplan_runs", []string{"id", "endpoint", "registry", "environment", "site", "at", "cases", "failed"},
			`SELECT id, endpoint, registry, environment, site, at, cases, failed FROM testplan_runs`, &n.Other,
			func(sc func(...any) error) ([]any, error) {
				var id int64
				var cases int32
				var ep, reg, env, site, at, failed string
				err := sc(&id, &ep, &reg, &env, &site, &at, &cases, &failed)
				return []any{id, ep, reg, env, site, orEpoch(at), cases, failed}, err
			}},
		{"endpoint_state", []string{"name", "registry", "state", "reason", "since", "updated_at"},
			`SELECT name, registry, state, reason, since, updated_at FROM endpoint_state`, &n.Other,
			func(sc func(...any) error) ([]any, error) {
				var name, reg, state, reason, since, updated string
				err := sc(&name, &reg, &state, &reason, &since, &updated)
				return []any{name, reg, state, reason, orEpoch(since), orEpoch(updated)}, err
			}},
	}
	for _, tb := range tables {
		rows, err := stx.QueryContext(ctx, tb.query)
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", tb.name, err)
		}
		copied, err := tx.CopyFrom(ctx, pgx.Identifier{tb.name}, tb.cols, pgx.CopyFromFunc(func() ([]any, error) {
			if !rows.Next() {
				return nil, rows.Err()
			}
			return tb.row(rows.Scan)
		}))
		rows.Close()
		if err != nil {
			return n, fmt.Errorf("copying %s: %w", tb.name, err)
		}
		*tb.count += int(copied)
	}
	// Numbers given from now on follow those copied.
	for _, t := range []string{"files", "registries", "testplan_runs"} {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), COALESCE((SELECT MAX(id) FROM %[1]s), 0) + 1, false)`, t)); err != nil {
			return n, err
		}
	}
	return n, tx.Commit(ctx)
}
