// Package journal is izdrop's memory: an embedded, crash-safe record of
// every file claimed and every record in it - content hash, vaccination id,
// MSH-10, attempts, outcome and the registry's ACK. It is what makes a
// restart resume where the last run stopped, what keeps an accepted record
// from being sent twice, and what answers "what became of this file / this
// vaccination?" without reading logs.
//
// It is SQLite (modernc.org/sqlite, pure Go) rather than bbolt because two
// izdrop processes may share one inbox and one journal: SQLite in WAL mode
// lets both write (serialised, with a busy timeout) and lets `izdrop`
// commands read while a service runs, where bbolt holds an exclusive file
// lock; and the journal is queried by file name, vaccination id and MSH-10,
// which SQL indexes serve directly. synchronous=FULL makes every commit
// durable before the call returns: the service commits a message's MSH-10
// and content before sending it and its outcome before moving on.
// A commit measured ~0.2 ms on this project's CI machines (two per message),
// so writes are plain transactions, not batched.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite"
)

// Journal is an open journal, safe for concurrent use.
type Journal struct {
	db   *sql.DB
	path string
}

const schema = `
CREATE TABLE IF NOT EXISTS files (
	claim        TEXT PRIMARY KEY,
	inbox        TEXT NOT NULL,
	name         TEXT NOT NULL,
	work_path    TEXT NOT NULL,
	sha256       TEXT NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	claimed_at   TEXT NOT NULL,
	state        TEXT NOT NULL,
	result       TEXT NOT NULL DEFAULT '',
	archive_path TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	updated_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_name ON files(name);
CREATE TABLE IF NOT EXISTS messages (
	claim     TEXT NOT NULL,
	seq       INTEGER NOT NULL,
	msh10     TEXT UNIQUE,
	msh7      TEXT NOT NULL DEFAULT '',
	lines     TEXT NOT NULL DEFAULT '',
	state     TEXT NOT NULL,
	outcome   TEXT NOT NULL DEFAULT '',
	attempts  INTEGER NOT NULL DEFAULT 0,
	ack       TEXT NOT NULL DEFAULT '',
	raw       BLOB NOT NULL DEFAULT x'',
	sent_at   TEXT NOT NULL DEFAULT '',
	done_at   TEXT NOT NULL DEFAULT '',
	registry  TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (claim, seq)
);
CREATE TABLE IF NOT EXISTS records (
	claim          TEXT NOT NULL,
	line           INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	site           TEXT NOT NULL,
	patient_id     TEXT NOT NULL,
	vaccination_id TEXT NOT NULL,
	action         TEXT NOT NULL,
	content_hash   TEXT NOT NULL,
	outcome        TEXT NOT NULL DEFAULT '',
	msh10          TEXT NOT NULL DEFAULT '',
	problems       TEXT NOT NULL DEFAULT '',
	start_offset   INTEGER NOT NULL DEFAULT 0,
	end_offset     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (claim, line)
);
CREATE INDEX IF NOT EXISTS records_seq ON records(claim, seq, line);
CREATE INDEX IF NOT EXISTS records_vid ON records(vaccination_id);
CREATE INDEX IF NOT EXISTS records_msh10 ON records(msh10);
CREATE TABLE IF NOT EXISTS accepted (
	registry       TEXT NOT NULL,
	site           TEXT NOT NULL,
	vaccination_id TEXT NOT NULL,
	content_hash   TEXT NOT NULL,
	msh10          TEXT NOT NULL,
	claim          TEXT NOT NULL,
	at             TEXT NOT NULL,
	PRIMARY KEY (registry, site, vaccination_id)
);
CREATE TABLE IF NOT EXISTS refusals (
	registry    TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	reason      TEXT NOT NULL,
	at          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS testplan_runs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	endpoint    TEXT NOT NULL,
	registry    TEXT NOT NULL,
	environment TEXT NOT NULL,
	site        TEXT NOT NULL,
	at          TEXT NOT NULL,
	cases       INTEGER NOT NULL,
	failed      TEXT NOT NULL DEFAULT ''
);
`

// Open opens (creating if needed) the journal at path; the file and its
// folder are private to the user (0600/0700).
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
		f.Close()
	}
	// busy_timeout first: the pragmas run in order, and switching a new file
	// to WAL takes a lock another process starting at once may hold.
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(8)
	// Turning a new file to WAL mode needs the file to itself, and SQLite
	// answers "busy" at once rather than wait when another process starting
	// at the same instant has it open: try again for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = setUp(db)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{db: db, path: path}, nil
}

