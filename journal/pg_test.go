package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/izdrop/izdrop/internal/pgtest"
)

// Hosts starting together on an empty database each open the journal:
// one creates the tables, the others wait for it and find them.
func TestHostsOpenOneNewPostgresJournalAtOnce(t *testing.T) {
	b := postgresBackend(t)
	var wg sync.WaitGroup
	stores := make([]Store, 6)
	for i := range stores {
		wg.Add(1)
		go func() { defer wg.Done(); stores[i] = b.open(t) }()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, s := range stores {
		if err := s.AddFile(context.Background(), File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()}); err != nil {
			t.Errorf("host %d: %v", i, err)
		}
	}
	if n := rows(t, stores[0], "files"); n != 1 {
		t.Errorf("%d file rows", n)
	}
}

// A lock is held by one journal (host) at a time, given up by Unlock or
// Close, and not taken twice within one journal either.
func TestPostgresLocksHoldAcrossHandles(t *testing.T) {
	ctx := context.Background()
	b := postgresBackend(t)
	a, c := b.open(t).(Locker), b.open(t).(Locker)
	la, ok, err := a.TryLock(ctx, "pass:clinic")
	if err != nil || !ok {
		t.Fatalf("first lock: %v %v", ok, err)
	}
	if _, ok, err := c.TryLock(ctx, "pass:clinic"); ok || err != nil {
		t.Fatalf("the lock was taken twice: %v %v", ok, err)
	}
	if _, ok, _ := a.TryLock(ctx, "pass:clinic"); ok {
		t.Fatal("the same journal took its own lock again")
	}
	lo, ok, err := c.TryLock(ctx, "pass:other")
	if err != nil || !ok {
		t.Fatalf("another name: %v %v", ok, err)
	}
	lo.Unlock()
	la.Unlock()
	lc, ok, err := c.TryLock(ctx, "pass:clinic")
	if err != nil || !ok {
		t.Fatalf("after Unlock: %v %v", ok, err)
	}
	c.(Store).Close()
	select {
	case <-lc.Lost():
	default:
		t.Error("a lock of a closed journal is not lost")
	}
	// The server ends the closed session's backend a moment later.
	waitLock(t, a, "pass:clinic")
	if _, _, err := c.TryLock(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("lock after close: %v", err)
	}
}

// When the session holding a lock ends under it (the server restarted,
// the network cut), the holder learns it - Lost - and another host can
// take the lock; the holder's next TryLock opens a new session.
func TestAPostgresLockLostWithItsSessionIsTakenOver(t *testing.T) {
	ctx := context.Background()
	url, s := pgtest.Database(t)
	open := func() *PG {
		p, err := OpenPostgres(ctx, url, s.Password)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	a, c := open(), open()
	l, ok, err := a.TryLock(ctx, "pass:clinic")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	s.Terminate(t, dbName(url))
	select {
	case <-l.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the holder did not notice its session ended")
	}
	waitLock(t, c, "pass:clinic")
	if _, ok, err := a.TryLock(ctx, "pass:other"); err != nil || !ok {
		t.Fatalf("the first holder cannot lock again: %v %v", ok, err)
	}
	// Writes carry on over a new connection.
	if err := a.AddFile(ctx, File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()}); err != nil {
		// The first write after the cut may meet the dead connection.
		if err := a.AddFile(ctx, File{Claim: "C", Inbox: "i", Name: "n", WorkPath: "w", ClaimedAt: time.Now()}); err != nil {
			t.Errorf("write after the cut: %v", err)
		}
	}
}

func dbName(url string) string {
	i := len(url)
	for k := len(url) - 1; k >= 0; k-- {
		if url[k] == '?' {
			i = k
		}
		if url[k] == '/' {
			return url[k+1 : i]
		}
	}
	return ""
}

// waitLock takes a lock another session is giving up, polling until a
// deadline.
func waitLock(t *testing.T, l Locker, name string) Lock {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		lk, ok, err := l.TryLock(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return lk
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still held by another session", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A message started under a lock (WithLock) is written only while the lock
// is held: once its session is gone, the start writes nothing, says
// ErrLockLost, and the holder learns at once that the lock is lost.
func TestStartsFencedByALostLockWriteNothing(t *testing.T) {
	ctx := context.Background()
	url, s := pgtest.Database(t)
	p, err := OpenPostgres(ctx, url, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l, ok, err := p.TryLock(ctx, "pass:clinic")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	fenced := WithLock(ctx, l)
	p.AddFile(ctx, File{Claim: "C", Inbox: "clinic", Name: "n", WorkPath: "w", ClaimedAt: time.Now()})
	start := func(seq int) error {
		return p.StartMessage(fenced, Message{Claim: "C", Seq: seq, MSH10: fmt.Sprint("IZ", seq), Lines: []int{seq}, Raw: []byte("x"), State: Sending},
			[]Record{{Line: seq, Site: "S", VaccinationID: fmt.Sprint("V", seq)}})
	}
	if err := start(1); err != nil {
		t.Fatalf("while held: %v", err)
	}
	// The lock's session, and it alone, ends.
	admin, err := pgx.Connect(ctx, url+"&password="+s.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(l.(*pgLock).gen.pid)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int32(l.(*pgLock).gen.pid)).Scan(&n)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session does not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := start(2); !errors.Is(err, ErrLockLost) {
		t.Fatalf("after the lock's session ended: %v", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Error("the holder was not told")
	}
	if _, err := p.GetMessage(ctx, "C", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("written anyway: %v", err)
	}
	if n, _ := p.LinesIn(ctx, "C", 0, 9); n != 1 {
		t.Errorf("%d records", n)
	}
	// Unfenced writes go on; a new lock is a new session.
	if err := p.StartMessage(ctx, Message{Claim: "C", Seq: 3, MSH10: "IZ3", Lines: []int{3}, State: Sending}, nil); err != nil {
		t.Errorf("unfenced: %v", err)
	}
	l2 := waitLock(t, p, "pass:clinic")
	if err := p.StartMessage(WithLock(ctx, l2), Message{Claim: "C", Seq: 4, MSH10: "IZ4", Lines: []int{4}, State: Sending}, nil); err != nil {
		t.Errorf("under the new lock: %v", err)
	}
}

// A URL that cannot be read says why, and never repeats a password.
func TestABadPostgresURLSaysWhy(t *testing.T) {
	_, err := OpenPostgres(context.Background(), "postgres://u:s3cret@h:notaport/d", "")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "URL") {
		t.Errorf("%v", err)
	}
}
