//go:build unix

package watcher

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openLockable opens a file to lock; create makes a lock file (0600).
func openLockable(path string, create bool) (*os.File, error) {
	if create {
		return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	}
	return os.Open(path)
}

// tryLock takes an exclusive flock without waiting: ok false, err nil when
// another open file holds it (another process, or another open of the
// file in this one). flock is advisory: it keeps izdrop processes apart and
// stops no reader.
func tryLock(f *os.File) (ok bool, err error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// unlockFile releases the lock by closing the file.
func unlockFile(f *os.File) { f.Close() }

// isBusy: a rename on unix does not care who has the file open.
func isBusy(error) bool { return false }
