// Waiting notes: a file that waits in work/ for the registry gets a note
// beside it, <claim>.waiting.txt, saying why in plain words, so the person
// who dropped it sees what is going on without reading logs. The note goes
// when the file is filed. It is named without "--", so it is never taken
// for a claimed export.

package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/izdrop/izdrop/internal/durable"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/watcher"
)

const waitingSuffix = ".waiting.txt"

func waitingNote(c watcher.Claimed) string {
	return filepath.Join(filepath.Dir(c.Path), c.ID+waitingSuffix)
}

// writeWaitingNote says why a file's records wait. A note that cannot be
// written is logged, never a reason to stop.
func (in *inbox) writeWaitingNote(ctx context.Context, f journal.File, c watcher.Claimed, stopped bool) {
	j := in.s.journal
	counts, err := j.Counts(ctx, f.Claim)
	if err != nil {
		return
	}
	msgs, err := j.SendingMessages(ctx, f.Claim)
	if err != nil {
		return
	}
	why := "the registry has not answered yet"
	attempts := 0
	for _, m := range msgs {
		attempts += m.Attempts
		if m.LastError != "" {
			why = m.LastError
			break
		}
	}
	if stopped {
		why = "izdrop was stopped while sending this file; it resumes where it stopped at the next start"
	}
	answered := 0
	for k, n := range counts {
		if k != "" {
			answered += n
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "izdrop: %s waits for the registry (endpoint %s, %s).\n\n", c.Name, in.ep.name, in.ep.environment)
	fmt.Fprintf(&b, "Why:      %s\n", why)
	fmt.Fprintf(&b, "As of:    %s\n", in.s.opt.Now().In(in.s.cfg.Location()).Format("2006-01-02 15:04:05 -07:00"))
	fmt.Fprintf(&b, "Records:  %d with their outcome, %d waiting (%d message(s) unanswered, %d attempt(s) so far)\n\n", answered, counts[""], len(msgs), attempts)
	b.WriteString("Nothing is lost: the file stays here and its records are sent when the registry answers again,\n" +
		"each message with the same MSH-10. Records already answered are not sent twice.\n")
	fmt.Fprintf(&b, "Every record's state: izdrop find %s\n", c.Name)
	if err := durable.WriteFile(waitingNote(c), 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, b.String())
		return err
	}); err != nil {
		in.log.Warn().Err(err).Str("file", c.Name).Msg("the waiting note could not be written")
	}
}

// removeWaitingNote is called once a file is filed.
func removeWaitingNote(c watcher.Claimed) {
	os.Remove(waitingNote(c))
}

// cleanWaitingNotes removes the notes of files no longer in work/ (filed
// by a run that stopped before removing the note).
func cleanWaitingNotes(work string, claimed []watcher.Claimed) {
	notes, _ := filepath.Glob(filepath.Join(work, "*"+waitingSuffix))
	if len(notes) == 0 {
		return
	}
	live := make(map[string]bool, len(claimed))
	for _, c := range claimed {
		live[c.ID] = true
	}
	for _, n := range notes {
		if id := strings.TrimSuffix(filepath.Base(n), waitingSuffix); !live[id] && !strings.Contains(id, "--") {
			os.Remove(n)
		}
	}
}
