// The journal's tables, and bringing a journal written by an earlier izdrop
// to them.

package journal

import (
	"database/sql"
	"fmt"
)

// schemaVersion is PRAGMA user_version of a journal in the layout below;
// journals from before versions were kept read 0.
const schemaVersion = 2

// schema is the journal's layout. It is compact because it grows with every
// record ever sent: a file is a number in the rows that belong to it, a
// registry too; times are numbers; a content hash is its 32 bytes and is
// dropped once the record has its outcome (what a registry holds is in
// accepted); an ACK is kept DEFLATE-compressed (ack.go); a record's MSH-10
// is its message's unless it was not sent in it (sent = 0: already
// accepted). A message's bytes are kept in outbox only until it is answered
// - what a resend needs - so the pages they took are freed and reused.
// Rows of a file are clustered by file (WITHOUT ROWID tables keyed by it).
const schema = `
CREATE TABLE IF NOT EXISTS files (
	id           INTEGER PRIMARY KEY,
	claim        TEXT NOT NULL UNIQUE,
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
CREATE INDEX IF NOT EXISTS files_state ON files(inbox, state);
CREATE TABLE IF NOT EXISTS registries (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS messages (
	file       INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	msh10      TEXT UNIQUE,
	msh7       TEXT NOT NULL DEFAULT '',
	lines      TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL,
	outcome    TEXT NOT NULL DEFAULT '',
	attempts   INTEGER NOT NULL DEFAULT 0,
	ack        BLOB NOT NULL DEFAULT '',
	sent_at    INTEGER NOT NULL DEFAULT 0,
	done_at    INTEGER NOT NULL DEFAULT 0,
	registry   INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (file, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_open ON messages(file, seq) WHERE state != 'done';
CREATE TABLE IF NOT EXISTS outbox (
	file INTEGER NOT NULL,
	seq  INTEGER NOT NULL,
	raw  BLOB NOT NULL,
	PRIMARY KEY (file, seq)
);
CREATE TABLE IF NOT EXISTS records (
	file           INTEGER NOT NULL,
	line           INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	site           TEXT NOT NULL,
	patient_id     TEXT NOT NULL,
	vaccination_id TEXT NOT NULL,
	action         TEXT NOT NULL,
	content_hash   BLOB NOT NULL DEFAULT '',
	outcome        TEXT NOT NULL DEFAULT '',
	sent           INTEGER NOT NULL DEFAULT 0,
	msh10          TEXT NOT NULL DEFAULT '',
	problems       TEXT NOT NULL DEFAULT '',
	start_offset   INTEGER NOT NULL DEFAULT 0,
	end_offset     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (file, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_seq ON records(file, seq);
CREATE INDEX IF NOT EXISTS records_vid ON records(vaccination_id);
CREATE INDEX IF NOT EXISTS records_msh10 ON records(msh10) WHERE msh10 != '';
CREATE TABLE IF NOT EXISTS accepted (
	registry       INTEGER NOT NULL,
	site           TEXT NOT NULL,
	vaccination_id TEXT NOT NULL,
	content_hash   BLOB NOT NULL,
	msh10          TEXT NOT NULL,
	file           INTEGER NOT NULL,
	at             INTEGER NOT NULL,
	PRIMARY KEY (registry, site, vaccination_id)
) WITHOUT ROWID;
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

// schemaV1 is the layout izdrop kept before version 2 (claims in every row,
// text times, bytes and hex hashes kept for ever), as far as a journal of
// any earlier izdrop is brought to it before it is migrated.
const schemaV1 = `
CREATE TABLE IF NOT EXISTS files (
	claim TEXT PRIMARY KEY, inbox TEXT NOT NULL, name TEXT NOT NULL, work_path TEXT NOT NULL,
	sha256 TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0, claimed_at TEXT NOT NULL, state TEXT NOT NULL,
	result TEXT NOT NULL DEFAULT '', archive_path TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
	claim TEXT NOT NULL, seq INTEGER NOT NULL, msh10 TEXT UNIQUE, msh7 TEXT NOT NULL DEFAULT '', lines TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, ack TEXT NOT NULL DEFAULT '',
	raw BLOB NOT NULL DEFAULT x'', sent_at TEXT NOT NULL DEFAULT '', done_at TEXT NOT NULL DEFAULT '',
	registry TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '', PRIMARY KEY (claim, seq));
