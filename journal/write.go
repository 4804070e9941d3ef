// Writes: each runs in the group-committing writer (writer.go) and
// returns once it is durable.

package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AddFile records a claimed file; it does nothing if the claim is known.
func (j *Journal) AddFile(ctx context.Context, f File) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`INSERT INTO files(claim, inbox, name, work_path, sha256, size, claimed_at, state, updated_at)
			VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(claim) DO NOTHING`,
			f.Claim, f.Inbox, f.Name, f.WorkPath, f.SHA256, f.Size, f.ClaimedAt.UTC().Format(time.RFC3339Nano), Claimed, now())
		return err
	})
}

// SetFile updates a file's state and, when not empty, its result, archive
// path and error.
func (j *Journal) SetFile(ctx context.Context, claim, state, result, archivePath, errText string) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE files SET state = ?,
			result = CASE WHEN ? = '' THEN result ELSE ? END,
			archive_path = CASE WHEN ? = '' THEN archive_path ELSE ? END,
			error = CASE WHEN ? = '' THEN error ELSE ? END,
			updated_at = ? WHERE claim = ?`, state, result, result, archivePath, archivePath, errText, errText, now(), claim)
		return err
	})
}

// SetFileHash records the file's content hash and size.
func (j *Journal) SetFileHash(ctx context.Context, claim, sha string, size int64) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE files SET sha256 = ?, size = ?, updated_at = ? WHERE claim = ?`, sha, size, now(), claim)
		return err
	})
}

// StartMessage commits a message and its records before anything is sent.
// With state Sending the message will be sent (and resent after a crash)
// with m's MSH-10, MSH-7, lines and raw bytes; with state Done it is
// complete already (nothing to send). A message already started is left as
// it is. recs must be the message's records in line order; if another
// message of the file holds a line in their span, nothing is written and
// ErrLinesTaken is returned.
func (j *Journal) StartMessage(ctx context.Context, m Message, recs []Record) error {
	err := j.w.do(ctx, startOp(Start{m, recs}))
	if errors.Is(err, ErrStarted) {
		return nil
	}
	return err
}

// StartMessages is StartMessage for many messages at once, sharing commits;
// it returns each one's error: nil (journalled as given), ErrStarted (it
// was there already, and is left as it was), ErrDuplicateControlID,
// ErrLinesTaken, or why the commit failed.
func (j *Journal) StartMessages(ctx context.Context, starts []Start) []error {
	ops := make([]*op, len(starts))
	for i, s := range starts {
		ops[i] = j.w.submit(ctx, startOp(s))
	}
	errs := make([]error, len(starts))
	for i, o := range ops {
		errs[i] = j.w.wait(o)
	}
	return errs
}

func startOp(s Start) func(*wtx) error {
	return func(t *wtx) error {
		m, recs := s.Message, s.Records
		file, ferr := t.fileID(m.Claim)
		if ferr != nil {
			return ferr
		}
		var msh10 any
		if m.MSH10 != "" {
			msh10 = m.MSH10
		}
		var msh7 string
		if !m.MSH7.IsZero() && m.State != Done {
			msh7 = m.MSH7.Format(time.RFC3339Nano)
		}
		first, last := -1, -1 // no records: no span to check
		if len(recs) > 0 {
			first, last = recs[0].Line, recs[len(recs)-1].Line
		}
		// One statement writes the message unless it was started before or
		// another message of the file holds a line of its span; which one,
		// is looked up only then.
		res, err := t.exec(`INSERT INTO messages(file, seq, msh10, msh7, lines, state, outcome, sent_at)
			SELECT ?,?,?,?,?,?,?,? WHERE NOT EXISTS (SELECT 1 FROM records WHERE file = ? AND line BETWEEN ? AND ? AND seq != ?)
			ON CONFLICT(file, seq) DO NOTHING`, file, m.Seq, msh10, msh7, encodeLines(m.Lines), m.State, m.Outcome, time.Now().UnixMilli(),
			file, first, last, m.Seq)
		if err != nil {
			if isUnique(err) {
				return ErrDuplicateControlID
			}
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return err
			}
			var taken int
			if err := t.scan(`SELECT COUNT(*) FROM records WHERE file = ? AND line BETWEEN ? AND ? AND seq != ?`,
				[]any{file, first, last, m.Seq}, &taken); err != nil {
				return err
			}
			if taken > 0 {
				return ErrLinesTaken
			}
			return ErrStarted
		}
		if len(m.Raw) > 0 && m.State != Done {
			if _, err := t.exec(`INSERT OR REPLACE INTO outbox(file, seq, raw) VALUES(?,?,?)`, file, m.Seq, m.Raw); err != nil {
				return err
			}
		}
		// Up to insertRows records a statement.
		args := make([]any, 0, min(len(recs), insertRows)*recordArgs)
		for i, r := range recs {
			sent := slices.Contains(m.Lines, r.Line)
			own, hash := r.MSH10, any("")
			if own == m.MSH10 {
				own = ""
			}
			if r.Outcome == "" {
				hash = packHash(r.ContentHash)
			}
			args = append(args, file, r.Line, m.Seq, r.Site, r.PatientID, r.VaccinationID, r.Action, hash, r.Outcome, sent, own, r.Problems, r.Start, r.End)
			if len(args) == cap(args) || i == len(recs)-1 {
				if _, err := t.exec(insertRecords[len(args)/recordArgs], args...); err != nil {
					return err
				}
				args = args[:0]
			}
		}
		return nil
	}
}

