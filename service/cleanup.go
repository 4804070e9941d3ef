// Clean-up at start: what an interrupted run can leave in an inbox's
// archive and work folders - temporary files of atomic writes (they hold
// patient data) and reservations of archive names never used - is removed,
// with an audit line each. Nothing filed, nothing in work/, is touched.

package service

import (
	"context"

	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/journal"
)

// cleanDays bounds how many of the newest day folders are looked at: an
// interrupted run leaves its leftovers in the days it ran.
const cleanDays = 60

func (in *inbox) cleanLeftovers(ctx context.Context) {
	held := func(owner, target string) bool {
		f, err := in.s.journal.GetFile(ctx, owner)
		if err != nil {
			return err != journal.ErrNotFound // in doubt, keep it
		}
		return f.State == journal.Archiving && f.ArchivePath == target
	}
	gone, err := archive.Clean(in.cfg.Archive, cleanDays, held)
	if more, werr := archive.CleanTemp(in.src.workDir()); werr == nil {
		gone = append(gone, more...)
	}
	for _, l := range gone {
		in.log.Info().Str("removed", l.Path).Str("reason", l.Why).Msg("leftover of an interrupted run removed")
	}
	if err != nil {
		in.log.Warn().Err(err).Msg("cleaning the archive's leftovers failed; it is tried again at the next start")
	}
}
