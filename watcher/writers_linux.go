//go:build linux

package watcher

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// BeingWritten reports whether some process holds the file open for
// writing. On Linux it asks for a read lease (F_SETLEASE, F_RDLCK): the
// kernel refuses one (EAGAIN) while any process has the file open for
// writing, whatever its pauses between writes. known is false when the
// check cannot be made - a lease needs the file's owner or CAP_LEASE, and
// a file system that has leases (not NFS) - and the stability window alone
// decides.
func BeingWritten(path string) (writing, known bool) {
	f, err := os.Open(path)
	if err != nil {
		return false, false
	}
	defer f.Close()
	fd := int(f.Fd())
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_RDLCK)
	switch {
	case err == nil:
		unix.FcntlInt(uintptr(fd), unix.F_SETLEASE, unix.F_UNLCK)
		return false, true
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		return true, true
	}
	return false, false
}
