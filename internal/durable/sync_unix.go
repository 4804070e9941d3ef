//go:build unix

package durable

import "os"

// SyncDir makes renames and creations in dir durable. Errors are ignored:
// some file systems cannot sync a folder, and nothing better can be done.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func replace(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
