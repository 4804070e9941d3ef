// Group commit: every write of the journal goes through one goroutine that
// owns one connection and commits all the writes waiting when it is free in
// one transaction, with one fsync. A caller still returns only once its
// write is durable; what changes is that sixteen workers finishing their
// messages at once pay for one fsync, not sixteen in a row under the write
// lock.

package journal

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned for a write after Close.
var ErrClosed = errors.New("journal: closed")

// maxBatch bounds the writes of one transaction, so that one commit does
// not keep the callers of the first waiting for long.
const maxBatch = 512

// op is one caller's write: fn runs in the batch's transaction; if it
// fails, its changes are undone and the others' kept (see commit).
type op struct {
	ctx  context.Context
	fn   func(*wtx) error
	done chan error
}

// writer applies ops in batches.
type writer struct {
	db    *sql.DB
	conn  *sql.Conn
	stmts map[string]*sql.Stmt // prepared on conn, by query
	ops   chan *op
	// files and registries cache the numbers of claims and registries: a
	// file keeps its number until it is forgotten, a registry for ever.
	files, registries map[string]int64

	mu      sync.RWMutex
	closed  bool
	pending sync.WaitGroup // ops submitted and not yet answered
	exited  chan struct{}
	commits atomic.Int64
}

// wtx is what an op's fn writes with: prepared statements on the writer's
// connection, in its transaction.
type wtx struct{ w *writer }

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := writerConn(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	w := &writer{db: db, conn: conn, stmts: map[string]*sql.Stmt{}, ops: make(chan *op, maxBatch), exited: make(chan struct{}),
		files: map[string]int64{}, registries: map[string]int64{}}
	go w.loop()
	return w, nil
}

// do runs fn in a write transaction and returns once that is committed (or
// has failed). A ctx that ends before fn runs stops it; once it runs, it is
// committed with its batch.
func (w *writer) do(ctx context.Context, fn func(*wtx) error) error {
	return w.wait(w.submit(ctx, fn))
}

// submit queues fn; wait waits for its outcome. Submitting several before
// waiting lets them share a commit.
func (w *writer) submit(ctx context.Context, fn func(*wtx) error) *op {
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
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

func (w *writer) wait(o *op) error { return <-o.done }

// close answers what was submitted, then stops the writer.
func (w *writer) close() {
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
	for _, s := range w.stmts {
		s.Close()
	}
	w.conn.Close()
}

func (w *writer) loop() {
	defer close(w.exited)
	batch := make([]*op, 0, maxBatch)
	for o := range w.ops {
		batch = append(batch[:0], o)
		// Goroutines that are ready to run - workers whose answer just came
		// - get a turn before the batch closes, so that their writes share
		// its commit rather than wait for the next.
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

// drain adds the ops waiting to the batch.
func (w *writer) drain(batch []*op) []*op {
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

// commit runs a batch in one transaction and answers each op. The ops run
// one after the other; should one fail, the transaction is rolled back and
// the batch run again with each op in a savepoint of its own, so that only
// the failed one's changes are undone. (Failures are rare - a message
// started already, an MSH-10 taken - and savepoints cost two statements
// an op.)
func (w *writer) commit(batch []*op) {
	errs := make([]error, len(batch))
	defer func() {
		for i, o := range batch {
			o.done <- errs[i]
			w.pending.Done()
		}
	}()
	for _, savepoints := range []bool{false, true} {
		retry, err := w.run(batch, errs, savepoints)
		if !retry {
			if err != nil {
				for i := range errs {
					if errs[i] == nil {
						errs[i] = err
					}
				}
			}
			return
		}
		clear(errs)
	}
}

// run runs the batch in one transaction. Without savepoints it gives up at
// the first op that fails (retry). err is a failure of the whole batch.
func (w *writer) run(batch []*op, errs []error, savepoints bool) (retry bool, err error) {
	if err := w.exec0("BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	abort := func(err error) (bool, error) {
		w.exec0("ROLLBACK")
		w.forget()
		return false, err
	}
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !savepoints {
			if errs[i] = o.fn(&wtx{w}); errs[i] != nil {
				w.exec0("ROLLBACK")
				w.forget()
				return true, nil
			}
			continue
		}
		if err := w.exec0("SAVEPOINT op"); err != nil {
			return abort(err)
		}
		if errs[i] = o.fn(&wtx{w}); errs[i] != nil {
			w.forget()
			if err := w.exec0("ROLLBACK TO op"); err != nil {
				// SQLite rolled the whole transaction back (a full disk,
				// an I/O error): nothing of the batch is written.
				return abort(errs[i])
			}
		}
		if err := w.exec0("RELEASE op"); err != nil {
			return abort(err)
		}
	}
	if err := w.exec0("COMMIT"); err != nil {
		return abort(err)
	}
	w.commits.Add(1)
	return false, nil
}

// forget drops the numbers looked up or given in a transaction that did
// not commit.
func (w *writer) forget() {
	clear(w.files)
	clear(w.registries)
}

// exec0 runs a statement without arguments on the writer's connection.
func (w *writer) exec0(q string) error {
	s, err := w.stmt(q)
	if err == nil {
		_, err = s.Exec()
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		w.reconnect()
	}
	return err
}

// reconnect replaces a connection the driver gave up on; the next batch
// uses the new one.
func (w *writer) reconnect() {
	for _, s := range w.stmts {
		s.Close()
	}
	w.stmts = map[string]*sql.Stmt{}
	w.conn.Close()
	if c, err := w.db.Conn(context.Background()); err == nil {
		writerConn(context.Background(), c)
		w.conn = c
	}
}

// writerConn sets up the writer's connection. It touches the b-trees'
// right edges and their indexes' inner pages with every batch: those stay
// cached (1 MiB, where readers keep 256 KiB).
func writerConn(ctx context.Context, c *sql.Conn) error {
	_, err := c.ExecContext(ctx, `PRAGMA cache_size = -1024`)
	return err
}

// stmt returns q prepared on the writer's connection: SQLite parses each
// statement once, not on every call.
func (w *writer) stmt(q string) (*sql.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	s, err := w.conn.PrepareContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = s
	return s, nil
}

// exec runs a prepared statement in the transaction.
func (t *wtx) exec(q string, args ...any) (sql.Result, error) {
	s, err := t.w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.Exec(args...)
}

// scan runs a prepared query in the transaction and scans its first row.
func (t *wtx) scan(q string, args []any, dest ...any) error {
	s, err := t.w.stmt(q)
	if err != nil {
		return err
	}
	return s.QueryRow(args...).Scan(dest...)
}
