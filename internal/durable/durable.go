// Package durable writes files so that a crash leaves either the old or the
// new version, never a mix: write to a temporary name in the same folder,
// fsync, rename into place, fsync the folder.
//
// Per platform: on Linux and the BSDs a folder is fsynced like a file. On
// macOS, Go's File.Sync is F_FULLFSYNC (through the drive's cache) and a
// folder gets the same where the file system allows it. Windows cannot
// fsync a folder: SyncDir does nothing there, and WriteFile's rename is
// MoveFileEx with MOVEFILE_WRITE_THROUGH, which returns once the rename is
// on disk (NTFS journals its metadata); that is the guarantee Windows
// gives, and it is weaker only on volumes without a journal (FAT, exFAT),
// where a crash can lose a rename that had returned.
package durable

import (
	"io"
	"os"
	"path/filepath"
)

// WriteFile writes path through a temporary name, with mode perm. A failed
// write leaves any earlier version of path as it was.
func WriteFile(path string, perm os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := replace(tmp.Name(), path); err != nil {
		return err
	}
	SyncDir(dir)
	return nil
}
