package watcher

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// ListLocal lists a folder: its regular files, and (with their Kind) what
// else is there, to be reported as not taken.
func ListLocal(dir string) ([]Entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(ents))
	for _, e := range ents {
		switch t := e.Type(); {
		case t&fs.ModeSymlink != 0:
			out = append(out, Entry{Name: e.Name(), Kind: "symlink"})
			continue
		case t.IsDir():
			out = append(out, Entry{Name: e.Name(), Kind: "folder"})
			continue
		case !t.IsRegular():
			out = append(out, Entry{Name: e.Name(), Kind: "other"})
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // gone since the listing
		}
		out = append(out, Entry{Name: e.Name(), Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}

// Notify watches dir with fsnotify and signals on every change (and on
// event overflow, which means changes were missed) until ctx ends. Signals
// coalesce: a pending one is not repeated. If the folder cannot be watched
// (some network file systems), Notify logs it and returns: the caller's
// periodic rescan still finds every file.
func Notify(ctx context.Context, dir string, signal chan<- struct{}, log zerolog.Logger) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn().Err(err).Msg("file events unavailable; relying on the periodic rescan")
		return
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		log.Warn().Err(err).Msg("cannot watch the inbox; relying on the periodic rescan")
		return
	}
	poke := func() {
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	// A file that arrived before the watch was in place made no event:
	// one look now finds it.
	poke()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			poke()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				log.Warn().Msg("file event overflow; rescanning")
			}
			poke()
		}
	}
}
