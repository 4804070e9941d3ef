// Archiving: a file whose records all have their outcome is moved to
// done/ or failed/, each step redone after a crash until it is finished.

package service

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/internal/durable"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/watcher"
)

// archive files a file whose records all have their outcome (or that could
// not be read): reserve the target, record it, write the sidecars, move.
// Each step can be redone after a crash: a file already moved (its work/
// copy gone, its archived copy there) is only finished.
func (in *inbox) archive(ctx context.Context, f journal.File, c watcher.Claimed, fileErr string, log zerolog.Logger) Summary {
	j := in.s.journal
	bg := context.Background() // archiving is finished even when a stop was requested
	counts, err := j.Counts(bg, f.Claim)
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	open, err := j.OpenMessages(bg, f.Claim)
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	if open > 0 || counts[""] > 0 {
		// Never file a record whose fate is not known.
		log.Error().Int("unanswered_messages", open).Int("records_without_outcome", counts[""]).
			Msg("not archived: some messages wait for an answer")
		return Summary{Pending: 1}
	}
	result := archive.Done
	if fileErr != "" || counts[string(ack.Rejected)] > 0 || counts[string(ack.Invalid)] > 0 {
		result = archive.Failed
	}
	target := f.ArchivePath
	if f.State != journal.Archiving || target == "" || !in.ownArchive(target) {
		// (A target in another host's archive, sharing the journal, is
		// that host's: this one files the file in its own.)
		target, err = archive.Reserve(in.cfg.Archive, result, in.s.opt.Now().In(in.s.cfg.Location()), c.Name, f.Claim)
		if err != nil {
			log.Error().Err(err).Str("archive", in.cfg.Archive).Msg("cannot reserve a name in the archive (full or read-only?): the file stays in work/ and its filing is retried at the next pass")
			return Summary{Pending: 1}
		}
		if err := j.SetFile(bg, f.Claim, journal.Archiving, string(result), target, fileErr); err != nil {
			log.Error().Err(err).Msg("journal")
			return Summary{Pending: 1}
		}
	} else {
		result = archive.Result(f.Result)
	}
	if f.State == journal.Archiving && exists(c.Path) && exists(target) && f.SHA256 != "" {
		// A move cut short between placing the archived copy (a link or a
		// copy across file systems) and removing the work/ one.
		if sum, _, err := fileHash(target); err == nil && sum == f.SHA256 {
			if err := os.Remove(c.Path); err != nil {
				log.Error().Err(err).Msg("removing the work/ copy of a file already archived failed; retried at the next pass")
				return Summary{Pending: 1}
			}
			durable.SyncDir(filepath.Dir(c.Path))
		}
	}
	switch {
	case exists(c.Path):
		if err := in.writeSidecars(bg, f, c, target, result, fileErr, counts); err != nil {
			log.Error().Err(err).Msg("writing sidecars failed; the file stays in work/ and archiving is retried")
			return Summary{Pending: 1}
		}
		if err := archive.Move(c.Path, target); err != nil {
			log.Error().Err(err).Msg("moving the file to the archive failed: the file stays in work/ and its filing is retried at the next pass")
			return Summary{Pending: 1}
		}
	case !exists(target):
		// Taken out of work/ by hand. Waiting would not bring it back: the
		// journal keeps its records' outcomes (izdrop find) and says so.
		why := "the file left work/ outside izdrop before it was archived"
		log.Error().Str("work_path", c.Path).Str("archive", target).Msg(why + "; its records' outcomes are in the journal (izdrop find)")
		if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), "", why); err != nil {
			log.Error().Err(err).Msg("journal")
			return Summary{Pending: 1}
		}
		return Summary{}
	case f.SHA256 != "":
		// Moved before a stop: make sure what is there is this file.
		sum, _, err := fileHash(target)
		if err != nil {
			log.Error().Err(err).Str("archive", target).Msg("cannot read the archived copy; retried at the next pass")
			return Summary{Pending: 1}
		}
		if sum != f.SHA256 {
			why := "the archived copy is not the file taken up (replaced by hand?)"
			log.Error().Str("archive", target).Msg(why)
			if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), target, why); err != nil {
				log.Error().Err(err).Msg("journal")
				return Summary{Pending: 1}
			}
			return Summary{}
		}
	}
	for _, m := range c.Markers {
		_, orig, _, _ := watcher.ParseClaimName(filepath.Base(m))
		to := filepath.Join(filepath.Dir(target), watcher.MarkerRenamed(c.Name, orig, filepath.Base(target)))
		if err := archive.Move(m, to); err != nil {
			log.Warn().Err(err).Str("marker", orig).Msg("marker file not archived; it stays in work/")
		}
	}
	if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), target, ""); err != nil {
		// Filed, but the journal does not know: the next pass finishes it.
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	removeWaitingNote(c)
	f.State, f.Result, f.ArchivePath = journal.Archived, string(result), target
	if err := in.src.archived(bg, c, f); err != nil {
		// Filed locally; the remote copy is returned at the next pass.
		log.Warn().Err(err).Msg("returning the file to the remote done/failed folder failed; retried at the next pass")
	}
	ev := log.Info()
	if result == archive.Failed {
		ev = log.Warn()
	}
	if fileErr == "" && total(counts) == 0 {
		ev = log.Warn().Str("warning", noRecordsText)
	}
	for _, k := range sortedKeys(counts) {
		ev = ev.Int(k, counts[k])
	}
	ev.Str("result", string(result)).Str("archive", target).Msg("file archived")
	f.Error = fileErr
	in.filed(f, result, counts)
	s := Summary{Records: counts}
	if result == archive.Done {
		s.Done = 1
	} else {
		s.Failed = 1
	}
	return s
}

// finishArchiving finishes the files a stop interrupted after their move
// into the archive: their work/ copy is gone, so no listing of work/ finds
// them; the journal does.
func (in *inbox) finishArchiving(ctx context.Context) Summary {
	var sum Summary
	fs, err := in.s.journal.FilesInState(ctx, in.name, journal.Archiving)
	if err != nil {
		in.log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	for _, f := range fs {
		if exists(f.WorkPath) {
			continue // archived by process, from work/
		}
		if in.cfg.Kind == "sftp" && (!exists(f.ArchivePath) || !in.ownArchive(f.ArchivePath)) {
			continue // the remote copy is downloaded again and archived by process
		}
		if !in.ownArchive(f.ArchivePath) {
			// Moved into another host's archive (sharing the journal):
			// that host finishes it.
			continue
		}
		markers, _ := filepath.Glob(filepath.Join(filepath.Dir(f.WorkPath), f.Claim+"--*"))
		c := watcher.Claimed{ID: f.Claim, Name: f.Name, Path: f.WorkPath, At: f.ClaimedAt, Markers: markers}
		log := in.log.With().Str("file", f.Name).Str("claim", f.Claim).Logger()
		log.Info().Msg("finishing the archiving of a file moved before a stop")
		sum.add(in.archive(ctx, f, c, f.Error, log))
	}
	return sum
}
