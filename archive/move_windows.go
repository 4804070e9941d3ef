package archive

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// renameNoReplace is MoveFileEx without MOVEFILE_REPLACE_EXISTING, which
// fails rather than replace dst, and without MOVEFILE_COPY_ALLOWED, so a
// move to another volume is Move's fsynced copy rather than Windows' own.
// MOVEFILE_WRITE_THROUGH returns once the rename is on disk: Windows has no
// folder fsync (see internal/durable), this is its stand-in.
func renameNoReplace(src, dst string) error {
	from, err := windows.UTF16PtrFromString(src)
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(dst)
	if err != nil {
		return err
	}
	err = windows.MoveFileEx(from, to, windows.MOVEFILE_WRITE_THROUGH)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, windows.ERROR_ALREADY_EXISTS), errors.Is(err, windows.ERROR_FILE_EXISTS):
		return errTaken
	case errors.Is(err, windows.ERROR_NOT_SAME_DEVICE):
		return errCrossDevice
	}
	return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
}

func isCrossDevice(err error) bool { return errors.Is(err, windows.ERROR_NOT_SAME_DEVICE) }
