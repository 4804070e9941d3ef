// Retention: with [retention] days set, what was archived longer ago - the
// file in done/ or failed/, its sidecars and the markers or partner filed
// with it, then its rows in the journal - is purged, with an audit line
// each. Only files the journal says are archived are looked at, so nothing
// in an inbox or in work/ is ever touched; what each registry holds is
// kept (journal.Forget), so a file dropped again is not sent twice.

package service

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/internal/durable"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

// retainEvery is how often a service looks for what to purge.
const retainEvery = time.Hour

// retain purges the inbox's files archived longer ago than [retention]
// days, at most once per retainEvery. It runs inside a pass, under the
// inbox's pass lock: never beside another process's archiving.
func (in *inbox) retain(ctx context.Context) {
	age := in.s.cfg.Retention.Age()
	if age <= 0 || time.Since(in.lastRetain) < retainEvery {
		return
	}
	in.lastRetain = time.Now()
	before := in.s.opt.Now().Add(-age)
	files, err := in.s.journal.ArchivedBefore(ctx, in.name, before)
	if err != nil {
		in.log.Error().Err(err).Msg("retention: journal")
		return
	}
	for _, f := range files {
		if ctx.Err() != nil {
			return
		}
		if in.shared() && !in.ownArchive(f.ArchivePath) {
			continue // in another host's archive: that host purges it
		}
		log := in.log.With().Str("file", f.Name).Str("claim", f.Claim).Str("archive", f.ArchivePath).Logger()
		removed, err := in.purgeArchived(f)
		if err != nil {
			log.Warn().Err(err).Msg("retention: the archived file was not purged; tried again later")
			continue
		}
		n, err := in.s.journal.Forget(ctx, f.Claim)
		if err != nil {
			log.Warn().Err(err).Int("files_removed", removed).Msg("retention: the journal rows were not purged; tried again later")
			continue
		}
		log.Info().Str("audit", "retention").Time("archived_at", f.UpdatedAt).Int("days", in.s.cfg.Retention.Days).
			Int("files_removed", removed).Int("records", n).
			Msg("retention: purged an archived file, its sidecars and its journal rows")
	}
}

// purgeArchived removes an archived file and what was filed beside it, and
// the day folder if that leaves it empty. It refuses a path outside the
// inbox's done/ and failed/ folders.
func (in *inbox) purgeArchived(f journal.File) (removed int, err error) {
	if f.ArchivePath == "" {
		return 0, nil // taken out of work/ by hand: nothing was filed
	}
	day := filepath.Dir(f.ArchivePath)
	rel, err := filepath.Rel(in.cfg.Archive, day)
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if err != nil || len(parts) != 2 || (parts[0] != string(archive.Done) && parts[0] != string(archive.Failed)) {
		return 0, errors.New("the journal's archive path is not in this inbox's done/ or failed/ folder: left alone")
	}
	base := filepath.Base(f.ArchivePath)
	names := []string{base}
	for _, s := range archive.Sidecars() {
		names = append(names, base+s)
	}
	// Markers and a FHIR export's Patient file were filed under names
	// derived from the file's (see archive): derive them again.
	stem := strings.TrimSuffix(f.Name, filepath.Ext(f.Name))
	companions := []string{f.Name + ".done", f.Name + ".ready", stem + ".done", stem + ".ready"}
	if partner, _, ok := transform.Partner(f.Name); ok {
		companions = append(companions, partner)
	}
	for _, c := range companions {
		if n := watcher.MarkerRenamed(f.Name, c, base); n != base {
			names = append(names, n)
		}
	}
	for _, n := range names {
		switch err := os.Remove(filepath.Join(day, n)); {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			return removed, err
		}
	}
	durable.SyncDir(day)
	if os.Remove(day) == nil { // only when empty
		durable.SyncDir(filepath.Dir(day))
	}
	return removed, nil
}