// isBusy reports SQLITE_BUSY (database is locked) and its extended codes.
func isBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// setUp creates the schema, or brings a journal written by an earlier
// izdrop to it, in one write transaction taken before anything is read: two
// processes starting at once would otherwise both read "no table yet" and
// one would fail its write ("database is locked") instead of waiting.
func setUp(db *sql.DB) error {
	tx, err := db.Begin() // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	if _, err := tx.Exec(statusSchema); err != nil {
		return err
	}
	var hasRaw int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'raw'`).Scan(&hasRaw); err != nil {
		return err
	}
	if hasRaw == 0 {
		// Messages started before raw bytes were kept are encoded again
		// from their file when resent (see the service).
		if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN raw BLOB NOT NULL DEFAULT x''`); err != nil {
			return err
		}
	}
	for _, col := range []string{"registry", "last_error"} {
		var has int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = ?`, col).Scan(&has); err != nil {
			return err
		}
		if has == 0 {
			if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN ` + col + ` TEXT NOT NULL DEFAULT ''`); err != nil {
				return err
			}
		}
	}
	var hasRegistry int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('accepted') WHERE name = 'registry'`).Scan(&hasRegistry); err != nil {
		return err
	}
	if hasRegistry == 0 {
		// Acceptances journalled before they named their registry: nobody
		// knows which registry holds them, so they keep registry '' and
		// stop no send (see Accepted).
		if _, err := tx.Exec(`ALTER TABLE accepted RENAME TO accepted_v1;
			CREATE TABLE accepted (
				registry TEXT NOT NULL, site TEXT NOT NULL, vaccination_id TEXT NOT NULL, content_hash TEXT NOT NULL,
				msh10 TEXT NOT NULL, claim TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (registry, site, vaccination_id));
			INSERT INTO accepted SELECT '', site, vaccination_id, content_hash, msh10, claim, at FROM accepted_v1;
			DROP TABLE accepted_v1;`); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Close closes the journal.
func (j *Journal) Close() error { return j.db.Close() }

// File states.
const (
	Claimed   = "claimed"   // in work/, not yet read
	Reading   = "reading"   // being read and sent
	Pending   = "pending"   // waiting for the registry: some messages have no outcome
	Archiving = "archiving" // outcomes complete; sidecars and move in progress
	Archived  = "archived"  // in done/ or failed/
)

// Message states.
const (
	Sending = "sending" // committed before the send: resend with the same MSH-10
	Done    = "done"    // has its outcome
)

// File is one claimed file.
type File struct {
	Claim       string    `json:"claim"`
	Inbox       string    `json:"inbox"`
	Name        string    `json:"name"`
	WorkPath    string    `json:"work_path"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	ClaimedAt   time.Time `json:"claimed_at"`
	State       string    `json:"state"`
	Result      string    `json:"result,omitempty"` // done or failed
	ArchivePath string    `json:"archive_path,omitempty"`
	Error       string    `json:"error,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Message is one VXU of a file.
type Message struct {
	Claim    string
	Seq      int
	MSH10    string // empty when nothing was sent (every record invalid or already accepted)
	MSH7     time.Time
	Lines    []int  // the lines (records) the VXU carries
	Raw      []byte // the VXU as first sent: a resend sends these bytes
	State    string
	Outcome  string
	Attempts int
	ACK      string
	// Registry is the identity of the registry that answered; LastError
	// why the last try did not get an answer (while it waits).
	Registry, LastError string
	// Site and PatientID are the patient's, from the message's records
	// (read only).
	Site, PatientID string
}

// Record is one row of a file.
type Record struct {
	Claim         string `json:"-"`
	Line          int    `json:"line"`
	Seq           int    `json:"message"`
	Site          string `json:"site"`
	PatientID     string `json:"patient_id"`
	VaccinationID string `json:"vaccination_id"`
	Action        string `json:"action"`
	ContentHash   string `json:"content_hash"`
	Outcome       string `json:"outcome"`
	MSH10         string `json:"msh10,omitempty"`
	Problems      string `json:"-"` // JSON, see the service
	Start, End    int64  `json:"-"` // the row's bytes in the (decoded) file
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// AddFile records a claimed file; it does nothing if the claim is known.
func (j *Journal) AddFile(ctx context.Context, f File) error {
	_, err := j.db.ExecContext(ctx, `INSERT INTO files(claim, inbox, name, work_path, sha256, size, claimed_at, state, updated_at)
		VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(claim) DO NOTHING`,
		f.Claim, f.Inbox, f.Name, f.WorkPath, f.SHA256, f.Size, f.ClaimedAt.UTC().Format(time.RFC3339Nano), Claimed, now())
	return err
}

// ErrNotFound is returned for an unknown file or message.
var ErrNotFound = errors.New("journal: not found")

const fileCols = `claim, inbox, name, work_path, sha256, size, claimed_at, state, result, archive_path, error, updated_at`

func scanFile(sc interface{ Scan(...any) error }) (File, error) {
	var f File
	var claimed, updated string
	err := sc.Scan(&f.Claim, &f.Inbox, &f.Name, &f.WorkPath, &f.SHA256, &f.Size, &claimed, &f.State, &f.Result, &f.ArchivePath, &f.Error, &updated)
	f.ClaimedAt, f.UpdatedAt = parseTime(claimed), parseTime(updated)
	return f, err
}

// GetFile returns a file by claim id.
func (j *Journal) GetFile(ctx context.Context, claim string) (File, error) {
	f, err := scanFile(j.db.QueryRowContext(ctx, `SELECT `+fileCols+` FROM files WHERE claim = ?`, claim))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	return f, err
}

// SetFile updates a file's state and, when not empty, its result, archive
// path and error.
func (j *Journal) SetFile(ctx context.Context, claim, state, result, archivePath, errText string) error {
	_, err := j.db.ExecContext(ctx, `UPDATE files SET state = ?,
		result = CASE WHEN ? = '' THEN result ELSE ? END,
		archive_path = CASE WHEN ? = '' THEN archive_path ELSE ? END,
		error = CASE WHEN ? = '' THEN error ELSE ? END,
		updated_at = ? WHERE claim = ?`, state, result, result, archivePath, archivePath, errText, errText, now(), claim)
	return err
}

// SetFileHash records the file's content hash and size.
func (j *Journal) SetFileHash(ctx context.Context, claim, sha string, size int64) error {
	_, err := j.db.ExecContext(ctx, `UPDATE files SET sha256 = ?, size = ?, updated_at = ? WHERE claim = ?`, sha, size, now(), claim)
	return err
}

// FilesInState returns an inbox's files in a state, oldest claim first.
func (j *Journal) FilesInState(ctx context.Context, inbox, state string) ([]File, error) {
	return j.files(ctx, `SELECT `+fileCols+` FROM files WHERE inbox = ? AND state = ? ORDER BY claim`, inbox, state)
}

// FilesByName returns the files with a given original name, newest first.
func (j *Journal) FilesByName(ctx context.Context, name string) ([]File, error) {
	return j.files(ctx, `SELECT `+fileCols+` FROM files WHERE name = ? ORDER BY claimed_at DESC`, name)
}

func (j *Journal) files(ctx context.Context, query string, args ...any) ([]File, error) {
	rows, err := j.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

const messageCols = `m.claim, m.seq, m.msh10, m.msh7, m.lines, m.raw, m.state, m.outcome, m.attempts, m.ack, m.registry, m.last_error,
	COALESCE((SELECT r.site FROM records r WHERE r.claim = m.claim AND r.seq = m.seq ORDER BY r.line LIMIT 1), ''),
	COALESCE((SELECT r.patient_id FROM records r WHERE r.claim = m.claim AND r.seq = m.seq ORDER BY r.line LIMIT 1), '')`

func scanMessage(sc interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var msh10 sql.NullString
	var msh7, lines string
	err := sc.Scan(&m.Claim, &m.Seq, &msh10, &msh7, &lines, &m.Raw, &m.State, &m.Outcome, &m.Attempts, &m.ACK, &m.Registry, &m.LastError, &m.Site, &m.PatientID)
	m.MSH10, m.MSH7, m.Lines = msh10.String, parseTime(msh7), decodeLines(lines)
	return m, err
}

// GetMessage returns a message of a file.
func (j *Journal) GetMessage(ctx context.Context, claim string, seq int) (Message, error) {
	m, err := scanMessage(j.db.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages m WHERE m.claim = ? AND m.seq = ?`, claim, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}

