// The first step of a claimed file: lock it, journal it, hash it, then
// hand it to reading and sending, and to archiving when every record has
// its outcome.

package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"

	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

// process takes a claimed file as far as it can go: read, deliver every
// message, archive. A file whose messages are not all answered stays in
// work/ (pending) and is taken up again by a later pass. stalled means the
// file stopped part-way for a reason other than the registry (a lock, the
// journal, an I/O error): its patients' later messages were not looked at,
// so no newer file may be processed in this pass.
func (in *inbox) process(ctx context.Context, sc *sched, c watcher.Claimed) (sum Summary, stalled bool) {
	log := in.log.With().Str("file", c.Name).Str("claim", c.ID).Logger()
	unlock, ok, err := in.lockFile(ctx, c)
	if err != nil || !ok {
		if err != nil {
			log.Error().Err(err).Msg("cannot lock the file")
		} else {
			log.Warn().Msg("the file is locked by another process or left work/: newer files wait")
		}
		return Summary{Pending: 1}, true
	}
	defer unlock()
	j := in.s.journal
	f, err := j.GetFile(ctx, c.ID)
	if errors.Is(err, journal.ErrNotFound) {
		f = journal.File{Claim: c.ID, Inbox: in.name, Name: c.Name, WorkPath: c.Path, ClaimedAt: c.At}
		if err = j.AddFile(ctx, f); err == nil {
			f, err = j.GetFile(ctx, c.ID)
		}
	}
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}, true
	}
	switch f.State {
	case journal.Archived:
		if in.cfg.Kind == "sftp" && !in.ownArchive(f.ArchivePath) {
			// Another host, sharing the journal, filed it in its archive
			// and died before returning it to the server: it is filed
			// again here, from the journal, and returned.
			log.Warn().Str("archive", f.ArchivePath).Msg("filed by another host, which did not return it to the server: filed again here")
			f.State, f.ArchivePath = journal.Archiving, ""
			return in.archive(ctx, f, c, f.Error, log), false
		}
		log.Warn().Str("archive", f.ArchivePath).Msg("the journal says this file is archived, yet it is in work/: left alone")
		return Summary{}, false
	case journal.Archiving:
		return in.archive(ctx, f, c, f.Error, log), false
	}
	if f.SHA256 == "" {
		sum, size, err := fileHash(c.Path)
		if err == nil {
			err = j.SetFileHash(ctx, c.ID, sum, size)
		}
		if err != nil {
			log.Error().Err(err).Msg("cannot read the claimed file or journal its hash")
			return Summary{Pending: 1}, true
		}
		f.SHA256, f.Size = sum, size
		log.Info().Str("sha256", sum).Int64("size", size).Msg("file taken up")
	}
	if err := j.SetFile(ctx, c.ID, journal.Reading, "", "", ""); err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}, true
	}
	pending, fileErr, err := in.readAndSend(ctx, sc, f, c, log)
	if err != nil {
		log.Error().Err(err).Msg("reading stopped; the file stays in work/ and is taken up again")
		j.SetFile(context.Background(), c.ID, journal.Pending, "", "", "")
		return Summary{Pending: 1}, true
	}
	if pending {
		j.SetFile(context.Background(), c.ID, journal.Pending, "", "", "")
		in.writeWaitingNote(context.Background(), f, c, ctx.Err() != nil)
		if _, refused := in.ep.refused(context.Background()); !refused {
			log.Warn().Msg("some records wait for the registry: the file stays in work/ until they are answered")
		}
		return Summary{Pending: 1}, false
	}
	return in.archive(ctx, f, c, fileErr, log), false
}

// lockFile takes a claimed file's processing lock: in the journal when
// several hosts share it, else on the file itself. ok is false when
// another process holds it, or the file left work/.
func (in *inbox) lockFile(ctx context.Context, c watcher.Claimed) (unlock func(), ok bool, err error) {
	locker, shared := in.s.journal.(journal.Locker)
	if !shared {
		return watcher.Lock(c.Path)
	}
	l, ok, err := locker.TryLock(ctx, "file:"+c.ID)
	if err != nil || !ok {
		return nil, false, err
	}
	if !exists(c.Path) {
		l.Unlock()
		return nil, false, nil
	}
	return l.Unlock, true, nil
}

func fileHash(path string) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (in *inbox) readOptions(c watcher.Claimed) transform.Options {
	opt := in.topt
	opt.Now = in.s.opt.Now
	opt.FileDate = c.At.In(in.s.cfg.Location())
	opt.Name = c.Name
	return opt
}
