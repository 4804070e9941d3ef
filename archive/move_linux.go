package archive

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace is renameat2(RENAME_NOREPLACE): atomic, and it fails
// rather than replace dst. File systems without it (some network and FUSE
// ones, kernels before 3.15) answer EINVAL, ENOSYS or ENOTSUP.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return errTaken
	case errors.Is(err, unix.EXDEV):
		return errCrossDevice
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.ENOTSUP):
		return errNoAtomic
	}
	return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
}
