// Locks across hosts: PostgreSQL's session-level advisory locks, taken on
// a connection of their own. PostgreSQL releases them when that session
// ends - Unlock, or the holder's death: a killed process's socket is
// closed by its kernel at once, a host that loses power or its network is
// noticed by TCP keepalives (set short on this session). The holder, for
// its part, pings the session and declares its locks lost when the ping
// fails, so that it stops working under a lock another host may take.

package journal

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// pingEvery is how often a holder checks the session its locks live on.
var pingEvery = 2 * time.Second

type pgLocks struct {
	cfg  *pgx.ConnConfig
	mu   sync.Mutex
	conn *pgx.Conn
	gen  *pgLockGen
	held map[int64]*pgLock // what this journal holds: a session's locks are re-entrant, these are not
	stop chan struct{}
	wg   sync.WaitGroup
	shut bool
}

// pgLockGen is one session's life: lost closes when it ends.
type pgLockGen struct {
	lost chan struct{}
	once sync.Once
	pid  uint32 // the session's server process, for fences
}

func (g *pgLockGen) end() { g.once.Do(func() { close(g.lost) }) }

type pgLock struct {
	l   *pgLocks
	key int64
	gen *pgLockGen
}

func (l *pgLock) Lost() <-chan struct{} { return l.gen.lost }

// fence is what identifies the lock in pg_locks: the holding session's
// process, and the key's two halves (an advisory lock on a bigint key is
// listed with classid the high half, objid the low one, objsubid 1).
func (l *pgLock) fence() (pid, classid, objid int64) {
	return int64(l.gen.pid), int64(uint64(l.key) >> 32), int64(uint64(l.key) & 0xffffffff)
}

// lose ends the lock's session, found gone by a fenced write: every lock
// of it is lost (the session is), and the next TryLock opens a new one.
func (l *pgLock) lose() {
	p := l.l
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == l.gen {
		p.drop()
	}
	l.gen.end()
}

func (l *pgLock) Unlock() {
	p := l.l
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held[l.key] != l {
		return // lost with its session already
	}
	delete(p.held, l.key)
	if p.conn == nil || p.gen != l.gen {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
		p.drop()
	}
}

func newPGLocks(cfg *pgx.ConnConfig) *pgLocks {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	// The server notices a host gone silent in about 20 s (idle 10 s, then
	// 3 probes 3 s apart) and ends its session, releasing its locks.
	cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
	cfg.RuntimeParams["tcp_keepalives_interval"] = "3"
	cfg.RuntimeParams["tcp_keepalives_count"] = "3"
	cfg.RuntimeParams["application_name"] = "izdrop locks"
	p := &pgLocks{cfg: cfg, held: map[int64]*pgLock{}, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.watch()
	return p
}

// lockKey turns a lock's name into an advisory lock key.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("izdrop\x00" + name))
	return int64(h.Sum64())
}

// TryLock takes the lock called name without waiting; ok is false while
// another process, on any host, or another holder in this one, has it.
func (p *PG) TryLock(ctx context.Context, name string) (Lock, bool, error) {
	return p.locks.tryLock(ctx, name)
}

func (p *pgLocks) tryLock(ctx context.Context, name string) (Lock, bool, error) {
	key := lockKey(name)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return nil, false, ErrClosed
	}
	if _, ok := p.held[key]; ok {
		return nil, false, nil
	}
	if p.conn == nil {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := pgx.ConnectConfig(cctx, p.cfg)
		cancel()
		if err != nil {
			return nil, false, err
		}
		p.conn, p.gen = c, &pgLockGen{lost: make(chan struct{}), pid: c.PgConn().PID()}
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var ok bool
	if err := p.conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		p.drop()
		return nil, false, err
	}
	if !ok {
		return nil, false, nil
	}
	l := &pgLock{l: p, key: key, gen: p.gen}
	p.held[key] = l
	return l, true, nil
}

// drop ends the session: its locks are lost. p.mu is held.
func (p *pgLocks) drop() {
	if p.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	p.conn.Close(ctx)
	cancel()
	p.conn = nil
	p.gen.end()
	clear(p.held)
}

// watch pings the session while it holds locks.
func (p *pgLocks) watch() {
	defer p.wg.Done()
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.conn != nil && len(p.held) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*pingEvery)
			if err := p.conn.Ping(ctx); err != nil {
				p.drop()
			}
			cancel()
		}
		p.mu.Unlock()
	}
}

func (p *pgLocks) close() {
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		return
	}
	p.shut = true
	close(p.stop)
	p.drop()
	p.mu.Unlock()
	p.wg.Wait()
}
