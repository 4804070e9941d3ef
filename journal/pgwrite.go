// The PostgreSQL journal's writes, group-committed as the SQLite
// journal's are (writer.go): one goroutine owns one connection and commits
// the writes waiting when it is free in one transaction - one WAL flush,
// one commit's round trip - so that many messages in flight share it.

package journal

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type pgOp struct {
	ctx  context.Context
	fn   func(*pgTx) error
	done chan error
}

type pgWriter struct {
	cfg  *pgx.ConnConfig
	conn *pgx.Conn // nil after a failure: the next batch connects again
	ops  chan *pgOp
	// files and registries cache numbers given out, as writer's do. A
	// file's number is dropped when it is forgotten here; another host
	// forgets only archived files, which no host writes to again.
	files, registries map[string]int64

	mu      sync.RWMutex
	closed  bool
	pending sync.WaitGroup
	exited  chan struct{}
	commits atomic.Int64
}

// pgTx is what an op writes with: the writer's connection, in its
// transaction.
type pgTx struct {
	w   *pgWriter
	ctx context.Context
	op  context.Context // the op's, for its values (WithLock)
}

func newPGWriter(ctx context.Context, cfg *pgx.ConnConfig) (*pgWriter, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w := &pgWriter{cfg: cfg, conn: conn, ops: make(chan *pgOp, maxBatch), exited: make(chan struct{}),
		files: map[string]int64{}, registries: map[string]int64{}}
	go w.loop()
	return w, nil
}

func (w *pgWriter) do(ctx context.Context, fn func(*pgTx) error) error {
	return w.wait(w.submit(ctx, fn))
}

func (w *pgWriter) submit(ctx context.Context, fn func(*pgTx) error) *pgOp {
	o := &pgOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		o.done <- ErrClosed
		return o
	}
	w.pending.Add(1)
	w.mu.RUnlock()
	w.ops <- o
	return o
}

func (w *pgWriter) wait(o *pgOp) error { return <-o.done }

func (w *pgWriter) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.mu.Unlock()
	w.pending.Wait()
	close(w.ops)
	<-w.exited
	if w.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w.conn.Close(ctx)
		cancel()
	}
}

func (w *pgWriter) loop() {
	defer close(w.exited)
	batch := make([]*pgOp, 0, maxBatch)
	for o := range w.ops {
		batch = append(batch[:0], o)
		for yield := 0; yield < 3; yield++ {
			n := len(batch)
			batch = w.drain(batch)
			if len(batch) == maxBatch || yield > 0 && len(batch) == n {
				break
			}
			runtime.Gosched()
		}
		w.commit(batch)
	}
}