// insertRecords[n] inserts n records.
var insertRecords = func() []string {
	out := make([]string, insertRows+1)
	for n := 1; n <= insertRows; n++ {
		var b strings.Builder
		b.WriteString(`INSERT INTO records(file, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, sent, msh10, problems, start_offset, end_offset) VALUES`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
		}
		b.WriteString(` ON CONFLICT(file, line) DO NOTHING`)
		out[n] = b.String()
	}
	return out
}()

const (
	insertRows = 8
	recordArgs = 14
)

// fileID returns a claim's number; a claim never added (AddFile) gets a
// file row of its own.
func (t *wtx) fileID(claim string) (int64, error) {
	if id, ok := t.w.files[claim]; ok {
		return id, nil
	}
	var id int64
	err := t.scan(`SELECT id FROM files WHERE claim = ?`, []any{claim}, &id)
	if errors.Is(err, sql.ErrNoRows) {
		var res sql.Result
		res, err = t.exec(`INSERT INTO files(claim, inbox, name, work_path, claimed_at, state, updated_at) VALUES(?, '', '', '', '', ?, ?)`, claim, Claimed, now())
		if err == nil {
			id, err = res.LastInsertId()
		}
	}
	if err != nil {
		return 0, err
	}
	t.w.files[claim] = id
	return id, nil
}

