// Package durable writes files so that a crash leaves either the old or the
// new version, never a mix: write to a temporary name in the same folder,
// fsync, rename into place, fsync the folder.
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
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	SyncDir(dir)
	return nil
}

// SyncDir makes renames and creations in dir durable. Errors are ignored:
// some file systems cannot sync a folder, and nothing better can be done.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