func (w *pgWriter) drain(batch []*pgOp) []*pgOp {
	for len(batch) < maxBatch {
		select {
		case o, ok := <-w.ops:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction and answers each op; should one
// op fail, the batch runs again with each op in a savepoint of its own.
// A deadlock or serialization failure with another host's writes runs the
// whole batch again.
func (w *pgWriter) commit(batch []*pgOp) {
	errs := make([]error, len(batch))
	defer func() {
		for i, o := range batch {
			o.done <- errs[i]
			w.pending.Done()
		}
	}()
	savepoints := false
	for try := 0; ; try++ {
		clear(errs)
		retry, err := w.run(batch, errs, savepoints)
		if retry {
			savepoints = true
			continue
		}
		if err != nil && isTransient(err) && try < 5 {
			time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
			continue
		}
		if err != nil {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		return
	}
}

// isTransient reports a failure that running the transaction again cures.
func isTransient(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func (w *pgWriter) run(batch []*pgOp, errs []error, savepoints bool) (retry bool, err error) {
	ctx := context.Background()
	if w.conn == nil || w.conn.IsClosed() {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		w.conn, err = pgx.ConnectConfig(cctx, w.cfg)
		cancel()
		if err != nil {
			w.conn = nil
			return false, err
		}
	}
	abort := func(err error) (bool, error) {
		w.conn.Exec(ctx, "ROLLBACK")
		w.forget()
		if w.conn.IsClosed() || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
			w.conn.Close(ctx)
			w.conn = nil
		}
		return false, err
	}
	if _, err := w.conn.Exec(ctx, "BEGIN"); err != nil {
		return abort(err)
	}
	t := &pgTx{w: w, ctx: ctx}
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		t.op = o.ctx
		if !savepoints {
			if errs[i] = o.fn(t); errs[i] != nil {
				if w.conn.IsClosed() {
					return abort(errs[i])
				}
				if isTransient(errs[i]) {
					return abort(errs[i])
				}
				w.conn.Exec(ctx, "ROLLBACK")
				w.forget()
				return true, nil
			}
			continue
		}
		if _, err := w.conn.Exec(ctx, "SAVEPOINT op"); err != nil {
			return abort(err)
		}
		if errs[i] = o.fn(t); errs[i] != nil {
			w.forget()
			if isTransient(errs[i]) {
				return abort(errs[i])
			}
			if _, err := w.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT op"); err != nil {
				return abort(errs[i])
			}
		}
		if _, err := w.conn.Exec(ctx, "RELEASE SAVEPOINT op"); err != nil {
			return abort(err)
		}
	}
	if _, err := w.conn.Exec(ctx, "COMMIT"); err != nil {
		return abort(err)
	}
	w.commits.Add(1)
	return false, nil
}

func (w *pgWriter) forget() {
	clear(w.files)
	clear(w.registries)
}

func (t *pgTx) exec(q string, args ...any) (pgconn.CommandTag, error) {
	return t.w.conn.Exec(t.ctx, q, args...)
}

// batch sends b's statements in one round trip and calls each with its
// result, in order; the first error stops it.
func (t *pgTx) batch(b *pgx.Batch, each func(i int, tag pgconn.CommandTag) error) error {
	res := t.w.conn.SendBatch(t.ctx, b)
	n := b.Len()
	for i := 0; i < n; i++ {
		tag, err := res.Exec()
		if err == nil {
			err = each(i, tag)
		}
		if err != nil {
			res.Close()
			return err
		}
	}
	return res.Close()
}

func (t *pgTx) scan(q string, args []any, dest ...any) error {
	return t.w.conn.QueryRow(t.ctx, q, args...).Scan(dest...)
}

// fileID returns a claim's number; a claim never added gets a file row of
// its own.
func (t *pgTx) fileID(claim string) (int64, error) {
	if id, ok := t.w.files[claim]; ok {
		return id, nil
	}
	var id int64
	err := t.scan(`SELECT id FROM files WHERE claim = $1`, []any{claim}, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = t.scan(`INSERT INTO files(claim, inbox, name, work_path, state, updated_at) VALUES($1, '', '', '', $2, now())
			ON CONFLICT(claim) DO UPDATE SET claim = excluded.claim RETURNING id`, []any{claim, Claimed}, &id)
	}
	if err != nil {
		return 0, err
	}
	t.w.files[claim] = id
	return id, nil
}

func (t *pgTx) knownFileID(claim string) (id int64, ok bool, err error) {
	if id, ok := t.w.files[claim]; ok {
		return id, true, nil
	}
	err = t.scan(`SELECT id FROM files WHERE claim = $1`, []any{claim}, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	t.w.files[claim] = id
	return id, true, nil
}

func (t *pgTx) registryID(name string) (int64, error) {
	if id, ok := t.w.registries[name]; ok {
		return id, nil
	}
	var id int64
	err := t.scan(`SELECT id FROM registries WHERE name = $1`, []any{name}, &id)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another host may number it at the same moment: either way, one
		// number.
		err = t.scan(`INSERT INTO registries(name) VALUES($1) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id`, []any{name}, &id)
	}
	if err != nil {
		return 0, err
	}
	t.w.registries[name] = id
	return id, nil
}

// AddFile records a claimed file; it does nothing if the claim is known.
func (p *PG) AddFile(ctx context.Context, f File) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`INSERT INTO files(claim, inbox, name, work_path, sha256, size, claimed_at, state, updated_at)
			VALUES($1,$2,$3,$4,$5,$6,$7,$8,now()) ON CONFLICT(claim) DO NOTHING`,
			f.Claim, f.Inbox, f.Name, f.WorkPath, f.SHA256, f.Size, f.ClaimedAt, Claimed)
		return err
	})
}

// SetFile updates a file's state and, when not empty, its result, archive
// path and error.
func (p *PG) SetFile(ctx context.Context, claim, state, result, archivePath, errText string) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`UPDATE files SET state = $1,
			result = CASE WHEN $2 = '' THEN result ELSE $2 END,
			archive_path = CASE WHEN $3 = '' THEN archive_path ELSE $3 END,
			error = CASE WHEN $4 = '' THEN error ELSE $4 END,
			updated_at = now() WHERE claim = $5`, state, result, archivePath, errText, claim)
		return err
	})
}

