package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// watchMem samples a running process's memory until stop is closed, then
// sends the largest seen: its resident set's high-water mark since it
// started its program (VmHWM; the rusage of a child started from a Go
// process counts the parent's memory too, which it shared until exec), and
// its anonymous resident memory (its own: heap, stacks, SQLite's pages; not
// the executable's pages mapped from its file, which the kernel counts in
// RSS but shares and can drop). Sampling every 20 ms can miss the last
// moments' growth.
func watchMem(pid int, stop <-chan struct{}) <-chan memPeak {
	out := make(chan memPeak, 1)
	go func() {
		path := fmt.Sprintf("/proc/%d/status", pid)
		var peak memPeak
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if b, err := os.ReadFile(path); err == nil {
				peak.rss = max(peak.rss, statusKB(b, "VmHWM:")*1024)
				peak.anon = max(peak.anon, statusKB(b, "RssAnon:")*1024)
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// statusKB is a "Name:   123 kB" line's number in /proc/PID/status.
func statusKB(status []byte, name string) int64 {
	i := bytes.Index(status, []byte(name))
	if i < 0 {
		return 0
	}
	line := status[i+len(name):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	n, _ := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(line), []byte(" kB"))), 10, 64)
	return n
}