CREATE TABLE IF NOT EXISTS records (
	claim TEXT NOT NULL, line INTEGER NOT NULL, seq INTEGER NOT NULL, site TEXT NOT NULL, patient_id TEXT NOT NULL,
	vaccination_id TEXT NOT NULL, action TEXT NOT NULL, content_hash TEXT NOT NULL, outcome TEXT NOT NULL DEFAULT '',
	msh10 TEXT NOT NULL DEFAULT '', problems TEXT NOT NULL DEFAULT '', start_offset INTEGER NOT NULL DEFAULT 0,
	end_offset INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (claim, line));
CREATE TABLE IF NOT EXISTS accepted (
	registry TEXT NOT NULL, site TEXT NOT NULL, vaccination_id TEXT NOT NULL, content_hash TEXT NOT NULL,
	msh10 TEXT NOT NULL, claim TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (registry, site, vaccination_id));
`

// setUp creates the schema, or brings a journal written by an earlier
// izdrop to it, in one write transaction taken before anything is read: two
// processes starting at once would otherwise both read "no table yet" and
// one would fail its write ("database is locked") instead of waiting. It
// reports whether an older journal was migrated (its freed space is then
// given back by a VACUUM, outside the transaction).
func setUp(db *sql.DB) (migrated bool, err error) {
	tx, err := db.Begin() // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return false, err
	}
	var old int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'messages'`).Scan(&old); err != nil {
		return false, err
	}
	if version < schemaVersion && old > 0 {
		if err := upgradeV1(tx); err != nil {
			return false, fmt.Errorf("bringing an older journal up to date: %w", err)
		}
		if err := migrateV1(tx); err != nil {
			return false, fmt.Errorf("migrating an older journal: %w", err)
		}
		migrated = true
	}
	if _, err := tx.Exec(schema); err != nil {
		return false, err
	}
	if _, err := tx.Exec(statusSchema); err != nil {
		return false, err
	}
	if version < schemaVersion {
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return false, err
		}
	}
	return migrated, tx.Commit()
}

