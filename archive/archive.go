// Package archive files processed exports away - the last step of the flow,
// after outbound has an outcome for every record. A file goes to
// done/YYYY-MM-DD/ when every record was accepted (with or without
// warnings, or already accepted before), otherwise to failed/YYYY-MM-DD/,
// with sidecars beside it:
//
//   - NAME.ack.hl7: every ACK received, as received (segment ends shown as
//     line ends), one group of lines per ACK, a blank line between groups;
//   - NAME.ack.json: one entry per record: line, patient id, vaccination id,
//     MSH-10, outcome, each error and warning with its field and text;
//   - NAME.rejects.csv (failed/ only): the rejected and invalid rows in the
//     input's own layout plus an izdrop_errors column, ready to be
//     corrected and dropped into the inbox again;
//   - NAME.error.txt: for a file that could not be read at all, why.
//
// Nothing is overwritten and nothing deleted: a name already taken gets a
// suffix (NAME-1.csv, ...), reserved by creating its NAME.ack.json
// exclusively; sidecars are written atomically (temporary name, fsync,
// rename) before the file moves; the move never replaces an existing file.
// Files and folders are created 0600 / 0700. Every step can be redone: the
// caller records the reserved target first, and on restart finishes what a
// crash interrupted.
//
// Per platform, the no-replace rename is renameat2(RENAME_NOREPLACE) on
// Linux, renamex_np(RENAME_EXCL) on macOS and MoveFileEx without
// MOVEFILE_REPLACE_EXISTING (with MOVEFILE_WRITE_THROUGH) on Windows; a
// file system that has none gets a hard link then unlink, another volume a
// copy. Where Windows is weaker: file modes mean nothing there (0600 only
// clears the read-only flag), so the archive is exactly as private as the
// ACL of the folder it is in; and folders are not fsynced (see
// internal/durable), write-through moves stand in for that. A file still
// open in another program without FILE_SHARE_DELETE cannot be moved on
// Windows: Move fails and the caller retries it later.
package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/izdrop/izdrop/internal/durable"
)

// Result is where a file goes.
type Result string

// The two archives.
const (
	Done   Result = "done"
	Failed Result = "failed"
)

// Sidecar suffixes.
const (
	ACKHL7  = ".ack.hl7"
	ACKJSON = ".ack.json"
	Rejects = ".rejects.csv"
	Error   = ".error.txt"
)

// Sidecars returns the suffixes of the files written beside an archived
// file.
func Sidecars() []string { return []string{ACKHL7, ACKJSON, Rejects, Error} }

// Reserve picks and reserves the path a file named name will have under
// root/result/YYYY-MM-DD/: the first candidate (name, then name-1.ext, ...)
// of which neither the file nor a sidecar exists. The reservation is a
// NAME.ack.json created exclusively and naming owner (the claim), so two
// processes never pick the same target, and the same owner asking again -
// after a crash between reserving and recording the target - gets its own
// reservation back instead of a second name.
func Reserve(root string, result Result, day time.Time, name, owner string) (string, error) {
	dir := filepath.Join(root, string(result), day.Format("2006-01-02"))
	if err := mkdirAll(dir); err != nil {
		return "", err
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	mark := reservation(owner)
	for i := 0; i < 100000; i++ {
		cand := name
		if i > 0 {
			cand = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		p := filepath.Join(dir, cand)
		if exists(p) {
			continue
		}
		if b, err := os.ReadFile(p + ACKJSON); err == nil && string(b) == mark && owner != "" {
			return p, nil
		}
		if anySidecar(p) {
			continue
		}
		f, err := os.OpenFile(p+ACKJSON, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, werr := f.WriteString(mark)
		if err := f.Sync(); werr == nil {
			werr = err
		}
		f.Close()
		if werr != nil {
			// A full disk, say: an empty reservation left behind would push
			// the file to another name later, with an orphan beside it.
			os.Remove(p + ACKJSON)
			return "", werr
		}
		durable.SyncDir(dir)
		return p, nil
	}
	return "", fmt.Errorf("archive: no free name for %s in %s", name, dir)
}

func reservation(owner string) string { return `{"reserved_by": "` + owner + `"}` + "\n" }

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func anySidecar(p string) bool {
	for _, s := range Sidecars() {
		if exists(p + s) {
			return true
		}
	}
	return false
}

// mkdirAll creates a folder and its parents with mode 0700.
func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

// WriteAtomic writes a file through a temporary name, fsyncs it and renames
// it into place (replacing an earlier version of the same sidecar, or the
// reservation), mode 0600.
func WriteAtomic(path string, write func(io.Writer) error) error {
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return err
	}
	return durable.WriteFile(path, 0o600, write)
}

// ErrExists is returned when a move's destination exists.
var ErrExists = errors.New("archive: destination exists")

// What renameNoReplace reports besides success, ErrExists and other errors.
var (
	errCrossDevice = errors.New("archive: source and destination are on different file systems")
	errNoAtomic    = errors.New("archive: the file system has no no-replace rename")
	errTaken       = errors.New("archive: the destination name is taken")
)

// Move moves src to dst without ever replacing dst: an atomic rename where
// the file system allows it, else a hard link then unlink, else (another
// file system) a copy that is fsynced and put into place before src is
// removed. The moved file is made 0600. Moving a file already moved (src
// gone, dst there) is not an error: a restart finishing a move.
func Move(src, dst string) error {
	if err := mkdirAll(filepath.Dir(dst)); err != nil {
		return err
	}
	if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) && exists(dst) {
		return nil
	}
	err := place(src, dst)
	if errors.Is(err, errCrossDevice) {
		err = copyMove(src, dst)
	}
	if err != nil {
		return err
	}
	os.Chmod(dst, 0o600)
	durable.SyncDir(filepath.Dir(dst))
	durable.SyncDir(filepath.Dir(src))
	return nil
}

// place renames src to dst within one file system, never replacing dst:
// the platform's no-replace rename, or a hard link then unlink where the
// file system has none.
func place(src, dst string) error {
	err := renameNoReplace(src, dst)
	switch {
	case errors.Is(err, errTaken):
		return fmt.Errorf("%w: %s", ErrExists, dst)
	case errors.Is(err, errNoAtomic):
		return linkMove(src, dst)
	}
	return err
}

func linkMove(src, dst string) error {
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, dst)
		}
		if isCrossDevice(err) {
			return errCrossDevice
		}
		return err
	}
	return os.Remove(src)
}

func copyMove(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	tmp.Close()
	in.Close() // Windows removes no file open without sharing delete
	if err := place(tmp.Name(), dst); err != nil {
		return err
	}
	return os.Remove(src)
}
