package sandbox

import (
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// delayListener makes every new connection wait Faults.ConnectDelay before
// its first byte is read (its TLS handshake, when the sandbox serves TLS).
type delayListener struct {
	net.Listener
	s *Server
}

func (l *delayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	d := l.s.faults.ConnectDelay
	l.s.mu.Unlock()
	if d <= 0 {
		return c, nil
	}
	// Waited on the connection's own goroutine (its first read), not here:
	// the accept loop would make connections wait for each other.
	return &delayConn{Conn: c, delay: d}, nil
}

type delayConn struct {
	net.Conn
	delay time.Duration
	once  sync.Once
}

func (c *delayConn) Read(b []byte) (int, error) {
	c.once.Do(func() { time.Sleep(c.delay) })
	return c.Conn.Read(b)
}

type connKey struct{}

// connInfo is what the sandbox knows of a connection: when it was accepted,
// and whether a call used it already.
type connInfo struct {
	accepted time.Time
	used     atomic.Bool
}

// histogram counts durations in buckets 5% apart, from 1 µs to hours.
type histogram struct {
	mu     sync.Mutex
	counts [512]int64
	n      int64
}

const histogramBase = 1.05

func (h *histogram) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(math.Log(us)/math.Log(histogramBase))+1, len(h.counts)-1)
	}
	h.mu.Lock()
	h.counts[i]++
	h.n++
	h.mu.Unlock()
}

// quantile returns the upper bound of the bucket holding the q-quantile.
func (h *histogram) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= want && c > 0 {
			return time.Duration(math.Pow(histogramBase, float64(i)) * float64(time.Microsecond))
		}
	}
	return 0
}
