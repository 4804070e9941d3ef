package archive

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace is renamex_np(RENAME_EXCL): atomic, and it fails rather
// than replace dst. File systems without it (HFS+ before macOS 10.12, some
// network ones) answer ENOTSUP or EINVAL.
func renameNoReplace(src, dst string) error {
	err := unix.RenamexNp(src, dst, unix.RENAME_EXCL)
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
