// Package journal is izdrop's memory: a crash-safe record of
// every file claimed and every record in it - content hash, vaccination id,
// MSH-10, attempts, outcome and the registry's ACK. It is what makes a
// restart resume where the last run stopped, what keeps an accepted record
// from being sent twice, and what answers "what became of this file / this
// vaccination?" without reading logs.
//
// The service uses it through Store. Journal, SQLite, is the default: one
// file beside the service, for the processes of one machine. PG (pg.go)
// keeps it in PostgreSQL for several hosts, which take turns on each inbox
// through its locks (Locker) and share what each registry holds. Both keep
// the guarantees below, and pass one test suite.
//
// The embedded journal is SQLite (modernc.org/sqlite, pure Go) rather than
// bbolt because two izdrop processes may share one inbox and one journal:
// SQLite in WAL mode lets both write (serialised, with a busy timeout) and
// lets `izdrop` commands read while a service runs, where bbolt holds an
// exclusive file lock; and the journal is queried by file name,
// vaccination id and MSH-10, which SQL indexes serve directly.
//
// Durability. synchronous=FULL makes every commit durable (an fsync of the
// WAL) before the call that wrote returns: the service journals a message -
// MSH-10, records, bytes - before sending it, and its answer before its
// records are reported. Writes are group-committed (writer.go): whatever
// writes are waiting when the last commit ends go in the next transaction,
// with one fsync, so many messages in flight share a commit instead of
// queueing for one each. Statements are prepared once.
//
// Size. A record takes about 330 bytes once answered (schema.go): a
// message's bytes are kept only until its answer, ACKs are compressed.
// Purge removes what belongs to files archived long ago ([retention]).
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Journal is the SQLite journal, safe for concurrent use.
type Journal struct {
	db    *sql.DB
	w     *writer
	stmts sync.Map // query -> *sql.Stmt, prepared on the pool
	path  string
}

var _ Store = (*Journal)(nil)

