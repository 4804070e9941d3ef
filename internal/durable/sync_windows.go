package durable

import (
	"os"

	"golang.org/x/sys/windows"
)

// SyncDir does nothing on Windows, which cannot fsync a folder (a folder
// handle refuses FlushFileBuffers). Renames are made durable when they
// happen instead: see replace, and archive's moves.
func SyncDir(dir string) {}

// replace renames oldpath over newpath and returns once the rename is on
// disk.
func replace(oldpath, newpath string) error {
	from, err := windows.UTF16PtrFromString(oldpath)
	if err != nil {
		return err
	}
	to, err := windows.UTF16PtrFromString(newpath)
	if err != nil {
		return err
	}
	if err := windows.MoveFileEx(from, to, windows.MOVEFILE_REPLACE_EXISTING|windows.MOVEFILE_WRITE_THROUGH); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