// SetFileHash records the file's content hash and size.
func (p *PG) SetFileHash(ctx context.Context, claim, sha string, size int64) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`UPDATE files SET sha256 = $1, size = $2, updated_at = now() WHERE claim = $3`, sha, size, claim)
		return err
	})
}

// StartMessage commits a message and its records before anything is sent
// (see Journal.StartMessage).
func (p *PG) StartMessage(ctx context.Context, m Message, recs []Record) error {
	err := p.w.do(ctx, pgStartOp(Start{m, recs}))
	if errors.Is(err, ErrStarted) {
		return nil
	}
	return err
}

// StartMessages is StartMessage for many messages at once, sharing
// commits (see Journal.StartMessages).
func (p *PG) StartMessages(ctx context.Context, starts []Start) []error {
	ops := make([]*pgOp, len(starts))
	for i, s := range starts {
		ops[i] = p.w.submit(ctx, pgStartOp(s))
	}
	errs := make([]error, len(starts))
	for i, o := range ops {
		errs[i] = p.w.wait(o)
	}
	return errs
}

func pgStartOp(s Start) func(*pgTx) error {
	return func(t *pgTx) error {
		m, recs := s.Message, s.Records
		file, err := t.fileID(m.Claim)
		if err != nil {
			return err
		}
		var msh10 *string
		if m.MSH10 != "" {
			msh10 = &m.MSH10
		}
		var msh7 string
		if !m.MSH7.IsZero() && m.State != Done {
			msh7 = m.MSH7.Format(time.RFC3339Nano)
		}
		first, last := -1, -1
		if len(recs) > 0 {
			first, last = recs[0].Line, recs[len(recs)-1].Line
		}
		// Every record in one statement, column by column.
		n := len(recs)
		lines, seqs := make([]int32, n), make([]int32, n)
		sites, pids, vids, actions, hashes, outcomes, own, probs := make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sent := make([]bool, n)
		starts, ends := make([]int64, n), make([]int64, n)
		for i, r := range recs {
			lines[i], seqs[i] = int32(r.Line), int32(m.Seq)
			sites[i], pids[i], vids[i], actions[i], outcomes[i], probs[i] = r.Site, r.PatientID, r.VaccinationID, r.Action, r.Outcome, r.Problems
			if r.Outcome == "" {
				hashes[i] = r.ContentHash
			}
			if r.MSH10 != m.MSH10 {
				own[i] = r.MSH10
			}
			sent[i] = slices.Contains(m.Lines, r.Line)
			starts[i], ends[i] = r.Start, r.End
		}
		var raw []byte
		if m.State != Done {
			raw = m.Raw
		}
		// Fenced by the pass lock, when the work is done under one: the
		// message is started only while the lock is held.
		var pid, classid, objid int64
		lock, fenced := lockOf(t.op).(*pgLock)
		if fenced {
			pid, classid, objid = lock.fence()
		}
		// One statement, one round trip: the message unless it was started
		// before or another message of the file holds a line of its span,
		// and only then its bytes and records (all of it sees the rows as
		// they were before it).
		var wrote int
		err = t.scan(`WITH m AS (
				INSERT INTO messages(file, seq, msh10, msh7, lines, state, outcome, sent_at)
				SELECT $1::bigint, $2::int, $3::text, $4::text, $5::text, $6::text, $7::text, $8::bigint
				WHERE NOT EXISTS (SELECT 1 FROM records WHERE file = $1 AND line BETWEEN $9 AND $10 AND seq != $2)
					AND ($25::int = 0 OR EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = $25 AND granted
						AND classid = $26::bigint::oid AND objid = $27::bigint::oid AND objsubid = 1))
				ON CONFLICT(file, seq) DO NOTHING RETURNING 1),
			o AS (
				INSERT INTO outbox(file, seq, raw) SELECT $1, $2, $11::bytea FROM m WHERE length($11::bytea) > 0
				ON CONFLICT(file, seq) DO UPDATE SET raw = excluded.raw),
			r AS (
				INSERT INTO records(file, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, sent, msh10, problems, start_offset, end_offset)
				SELECT $1::bigint, u.* FROM unnest($12::int[], $13::int[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[],
					$20::bool[], $21::text[], $22::text[], $23::bigint[], $24::bigint[]) u WHERE EXISTS (SELECT 1 FROM m)
				ON CONFLICT(file, line) DO NOTHING)
			SELECT COUNT(*) FROM m`,
			[]any{file, m.Seq, msh10, msh7, encodeLines(m.Lines), m.State, m.Outcome, time.Now().UnixMilli(), first, last, raw,
				lines, seqs, sites, pids, vids, actions, hashes, outcomes, sent, own, probs, starts, ends, pid, classid, objid}, &wrote)
		if err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" && strings.Contains(pe.ConstraintName, "msh10") {
				return ErrDuplicateControlID
			}
			return err
		}
		if wrote == 0 {
			if fenced {
				var held bool
				if err := t.scan(`SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND granted
					AND classid = $2::bigint::oid AND objid = $3::bigint::oid AND objsubid = 1)`, []any{pid, classid, objid}, &held); err != nil {
					return err
				}
				if !held {
					lock.lose()
					return ErrLockLost
				}
			}
			var taken int
			if err := t.scan(`SELECT COUNT(*) FROM records WHERE file = $1 AND line BETWEEN $2 AND $3 AND seq != $4`,
				[]any{file, first, last, m.Seq}, &taken); err != nil {
				return err
			}
			if taken > 0 {
				return ErrLinesTaken
			}
			return ErrStarted
		}
		return nil
	}
}

