// Retention: what belongs to files archived long ago - their rows, their
// messages' ACKs - can be forgotten; what each registry holds (accepted)
// is kept, so a file dropped again is still not sent twice.

package journal

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ArchivedBefore returns an inbox's files archived before a time, the
// oldest first.
func (j *Journal) ArchivedBefore(ctx context.Context, inbox string, before time.Time) ([]File, error) {
	return j.files(ctx, `SELECT `+fileCols+` FROM files WHERE inbox = ? AND state = 'archived' AND updated_at < ? ORDER BY updated_at`,
		inbox, before.UTC().Format(time.RFC3339Nano))
}

// forgetChunk bounds the rows one transaction removes, so that a file of a
// million records does not hold the writes of the live service back.
var forgetChunk = 2000

// Forget removes an archived file from the journal: its records, messages
// and its own row, and gives the space back. It reports how many records
// it removed. A file that is not archived is left alone (ErrNotArchived).
func (j *Journal) Forget(ctx context.Context, claim string) (int, error) {
	total := 0
	for {
		var n int64
		done := false
		err := j.w.do(ctx, func(t *wtx) error {
			var file int64
			var state string
			if err := t.scan(`SELECT id, state FROM files WHERE claim = ?`, []any{claim}, &file, &state); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					done = true
					return nil
				}
				return err
			}
			if state != Archived {
				return ErrNotArchived
			}
			res, err := t.exec(`DELETE FROM records WHERE file = ? AND line IN (SELECT line FROM records WHERE file = ? ORDER BY line LIMIT ?)`, file, file, forgetChunk)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
			res, err = t.exec(`DELETE FROM messages WHERE file = ? AND seq IN (SELECT seq FROM messages WHERE file = ? ORDER BY seq LIMIT ?)`, file, file, forgetChunk)
			if err != nil {
				return err
			}
			m, err := res.RowsAffected()
			if err != nil || n > 0 || m > 0 {
				return err
			}
			for _, q := range []string{`DELETE FROM outbox WHERE file = ?`, `DELETE FROM files WHERE id = ?`} {
				if _, err := t.exec(q, file); err != nil {
					return err
				}
			}
			delete(t.w.files, claim)
			done = true
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if done {
			break
		}
	}
	err := j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`PRAGMA incremental_vacuum`)
		return err
	})
	return total, err
}

// ErrNotArchived is returned by Forget for a file not archived.
var ErrNotArchived = errors.New("journal: the file is not archived")