// Open opens (creating if needed) the journal at path; the file and its
// folder are private to the user (0600/0700). A journal written by an
// earlier izdrop is migrated to the current layout.
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	fdatasync.Do(func() {
		// What SQLite's own Linux builds sync a commit with: the data and
		// the size needed to read it back, not the timestamps, which
		// often take ext4 as long again. Where it is not available the
		// library keeps fsync.
		sqlite.Fdatasync(true)
	})
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600); err == nil {
		f.Close()
	}
	// busy_timeout first: the pragmas run in order, and switching a new file
	// to WAL takes a lock another process starting at once may hold.
	// auto_vacuum before WAL: it only takes on a new file, and lets a purge
	// give the space back (incremental_vacuum).
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=auto_vacuum(INCREMENTAL)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)" +
		"&_pragma=journal_size_limit(67108864)&_pragma=cache_size(-256)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// The writer's connection and three for reads. Readers cache up to 256
	// KiB of pages, the writer 1 MiB (SQLite's default is 2 MiB each): what
	// misses is in the file system's cache, and a run's memory stays small
	// whatever the journal's size.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4) // prepared statements live on their connections
	// Turning a new file to WAL mode needs the file to itself, and SQLite
	// answers "busy" at once rather than wait when another process starting
	// at the same instant has it open: try again for a while.
	deadline := time.Now().Add(30 * time.Second)
	var migrated bool
	for {
		migrated, err = setUp(db)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
	}
	if err == nil && migrated {
		// The old layout's pages are free now: give them back, and turn on
		// incremental vacuum for later purges.
		_, err = db.Exec(`VACUUM`)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	w, err := newWriter(context.Background(), db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return &Journal{db: db, w: w, path: path}, nil
}

var fdatasync sync.Once

// isBusy reports SQLITE_BUSY (database is locked) and its extended codes.
func isBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// Close waits for the writes under way and closes the journal. A journal
// this process wrote to gives back its free pages first (the bytes of the
// last messages answered, mostly).
func (j *Journal) Close() error {
	if j.w.commits.Load() > 0 {
		j.w.do(context.Background(), func(t *wtx) error {
			var free int
			if err := t.scan(`PRAGMA freelist_count`, nil, &free); err != nil || free == 0 {
				return err
			}
			_, err := t.exec(`PRAGMA incremental_vacuum`)
			return err
		})
	}
	j.w.close()
	j.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	return j.db.Close()
}

// q returns a read query prepared on the pool (once per connection).
func (j *Journal) q(query string) (*sql.Stmt, error) {
	if s, ok := j.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := j.db.Prepare(query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := j.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// queryRow runs a lookup of one row. The driver watches a context that can
// end with a goroutine of its own; a lookup is over in microseconds, and is
// not worth one.
func (j *Journal) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	s, err := j.q(query)
	if err != nil {
		return err
	}
	return s.QueryRowContext(context.WithoutCancel(ctx), args...).Scan(dest...)
}

func (j *Journal) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := j.q(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

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
	Claim string
	Seq   int
	MSH10 string    // empty when nothing was sent (every record invalid or already accepted)
	MSH7  time.Time // kept until the message is answered
	Lines []int     // the lines (records) the VXU carries
	// Raw is the VXU as first sent: a resend sends these bytes. Kept until
	// the message is answered.
	Raw      []byte
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
	// ContentHash is kept until the record has its outcome; what a
	// registry stored is remembered by Accepted.
	ContentHash string `json:"content_hash"`
	Outcome     string `json:"outcome"`
	MSH10       string `json:"msh10,omitempty"`
	Problems    string `json:"-"` // JSON, see the service
	Start, End  int64  `json:"-"` // the row's bytes in the (decoded) file
}

// Start is a message to journal before it is sent, with its records (see
// StartMessages).
type Start struct {
	Message Message
	Records []Record // in line order
}

// Outcome is a record's final fate, for FinishMessage.
type Outcome struct {
	Line     int
	Outcome  string
	Problems string // JSON array, appended to the problems recorded at the start
	Stored   bool   // the registry now holds this content: remember it as accepted
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// ErrNotFound is returned for an unknown file or message.
var ErrNotFound = errors.New("journal: not found")

// ErrDuplicateControlID is returned when a new MSH-10 is already taken.
var ErrDuplicateControlID = errors.New("journal: MSH-10 already used")

// ErrLinesTaken is returned when a new message would hold a line that
// another message of the file holds already: the file no longer reads as
// it did when that message was started (its profile, the code tables or
// izdrop changed), and sending would send those records twice.
var ErrLinesTaken = errors.New("journal: lines already in another message of the file")

// ErrStarted is StartMessages' answer for a message that was started
// before (by this process or another): nothing was written, and the
// journal's row (GetMessage) is the one to follow.
var ErrStarted = errors.New("journal: message already started")

// fileID is the subquery that turns a claim into the file's number.
const fileID = `(SELECT id FROM files WHERE claim = ?)`

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
	s, err := j.q(`SELECT ` + fileCols + ` FROM files WHERE claim = ?`)
	if err != nil {
		return File{}, err
	}
	f, err := scanFile(s.QueryRowContext(context.WithoutCancel(ctx), claim))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, ErrNotFound
	}
	return f, err
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
	rows, err := j.query(ctx, query, args...)
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

const messageCols = `f.claim, m.seq, m.msh10, m.msh7, m.lines, COALESCE(o.raw, x''), m.state, m.outcome, m.attempts, m.ack,
	COALESCE(g.name, ''), m.last_error,
	COALESCE((SELECT r.site FROM records r INDEXED BY records_seq WHERE r.file = m.file AND r.seq = m.seq ORDER BY r.line LIMIT 1), ''),
	COALESCE((SELECT r.patient_id FROM records r INDEXED BY records_seq WHERE r.file = m.file AND r.seq = m.seq ORDER BY r.line LIMIT 1), '')`

const messageFrom = ` FROM messages m JOIN files f ON f.id = m.file
	LEFT JOIN outbox o ON o.file = m.file AND o.seq = m.seq LEFT JOIN registries g ON g.id = m.registry`

// openFrom reads the messages still open only, not every one of the file.
const openFrom = ` FROM messages m INDEXED BY messages_open JOIN files f ON f.id = m.file
	LEFT JOIN outbox o ON o.file = m.file AND o.seq = m.seq LEFT JOIN registries g ON g.id = m.registry`

func scanMessage(sc interface{ Scan(...any) error }) (Message, error) {
	var m Message
	var msh10 sql.NullString
	var msh7, lines string
	var ackv any
	err := sc.Scan(&m.Claim, &m.Seq, &msh10, &msh7, &lines, &m.Raw, &m.State, &m.Outcome, &m.Attempts, &ackv, &m.Registry, &m.LastError, &m.Site, &m.PatientID)
	m.MSH10, m.MSH7, m.Lines, m.ACK = msh10.String, parseTime(msh7), decodeLines(lines), unpackACK(ackv)
	return m, err
}

// GetMessage returns a message of a file.
func (j *Journal) GetMessage(ctx context.Context, claim string, seq int) (Message, error) {
	s, err := j.q(`SELECT ` + messageCols + messageFrom + ` WHERE m.file = ` + fileID + ` AND m.seq = ?`)
	if err != nil {
		return Message{}, err
	}
	m, err := scanMessage(s.QueryRowContext(context.WithoutCancel(ctx), claim, seq))
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
	err := j.queryRow(ctx, `SELECT COUNT(*) FROM records WHERE file = `+fileID+` AND line BETWEEN ? AND ?`, []any{claim, first, last}, &n)
	return n, err
}

// SendingMessages returns a file's messages started but not answered, in
// message order.
func (j *Journal) SendingMessages(ctx context.Context, claim string) ([]Message, error) {
	rows, err := j.query(ctx, `SELECT `+messageCols+openFrom+` WHERE m.file = `+fileID+` AND m.state != 'done' ORDER BY m.seq`, claim)
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
	err = j.queryRow(ctx, `SELECT COALESCE(MIN(line), 0), COALESCE(MAX(line), 0), COUNT(*) FROM records INDEXED BY records_seq WHERE file = `+fileID+` AND seq = ?`,
		[]any{claim, seq}, &first, &last, &n)
	return first, last, n, err
}

// AcceptedAll returns the content hash and MSH-10 of the last content a
// registry (an endpoint's identity) stored for each of a site's vaccination
// ids. What another registry holds - the sandbox, a staging endpoint - and
// acceptances journalled before registries were named, never count. It
// takes up to acceptedIDs ids a query: a message's records are checked
// together before it is sent, and a lookup's cost is mostly the statement,
// not the row. The ids the registry holds nothing for are not in the map.
func (j *Journal) AcceptedAll(ctx context.Context, registry, site string, vaccinationIDs []string) (map[string]Acceptance, error) {
	held := make(map[string]Acceptance, len(vaccinationIDs))
	for ids := range slices.Chunk(vaccinationIDs, acceptedIDs) {
		args := make([]any, 0, 2+len(ids))
		args = append(args, registry, site)
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := j.query(context.WithoutCancel(ctx), acceptedQuery[len(ids)], args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, msh10 string
			var h any
			if err := rows.Scan(&id, &h, &msh10); err != nil {
				rows.Close()
				return nil, err
			}
			held[id] = Acceptance{Hash: unpackHash(h), MSH10: msh10}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return held, nil
}

// acceptedQuery[n] looks up n vaccination ids of a site.
var acceptedQuery = func() []string {
	out := make([]string, acceptedIDs+1)
	for n := 1; n <= acceptedIDs; n++ {
		out[n] = `SELECT vaccination_id, content_hash, msh10 FROM accepted WHERE registry = (SELECT id FROM registries WHERE name = ?)
			AND site = ? AND vaccination_id IN ` + inList(n)
	}
	return out
}()

const acceptedIDs = 8

// inList is the list of n placeholders an IN takes: (?,?,?).
func inList(n int) string { return "(?" + strings.Repeat(",?", n-1) + ")" }

// recordCols reads a record; a record sent in its message has the
// message's MSH-10 unless it names another.
const recordCols = `f.claim, r.line, r.seq, r.site, r.patient_id, r.vaccination_id, r.action, r.content_hash, r.outcome,
	CASE WHEN r.msh10 != '' OR NOT r.sent THEN r.msh10 ELSE COALESCE((SELECT m.msh10 FROM messages m WHERE m.file = r.file AND m.seq = r.seq), '') END,
	r.problems, r.start_offset, r.end_offset`

func scanRecord(sc interface{ Scan(...any) error }) (Record, error) {
	var r Record
	var h any
	err := sc.Scan(&r.Claim, &r.Line, &r.Seq, &r.Site, &r.PatientID, &r.VaccinationID, &r.Action, &h, &r.Outcome, &r.MSH10, &r.Problems, &r.Start, &r.End)
	r.ContentHash = unpackHash(h)
	return r, err
}

// Records calls fn for each record of a file, in line order, streaming.
func (j *Journal) Records(ctx context.Context, claim string, fn func(Record) error) error {
	return j.eachRecord(ctx, fn, `SELECT `+recordCols+` FROM records r JOIN files f ON f.id = r.file WHERE r.file = `+fileID+` ORDER BY r.line`, claim)
}

// RecordsWithOutcome calls fn for each record of a file whose outcome is
// one of outcomes, in line order, streaming. The others are skipped inside
// SQLite, unread: rejects.csv wants the few refused records of a file that
// may hold a million.
func (j *Journal) RecordsWithOutcome(ctx context.Context, claim string, outcomes []string, fn func(Record) error) error {
	if len(outcomes) == 0 {
		return nil
	}
	args := []any{claim}
	for _, o := range outcomes {
		args = append(args, o)
	}
	return j.eachRecord(ctx, fn, `SELECT `+recordCols+` FROM records r JOIN files f ON f.id = r.file WHERE r.file = `+fileID+
		` AND r.outcome IN `+inList(len(outcomes))+` ORDER BY r.line`, args...)
}

// RecordsByVaccination returns every journalled record with a vaccination
// id, newest claim first.
func (j *Journal) RecordsByVaccination(ctx context.Context, vaccinationID string) ([]Record, error) {
	return j.records(ctx, `SELECT `+recordCols+` FROM records r JOIN files f ON f.id = r.file WHERE r.vaccination_id = ? ORDER BY f.claim DESC, r.line`, vaccinationID)
}

// RecordsByMSH10 returns the records a message carried, and those reported
// already accepted with it.
func (j *Journal) RecordsByMSH10(ctx context.Context, msh10 string) ([]Record, error) {
	return j.records(ctx, `SELECT `+recordCols+` FROM messages m0 JOIN records r ON r.file = m0.file AND r.seq = m0.seq AND r.sent AND r.msh10 = ''
			JOIN files f ON f.id = r.file WHERE m0.msh10 = ?
		UNION ALL
		SELECT `+recordCols+` FROM records r JOIN files f ON f.id = r.file WHERE r.msh10 = ? AND r.msh10 != ''
		ORDER BY 1, 2`, msh10, msh10)
}

func (j *Journal) records(ctx context.Context, query string, args ...any) ([]Record, error) {
	var out []Record
	err := j.eachRecord(ctx, func(r Record) error { out = append(out, r); return nil }, query, args...)
	return out, err
}

// eachRecord calls fn for each record query reads, streaming.
func (j *Journal) eachRecord(ctx context.Context, fn func(Record) error, query string, args ...any) error {
	rows, err := j.query(ctx, query, args...)
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

// ACKs calls fn for each answered message of a file, in message order.
func (j *Journal) ACKs(ctx context.Context, claim string, fn func(msh10, ack string) error) error {
	rows, err := j.query(ctx, `SELECT COALESCE(msh10, ''), ack FROM messages WHERE file = `+fileID+` AND ack != '' ORDER BY seq`, claim)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		var a any
		if err := rows.Scan(&m, &a); err != nil {
			return err
		}
		if err := fn(m, unpackACK(a)); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Counts tallies a file's records by outcome ("" for none yet).
func (j *Journal) Counts(ctx context.Context, claim string) (map[string]int, error) {
	return j.tally(ctx, `SELECT outcome, COUNT(*) FROM records WHERE file = `+fileID+` GROUP BY outcome`, claim)
}

// OpenMessages counts a file's messages without an outcome.
func (j *Journal) OpenMessages(ctx context.Context, claim string) (int, error) {
	var n int
	err := j.queryRow(ctx, `SELECT COUNT(*) FROM messages INDEXED BY messages_open WHERE file = `+fileID+` AND state != 'done'`, []any{claim}, &n)
	return n, err
}
