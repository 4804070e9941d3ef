package transform

import (
	"encoding/csv"
	"io/fs"
	"syscall"
	"testing"
)

func TestFileErrorTransient(t *testing.T) {
	for _, c := range []struct {
		err  *FileError
		want bool
	}{
		{&FileError{Reason: "read error", Err: &fs.PathError{Op: "read", Path: "x", Err: syscall.EIO}}, true},
		{&FileError{Reason: "cannot open", Err: &fs.PathError{Op: "open", Path: "x", Err: syscall.EMFILE}}, true},
		{&FileError{Reason: "cannot open", Err: &fs.PathError{Op: "open", Path: "x", Err: syscall.EACCES}}, false},
		{&FileError{Reason: "the header row is not valid CSV", Err: &csv.ParseError{Line: 1, Err: csv.ErrQuote}}, false},
		{&FileError{Reason: "not valid UTF-8"}, false},
	} {
		if got := c.err.Transient(); got != c.want {
			t.Errorf("%v: Transient() = %v", c.err, got)
		}
	}
}