// upgradeV1 brings a journal of any izdrop before version 2 to schemaV1:
// missing tables, and the columns added over time.
func upgradeV1(tx *sql.Tx) error {
	if _, err := tx.Exec(schemaV1); err != nil {
		return err
	}
	has := func(table, col string) (bool, error) {
		var n int
		err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, col).Scan(&n)
		return n > 0, err
	}
	ok, err := has("messages", "raw")
	if err != nil {
		return err
	}
	if !ok {
		// Messages started before raw bytes were kept are encoded again
		// from their file when resent (see the service).
		if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN raw BLOB NOT NULL DEFAULT x''`); err != nil {
			return err
		}
	}
	for _, col := range []string{"registry", "last_error"} {
		ok, err := has("messages", col)
		if err != nil {
			return err
		}
		if !ok {
			if _, err := tx.Exec(`ALTER TABLE messages ADD COLUMN ` + col + ` TEXT NOT NULL DEFAULT ''`); err != nil {
				return err
			}
		}
	}
	ok, err = has("accepted", "registry")
	if err != nil {
		return err
	}
	if !ok {
		// Acceptances journalled before they named their registry: nobody
		// knows which registry holds them, so they keep registry '' and
		// stop no send (see Accepted).
		if _, err := tx.Exec(`ALTER TABLE accepted ADD COLUMN registry TEXT NOT NULL DEFAULT ''`); err != nil {
			return err
		}
	}
	return nil
}

// migrateV1 moves a schemaV1 journal into the compact layout. Messages
// already answered lose their bytes (a resend never needs them), answered
// records their content hash; everything find and the sidecars show is
// kept. ACKs stay as they were written (text); new ones are compressed.
func migrateV1(tx *sql.Tx) error {
	for _, t := range []string{"files", "messages", "records", "accepted"} {
		if _, err := tx.Exec(`ALTER TABLE ` + t + ` RENAME TO old_` + t); err != nil {
			return err
		}
	}
	// Indexes of the old tables keep their names: drop them so the new
	// tables can have theirs.
	for _, ix := range []string{"files_name", "records_seq", "records_vid", "records_msh10"} {
		if _, err := tx.Exec(`DROP INDEX IF EXISTS ` + ix); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	// ms turns an RFC 3339 text time into Unix milliseconds (0 if empty).
	const ms = `COALESCE(CAST(ROUND((julianday(%s) - 2440587.5) * 86400000) AS INTEGER), 0)`
	// hash keeps a hex SHA-256 as its bytes, anything else as it is.
	const hash = `CASE WHEN length(%[1]s) = 64 AND unhex(%[1]s) IS NOT NULL THEN unhex(%[1]s) ELSE %[1]s END`
	for _, q := range []string{
		`INSERT INTO files(claim, inbox, name, work_path, sha256, size, claimed_at, state, result, archive_path, error, updated_at)
			SELECT claim, inbox, name, work_path, sha256, size, claimed_at, state, result, archive_path, error, updated_at FROM old_files ORDER BY claim`,
		// Rows of a claim no file row names (none izdrop wrote) keep a file.
		`INSERT INTO files(claim, inbox, name, work_path, claimed_at, state, updated_at)
			SELECT claim, '', '', '', '', 'claimed', '' FROM (SELECT claim FROM old_messages UNION SELECT claim FROM old_records)
			WHERE claim NOT IN (SELECT claim FROM files) ORDER BY claim`,
		`INSERT INTO registries(name) SELECT registry FROM old_messages WHERE registry != '' UNION SELECT registry FROM old_accepted`,
		`INSERT INTO messages(file, seq, msh10, msh7, lines, state, outcome, attempts, ack, sent_at, done_at, registry, last_error)
			SELECT f.id, m.seq, m.msh10, CASE WHEN m.state = 'done' THEN '' ELSE m.msh7 END, m.lines, m.state, m.outcome, m.attempts, m.ack,
				` + fmt.Sprintf(ms, "NULLIF(m.sent_at, '')") + `, ` + fmt.Sprintf(ms, "NULLIF(m.done_at, '')") + `, COALESCE(g.id, 0), m.last_error
			FROM old_messages m JOIN files f ON f.claim = m.claim LEFT JOIN registries g ON g.name = m.registry AND m.registry != ''`,
		`INSERT INTO outbox(file, seq, raw) SELECT f.id, m.seq, m.raw FROM old_messages m JOIN files f ON f.claim = m.claim
			WHERE m.state != 'done' AND length(m.raw) > 0`,
		`INSERT INTO records(file, line, seq, site, patient_id, vaccination_id, action, content_hash, outcome, sent, msh10, problems, start_offset, end_offset)
			SELECT f.id, r.line, r.seq, r.site, r.patient_id, r.vaccination_id, r.action,
				CASE WHEN r.outcome = '' THEN ` + fmt.Sprintf(hash, "r.content_hash") + ` ELSE '' END, r.outcome,
				COALESCE((',' || m.lines || ',') LIKE ('%,' || r.line || ',%'), 0),
				CASE WHEN m.msh10 IS NOT NULL AND r.msh10 = m.msh10 THEN '' ELSE r.msh10 END,
				r.problems, r.start_offset, r.end_offset
			FROM old_records r JOIN files f ON f.claim = r.claim LEFT JOIN old_messages m ON m.claim = r.claim AND m.seq = r.seq`,
		`INSERT INTO accepted(registry, site, vaccination_id, content_hash, msh10, file, at)
			SELECT g.id, a.site, a.vaccination_id, ` + fmt.Sprintf(hash, "a.content_hash") + `, a.msh10, COALESCE(f.id, 0), ` + fmt.Sprintf(ms, "NULLIF(a.at, '')") + `
			FROM old_accepted a JOIN registries g ON g.name = a.registry LEFT JOIN files f ON f.claim = a.claim`,
		`DROP TABLE old_accepted`,
		`DROP TABLE old_records`,
		`DROP TABLE old_messages`,
		`DROP TABLE old_files`,
	} {
		if _, err := tx.Exec(q); err != nil {
			return fmt.Errorf("%w (in %.60s...)", err, q)
		}
	}
	return nil
}
