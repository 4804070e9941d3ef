// Reading: a claimed file's messages streamed to the scheduler, and the
// checks that a file read again after a stop reads as it did.

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

// readAndSend streams the file's messages to the scheduler and waits for
// their fates. fileErr is set when the file cannot be read (any more): the
// messages started before are then finished from the journal and the file
// is filed as failed. err is a reason to try again later (an I/O error).
func (in *inbox) readAndSend(ctx context.Context, sc *sched, f journal.File, c watcher.Claimed, log zerolog.Logger) (pending bool, fileErr string, err error) {
	j := in.s.journal
	counts, err := j.Counts(ctx, f.Claim)
	if err != nil {
		return false, "", err
	}
	resumed := len(counts) > 0
	if resumed && f.SHA256 != "" {
		sum, _, err := fileHash(c.Path)
		if err != nil {
			return false, "", err
		}
		if sum != f.SHA256 {
			return in.finishFromJournal(ctx, sc, f, fmt.Sprintf("the file in work/ is not the one taken up (sha256 %s, was %s)", sum, f.SHA256), log)
		}
	}
	r, err := transform.Open(c.Path, in.readOptions(c))
	var fe *transform.FileError
	if errors.As(err, &fe) && !fe.Transient() {
		if !resumed {
			return false, fe.Error(), nil
		}
		return in.finishFromJournal(ctx, sc, f, fe.Error(), log)
	}
	if err != nil {
		return false, "", err
	}
	defer r.Close()
	if resumed {
		// The file was read before: make sure it reads the same now, so a
		// record is never put into a second message.
		why, err := in.verify(ctx, f, c)
		if err != nil {
			return false, "", err
		}
		if why != "" {
			return in.finishFromJournal(ctx, sc, f, why, log)
		}
	}
	var b batch
	var differs atomic.Bool
	prog := in.s.progress.start(in.name, c.Name, c.ID, f.Size, in.s.opt.Now())
	defer in.s.progress.end(c.ID)
	// A file read for the first time has its messages journalled ahead of
	// their sending, many to a commit; one read before, each in its turn
	// (deliver follows what the journal holds of it).
	var a *ahead
	if !resumed {
		a = in.startAhead(ctx, sc, &b, f, &differs)
	}
	for ctx.Err() == nil && !differs.Load() {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if a != nil {
				a.close()
			}
			b.wait()
			return false, "", err
		}
		prog.records.Add(int64(len(m.Records)))
		prog.read.Store(m.Records[len(m.Records)-1].End)
		key := m.SiteID + "\x00" + m.PatientID
		if m.PatientID == "" {
			key = fmt.Sprintf("%s\x00line %d", c.ID, m.Records[0].Line)
		}
		if a != nil {
			a.add(key, m, prog)
			continue
		}
		b.start(ctx, sc, key, func(finish func(bool)) {
			in.deliver(ctx, f, m, &differs, prog.counting(len(m.Records), finish))
		})
	}
	if a != nil {
		a.close()
	}
	prog.read.Store(f.Size)
	pending = b.wait()
	if differs.Load() {
		// verify catches it at the next pass; meanwhile no newer file may
		// overtake the records not sent.
		return false, "", errors.New("the file reads differently than when its first messages were started")
	}
	if ctx.Err() != nil {
		pending = true
	}
	return pending, "", nil
}

// verify reads a file that was read before and checks that each message
// holds the lines it held when it was started, and that no new message
// holds a line of a started one. It returns why not, if not.
func (in *inbox) verify(ctx context.Context, f journal.File, c watcher.Claimed) (string, error) {
	j := in.s.journal
	sending, err := j.SendingMessages(ctx, f.Claim)
	if err != nil {
		return "", err
	}
	unseen := make(map[int]bool, len(sending))
	for _, m := range sending {
		unseen[m.Seq] = true
	}
	r, err := transform.Open(c.Path, in.readOptions(c))
	if err != nil {
		return "", err
	}
	defer r.Close()
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		first, last := m.Records[0].Line, m.Records[len(m.Records)-1].Line
		jf, jl, n, err := j.MessageSpan(ctx, f.Claim, m.Seq)
		if err != nil {
			return "", err
		}
		if n > 0 && (jf != first || jl != last || n != len(m.Records)) {
			return fmt.Sprintf("message %d now holds lines %d-%d; when it was sent it held lines %d-%d", m.Seq, first, last, jf, jl), nil
		}
		if n == 0 {
			taken, err := j.LinesIn(ctx, f.Claim, first, last)
			if err != nil {
				return "", err
			}
			if taken > 0 {
				return fmt.Sprintf("lines %d-%d now form message %d, but some were sent in another message", first, last, m.Seq), nil
			}
		}
		delete(unseen, m.Seq)
	}
	for _, m := range sending { // in message order
		if unseen[m.Seq] {
			return fmt.Sprintf("message %d, sent before, is not in the file as it reads now", m.Seq), nil
		}
	}
	return "", nil
}

// finishFromJournal is for a file that cannot be read as it was when its
// first messages were started (it became unreadable, or its profile or
// izdrop changed): the messages started are finished from the journal with
// the bytes first sent, and the file is filed as failed with why.
func (in *inbox) finishFromJournal(ctx context.Context, sc *sched, f journal.File, why string, log zerolog.Logger) (pending bool, fileErr string, err error) {
	msgs, err := in.s.journal.SendingMessages(ctx, f.Claim)
	if err != nil {
		return false, "", err
	}
	log.Error().Str("reason", why).Int("unanswered", len(msgs)).
		Msg("the file no longer reads as when its first messages were sent: those are finished from the journal, the rest is not sent, and the file goes to failed/")
	var b batch
	for _, row := range msgs {
		key := row.Site + "\x00" + row.PatientID
		if row.PatientID == "" {
			key = fmt.Sprintf("%s\x00message %d", f.Claim, row.Seq)
		}
		b.start(ctx, sc, key, func(finish func(bool)) {
			if ctx.Err() != nil {
				finish(false) // stopping: nothing new is sent (as deliver does)
				return
			}
			in.send(ctx, f, row, nil, finish)
		})
	}
	pending = b.wait()
	if ctx.Err() != nil {
		pending = true
	}
	return pending, why, nil
}