// LinesIn counts a file's journalled records from line first to line last.
func (j *Journal) LinesIn(ctx context.Context, claim string, first, last int) (int, error) {
	var n int
	err := j.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE claim = ? AND line BETWEEN ? AND ?`, claim, first, last).Scan(&n)
	return n, err
}

// SendingMessages returns a file's messages started but not answered, in
// message order.
func (j *Journal) SendingMessages(ctx context.Context, claim string) ([]Message, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+messageCols+` FROM messages m WHERE m.claim = ? AND m.state = ? ORDER BY m.seq`, claim, Sending)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MessageSpan returns the first and last line and the number of records
// a started message holds (all of them: sent, invalid, already accepted).
func (j *Journal) MessageSpan(ctx context.Context, claim string, seq int) (first, last, n int, err error) {
	err = j.db.QueryRowContext(ctx, `SELECT COALESCE(MIN(line), 0), COALESCE(MAX(line), 0), COUNT(*) FROM records WHERE claim = ? AND seq = ?`, claim, seq).
		Scan(&first, &last, &n)
	return first, last, n, err
}

// ErrDuplicateControlID is returned when a new MSH-10 is already taken.
var ErrDuplicateControlID = errors.New("journal: MSH-10 already used")

// ErrLinesTaken is returned when a new message would hold a line that
// another message of the file holds already: the file no longer reads as
// it did when that message was started (its profile, the code tables or
// izdrop changed), and sending would send those records twice.
var ErrLinesTaken = errors.New("journal: lines already in another message of the file")

// StartMessage commits a message and its records before anything is sent.
// With state Sending the message will be sent (and resent after a crash)
// with m's MSH-10, MSH-7, lines and raw bytes; with state Done it is
// complete already (nothing to send). A message already started is left as
// it is. recs must be the message's records in line order; if another
// message of the file holds a line in their span, nothing is written and
// ErrLinesTaken is returned.
func (j *Journal) StartMessage(ctx context.Context, m Message, recs []Record) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var msh10 any
	if m.MSH10 != "" {
		msh10 = m.MSH10
	}
	var msh7 string
	if !m.MSH7.IsZero() {
		msh7 = m.MSH7.Format(time.RFC3339Nano)
	}
	if len(recs) > 0 {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE claim = ? AND line BETWEEN ? AND ? AND seq != ?`,
			m.Claim, recs[0].Line, recs[len(recs)-1].Line, m.Seq).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return ErrLinesTaken
		}
	}
	raw := m.Raw
	if raw == nil {
		raw = []byte{}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages(claim, seq, msh10, msh7, lines, raw, state, outcome, sent_at) VALUES(?,?,?,?,?,?,?,?,?)
		ON CONFLICT(claim, seq) DO NOTHING`, m.Claim, m.Seq, msh10, msh7, encodeLines(m.Lines), raw, m.State, m.Outcome, now())
	if err != nil {
		if isUnique(err) {
			return ErrDuplicateControlID
		}
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO records(claim, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, msh10, problems, start_offset, end_offset)
			VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(claim, line) DO NOTHING`,
			m.Claim, r.Line, m.Seq, r.Site, r.PatientID, r.VaccinationID, r.Action, r.ContentHash, r.Outcome, r.MSH10, r.Problems, r.Start, r.End); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Outcome is a record's final fate, for FinishMessage.