// FinishMessage commits a message's answer and its records' outcomes (see
// Journal.FinishMessage).
func (p *PG) FinishMessage(ctx context.Context, registry, claim string, seq int, outcome, ackText string, attempts int, outs []Outcome) error {
	ack := pgPackACK(ackText)
	return p.w.do(ctx, func(t *pgTx) error {
		file, ok, err := t.knownFileID(claim)
		if err != nil || !ok {
			return err
		}
		var reg int64
		if registry != "" {
			if reg, err = t.registryID(registry); err != nil {
				return err
			}
		}
		at := time.Now().UnixMilli()
		var accReg int64
		for _, o := range outs {
			if o.Stored {
				if accReg, err = t.registryID(registry); err != nil {
					return err
				}
				break
			}
		}
		// The statements go together, in one round trip.
		b := &pgx.Batch{}
		b.Queue(`UPDATE messages SET state = 'done', outcome = $1, ack = $2, attempts = attempts + $3, done_at = $4, registry = $5,
			last_error = '', msh7 = '' WHERE file = $6 AND seq = $7`, outcome, ack, attempts, at, reg, file, seq)
		b.Queue(`DELETE FROM outbox WHERE file = $1 AND seq = $2`, file, seq)
		// One row per site and vaccination id (the last line's), as ON
		// CONFLICT DO UPDATE takes each key once a statement.
		const accept = `INSERT INTO accepted(registry, site, vaccination_id, content_hash, msh10, file, at)
			SELECT DISTINCT ON (r.site, r.vaccination_id) $1::bigint, r.site, r.vaccination_id, r.content_hash,
				CASE WHEN r.msh10 != '' OR NOT r.sent THEN r.msh10 ELSE COALESCE((SELECT m.msh10 FROM messages m WHERE m.file = r.file AND m.seq = r.seq), '') END,
				r.file, $2::bigint FROM records r `
		const upsert = ` ORDER BY r.site, r.vaccination_id, r.line DESC
			ON CONFLICT(registry, site, vaccination_id) DO UPDATE SET content_hash = excluded.content_hash, msh10 = excluded.msh10,
				file = excluded.file, at = excluded.at`
		check := -1 // the statement whose rows must be one per outcome
		if uniform(outs) {
			if outs[0].Stored {
				b.Queue(accept+`WHERE r.file = $3 AND r.seq = $4 AND r.sent AND r.vaccination_id != ''`+upsert, accReg, at, file, seq)
			}
			check = b.Len()
			b.Queue(`UPDATE records SET outcome = $1, content_hash = '' WHERE file = $2 AND seq = $3 AND sent`, outs[0].Outcome, file, seq)
		} else {
			for _, o := range outs {
				if o.Stored {
					b.Queue(accept+`WHERE r.file = $3 AND r.line = $4 AND r.vaccination_id != ''`+upsert, accReg, at, file, o.Line)
				}
				b.Queue(`UPDATE records SET outcome = $1, content_hash = '', problems = CASE
					WHEN $2 = '' THEN problems WHEN problems = '' THEN $2
					ELSE substr(problems, 1, length(problems) - 1) || ',' || substr($2, 2) END
					WHERE file = $3 AND line = $4`, o.Outcome, o.Problems, file, o.Line)
			}
		}
		return t.batch(b, func(i int, tag pgconn.CommandTag) error {
			if i == check && tag.RowsAffected() != int64(len(outs)) {
				return fmt.Errorf("journal: message %d of %s carries %d records, %d outcomes given", seq, claim, tag.RowsAffected(), len(outs))
			}
			return nil
		})
	})
}