// knownFileID is fileID for a claim that must be there: ok is false if it
// is not.
func (t *wtx) knownFileID(claim string) (id int64, ok bool, err error) {
	if id, ok := t.w.files[claim]; ok {
		return id, true, nil
	}
	err = t.scan(`SELECT id FROM files WHERE claim = ?`, []any{claim}, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	t.w.files[claim] = id
	return id, true, nil
}

// registryID returns a registry's number, numbering it if it is new.
func (t *wtx) registryID(name string) (int64, error) {
	if id, ok := t.w.registries[name]; ok {
		return id, nil
	}
	var id int64
	err := t.scan(`SELECT id FROM registries WHERE name = ?`, []any{name}, &id)
	if errors.Is(err, sql.ErrNoRows) {
		var res sql.Result
		res, err = t.exec(`INSERT INTO registries(name) VALUES(?)`, name)
		if err == nil {
			id, err = res.LastInsertId()
		}
	}
	if err != nil {
		return 0, err
	}
	t.w.registries[name] = id
	return id, nil
}

// FinishMessage commits a message's answer from registry (an endpoint's
// identity) and its records' outcomes, and remembers the stored ones as
// held by that registry for their site and vaccination id. outs holds one
// outcome for each line the message carries (Message.Lines). The message's
// bytes are let go: it is never sent again.
func (j *Journal) FinishMessage(ctx context.Context, registry, claim string, seq int, outcome, ackText string, attempts int, outs []Outcome) error {
	ack := packACK(ackText)
	return j.w.do(ctx, func(t *wtx) error {
		file, ok, err := t.knownFileID(claim)
		if err != nil || !ok {
			return err // nothing journalled for it: nothing to finish
		}
		var reg int64
		if registry != "" {
			var err error
			if reg, err = t.registryID(registry); err != nil {
				return err
			}
		}
		at := time.Now().UnixMilli()
		if _, err := t.exec(`UPDATE messages SET state = 'done', outcome = ?, ack = ?, attempts = attempts + ?, done_at = ?, registry = ?,
			last_error = '', msh7 = '' WHERE file = ? AND seq = ?`, outcome, ack, attempts, at, reg, file, seq); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM outbox WHERE file = ? AND seq = ?`, file, seq); err != nil {
			return err
		}
		var accReg int64
		for _, o := range outs {
			if o.Stored {
				// Stored with no registry named: kept as a legacy
				// acceptance, which stops no send.
				var err error
				if accReg, err = t.registryID(registry); err != nil {
					return err
				}
				break
			}
		}
		// A record sent in the message has the message's MSH-10 unless it
		// names its own.
		const accept = `INSERT INTO accepted(registry, site, vaccination_id, content_hash, msh10, file, at)
			SELECT ?, r.site, r.vaccination_id, r.content_hash,
				CASE WHEN r.msh10 != '' OR NOT r.sent THEN r.msh10 ELSE COALESCE((SELECT m.msh10 FROM messages m WHERE m.file = r.file AND m.seq = r.seq), '') END,
				r.file, ? FROM records r `
		const upsert = ` ON CONFLICT(registry, site, vaccination_id) DO UPDATE SET content_hash = excluded.content_hash, msh10 = excluded.msh10,
				file = excluded.file, at = excluded.at`
		if uniform(outs) {
			// The common answer: one outcome for every record the message
			// carried, nothing to add to their problems - two statements,
			// whatever the number of records.
			if outs[0].Stored {
				if _, err := t.exec(accept+`INDEXED BY records_seq WHERE r.file = ? AND r.seq = ? AND r.sent AND r.vaccination_id != ''`+upsert,
					accReg, at, file, seq); err != nil {
					return err
				}
			}
			res, err := t.exec(`UPDATE records INDEXED BY records_seq SET outcome = ?, content_hash = '' WHERE file = ? AND seq = ? AND sent`,
				outs[0].Outcome, file, seq)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != int64(len(outs)) {
				return fmt.Errorf("journal: message %d of %s carries %d records, %d outcomes given: %w", seq, claim, n, len(outs), err)
			}
			return nil
		}
		for _, o := range outs {
			if o.Stored {
				if _, err := t.exec(accept+`WHERE r.file = ? AND r.line = ? AND r.vaccination_id != ''`+upsert, accReg, at, file, o.Line); err != nil {
					return err
				}
			}
			// Two JSON arrays join into one: [a,b] + [c] = [a,b,c].
			if _, err := t.exec(`UPDATE records SET outcome = ?, content_hash = '', problems = CASE
				WHEN ? = '' THEN problems WHEN problems = '' THEN ?
				ELSE substr(problems, 1, length(problems) - 1) || ',' || substr(?, 2) END
				WHERE file = ? AND line = ?`, o.Outcome, o.Problems, o.Problems, o.Problems, file, o.Line); err != nil {
				return err
			}
		}
		return nil
	})
}

// uniform reports whether outs are one outcome, with no problems to add.
func uniform(outs []Outcome) bool {
	if len(outs) == 0 {
		return false
	}
	for _, o := range outs {
		if o.Problems != "" || o.Outcome != outs[0].Outcome || o.Stored != outs[0].Stored {
			return false
		}
	}
	return true
}

// AddAttempts counts failed tries of a message that is still pending, and
// keeps why it is (no patient data: an error class and text from the
// transport or the registry).
func (j *Journal) AddAttempts(ctx context.Context, claim string, seq, n int, why string) error {
	return j.w.do(ctx, func(t *wtx) error {
		_, err := t.exec(`UPDATE messages SET attempts = attempts + ?, last_error = ? WHERE file = `+fileID+` AND seq = ?`, n, why, claim, seq)
		return err
	})
}