type Outcome struct {
	Line     int
	Outcome  string
	Problems string // JSON array, appended to the problems recorded at the start
	Stored   bool   // the registry now holds this content: remember it as accepted
}

// FinishMessage commits a message's answer from registry (an endpoint's
// identity) and its records' outcomes, and remembers the stored ones as
// held by that registry for their site and vaccination id.
func (j *Journal) FinishMessage(ctx context.Context, registry, claim string, seq int, outcome, ackText string, attempts int, outs []Outcome) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	t := now()
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = ?, outcome = ?, ack = ?, attempts = attempts + ?, done_at = ?, registry = ?, last_error = '' WHERE claim = ? AND seq = ?`,
		Done, outcome, ackText, attempts, t, registry, claim, seq); err != nil {
		return err
	}
	for _, o := range outs {
		// Two JSON arrays join into one: [a,b] + [c] = [a,b,c].
		if _, err := tx.ExecContext(ctx, `UPDATE records SET outcome = ?, problems = CASE
			WHEN ? = '' THEN problems WHEN problems = '' THEN ?
			ELSE substr(problems, 1, length(problems) - 1) || ',' || substr(?, 2) END
			WHERE claim = ? AND line = ?`, o.Outcome, o.Problems, o.Problems, o.Problems, claim, o.Line); err != nil {
			return err
		}
		if o.Stored {
			if _, err := tx.ExecContext(ctx, `INSERT INTO accepted(registry, site, vaccination_id, content_hash, msh10, claim, at)
				SELECT ?, site, vaccination_id, content_hash, msh10, claim, ? FROM records WHERE claim = ? AND line = ? AND vaccination_id != ''
				ON CONFLICT(registry, site, vaccination_id) DO UPDATE SET content_hash = excluded.content_hash, msh10 = excluded.msh10, claim = excluded.claim, at = excluded.at`,
				registry, t, claim, o.Line); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// AddAttempts counts failed tries of a message that is still pending, and
// keeps why it is (no patient data: an error class and text from the
// transport or the registry).
func (j *Journal) AddAttempts(ctx context.Context, claim string, seq, n int, why string) error {
	_, err := j.db.ExecContext(ctx, `UPDATE messages SET attempts = attempts + ?, last_error = ? WHERE claim = ? AND seq = ?`, n, why, claim, seq)
	return err
}

// Accepted returns the content hash and MSH-10 of the last content a
// registry (an endpoint's identity) stored for a site's vaccination id.
// What another registry holds - the sandbox, a staging endpoint - and
// acceptances journalled before registries were named, never count.
func (j *Journal) Accepted(ctx context.Context, registry, site, vaccinationID string) (hash, msh10 string, ok bool, err error) {
	err = j.db.QueryRowContext(ctx, `SELECT content_hash, msh10 FROM accepted WHERE registry = ? AND site = ? AND vaccination_id = ?`,
		registry, site, vaccinationID).Scan(&hash, &msh10)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	return hash, msh10, err == nil, err
}

const recordCols = `claim, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, msh10, problems, start_offset, end_offset`

func scanRecord(sc interface{ Scan(...any) error }) (Record, error) {
	var r Record
	err := sc.Scan(&r.Claim, &r.Line, &r.Seq, &r.Site, &r.PatientID, &r.VaccinationID, &r.Action, &r.ContentHash, &r.Outcome, &r.MSH10, &r.Problems, &r.Start, &r.End)
	return r, err
}

// Records calls fn for each record of a file, in line order, streaming.
func (j *Journal) Records(ctx context.Context, claim string, fn func(Record) error) error {
	rows, err := j.db.QueryContext(ctx, `SELECT `+recordCols+` FROM records WHERE claim = ? ORDER BY line`, claim)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// RecordsByVaccination returns every journalled record with a vaccination
// id, newest claim first.
func (j *Journal) RecordsByVaccination(ctx context.Context, vaccinationID string) ([]Record, error) {
	return j.records(ctx, `SELECT `+recordCols+` FROM records WHERE vaccination_id = ? ORDER BY claim DESC, line`, vaccinationID)
}

func (j *Journal) records(ctx context.Context, query string, args ...any) ([]Record, error) {
	rows, err := j.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ACKs calls fn for each answered message of a file, in message order.
func (j *Journal) ACKs(ctx context.Context, claim string, fn func(msh10, ack string) error) error {
	rows, err := j.db.QueryContext(ctx, `SELECT COALESCE(msh10, ''), ack FROM messages WHERE claim = ? AND ack != '' ORDER BY seq`, claim)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m, a string
		if err := rows.Scan(&m, &a); err != nil {
			return err
		}
		if err := fn(m, a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Counts tallies a file's records by outcome ("" for none yet).
func (j *Journal) Counts(ctx context.Context, claim string) (map[string]int, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT outcome, COUNT(*) FROM records WHERE claim = ? GROUP BY outcome`, claim)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var o string
		var n int
		if err := rows.Scan(&o, &n); err != nil {
			return nil, err
		}
		out[o] = n
	}
	return out, rows.Err()
}

// OpenMessages counts a file's messages without an outcome.
func (j *Journal) OpenMessages(ctx context.Context, claim string) (int, error) {
	var n int
	err := j.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE claim = ? AND state != ?`, claim, Done).Scan(&n)
	return n, err
}

// RecordsByMSH10 returns the records a message carried.
func (j *Journal) RecordsByMSH10(ctx context.Context, msh10 string) ([]Record, error) {
	return j.records(ctx, `SELECT `+recordCols+` FROM records WHERE msh10 = ? ORDER BY claim, line`, msh10)
}