// AddAttempts counts failed tries of a message that is still pending.
func (p *PG) AddAttempts(ctx context.Context, claim string, seq, n int, why string) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`UPDATE messages SET attempts = attempts + $2, last_error = $3 WHERE file = `+pgFileID+` AND seq = $4`, claim, n, why, seq)
		return err
	})
}

// SetRefused records that a registry refused the credentials of the
// endpoint settings with fingerprint.
func (p *PG) SetRefused(ctx context.Context, r Refusal) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`INSERT INTO refusals(registry, fingerprint, reason, at) VALUES($1,$2,$3,$4)
			ON CONFLICT(registry) DO UPDATE SET fingerprint = excluded.fingerprint, reason = excluded.reason, at = excluded.at`,
			r.Registry, r.Fingerprint, r.Reason, r.At)
		return err
	})
}

// ClearRefused forgets a registry's refusal.
func (p *PG) ClearRefused(ctx context.Context, registry string) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`DELETE FROM refusals WHERE registry = $1`, registry)
		return err
	})
}

// AddTestplanRun records a test plan run.
func (p *PG) AddTestplanRun(ctx context.Context, r TestplanRun) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`INSERT INTO testplan_runs(endpoint, registry, environment, site, at, cases, failed) VALUES($1,$2,$3,$4,$5,$6,$7)`,
			r.Endpoint, r.Registry, r.Environment, r.Site, r.At, r.Cases, strings.Join(r.Failed, ","))
		return err
	})
}

// SetEndpointState records an endpoint's state; Since is kept while the
// state does not change.
func (p *PG) SetEndpointState(ctx context.Context, s EndpointState) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`INSERT INTO endpoint_state(name, registry, state, reason, since, updated_at) VALUES($1,$2,$3,$4,$5,now())
			ON CONFLICT(name) DO UPDATE SET registry = excluded.registry, reason = excluded.reason, updated_at = excluded.updated_at,
				since = CASE WHEN endpoint_state.state = excluded.state THEN endpoint_state.since ELSE excluded.since END,
				state = excluded.state`,
			s.Name, s.Registry, s.State, s.Reason, s.Since)
		return err
	})
}

// Beat records that this process (host, pid) is alive.
func (p *PG) Beat(ctx context.Context, h Heartbeat) error {
	return p.w.do(ctx, func(t *pgTx) error {
		_, err := t.exec(`INSERT INTO heartbeat(host, pid, started_at, beat_at) VALUES($1,$2,$3,$4)
			ON CONFLICT(host, pid) DO UPDATE SET beat_at = excluded.beat_at`, h.Host, h.PID, h.StartedAt, h.At)
		if err == nil {
			_, err = t.exec(`DELETE FROM heartbeat WHERE beat_at < $1`, h.At.Add(-24*time.Hour))
		}
		return err
	})
}

// Forget removes an archived file from the journal (see Journal.Forget).
func (p *PG) Forget(ctx context.Context, claim string) (int, error) {
	total := 0
	for {
		var n int64
		done := false
		err := p.w.do(ctx, func(t *pgTx) error {
			var file int64
			var state string
			if err := t.scan(`SELECT id, state FROM files WHERE claim = $1 FOR UPDATE`, []any{claim}, &file, &state); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					done = true
					return nil
				}
				return err
			}
			if state != Archived {
				return ErrNotArchived
			}
			tag, err := t.exec(`DELETE FROM records WHERE file = $1 AND line IN (SELECT line FROM records WHERE file = $1 ORDER BY line LIMIT $2)`, file, forgetChunk)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			tag, err = t.exec(`DELETE FROM messages WHERE file = $1 AND seq IN (SELECT seq FROM messages WHERE file = $1 ORDER BY seq LIMIT $2)`, file, forgetChunk)
			if err != nil || n > 0 || tag.RowsAffected() > 0 {
				return err
			}
			for _, q := range []string{`DELETE FROM outbox WHERE file = $1`, `DELETE FROM files WHERE id = $1`} {
				if _, err := t.exec(q, file); err != nil {
					return err
				}
			}
			delete(t.w.files, claim)
			done = true
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if done {
			return total, nil
		}
	}
}
