package journal

import (
	"context"
	"errors"
	"time"
)

// Store is the journal as izdrop uses it. Journal (SQLite, one file beside
// the service) and PG (PostgreSQL, one journal for several hosts) are its
// implementations; another database can be one if it keeps the guarantees
// each method states - above all, a write returns only once it is durable,
// and writes from many goroutines at once are committed together rather
// than one after another.
type Store interface {
	// Files.
	AddFile(ctx context.Context, f File) error
	GetFile(ctx context.Context, claim string) (File, error)
	SetFile(ctx context.Context, claim, state, result, archivePath, errText string) error
	SetFileHash(ctx context.Context, claim, sha string, size int64) error
	FilesInState(ctx context.Context, inbox, state string) ([]File, error)
	FilesByName(ctx context.Context, name string) ([]File, error)

	// Messages: journalled before they are sent, answered after.
	StartMessage(ctx context.Context, m Message, recs []Record) error
	StartMessages(ctx context.Context, starts []Start) []error
	FinishMessage(ctx context.Context, registry, claim string, seq int, outcome, ackText string, attempts int, outs []Outcome) error
	AddAttempts(ctx context.Context, claim string, seq, n int, why string) error
	GetMessage(ctx context.Context, claim string, seq int) (Message, error)
	SendingMessages(ctx context.Context, claim string) ([]Message, error)
	OpenMessages(ctx context.Context, claim string) (int, error)
	MessageSpan(ctx context.Context, claim string, seq int) (first, last, n int, err error)
	LinesIn(ctx context.Context, claim string, first, last int) (int, error)
	ACKs(ctx context.Context, claim string, fn func(msh10, ack string) error) error

	// Records.
	Records(ctx context.Context, claim string, fn func(Record) error) error
	RecordsWithOutcome(ctx context.Context, claim string, outcomes []string, fn func(Record) error) error
	RecordsByVaccination(ctx context.Context, vaccinationID string) ([]Record, error)
	RecordsByMSH10(ctx context.Context, msh10 string) ([]Record, error)
	Counts(ctx context.Context, claim string) (map[string]int, error)

	// What each registry holds, refuses, and was tested with.
	AcceptedAll(ctx context.Context, registry, site string, vaccinationIDs []string) (map[string]Acceptance, error)
	LegacyAccepted(ctx context.Context) (int, error)
	SetRefused(ctx context.Context, r Refusal) error
	Refused(ctx context.Context, registry string) (Refusal, bool, error)
	ClearRefused(ctx context.Context, registry string) error
	AddTestplanRun(ctx context.Context, r TestplanRun) error
	LastTestplanRun(ctx context.Context, environment string) (last, passed TestplanRun, okLast, okPassed bool, err error)

	// What the service says of itself, for status (izdrop status, the
	// status page).
	SetEndpointState(ctx context.Context, s EndpointState) error
	EndpointStates(ctx context.Context) (map[string]EndpointState, error)
	Beat(ctx context.Context, h Heartbeat) error
	Heartbeats(ctx context.Context, since time.Time) ([]Heartbeat, error)
	InboxFiles(ctx context.Context, inbox string, since time.Time, limit int) ([]File, error)
	OutcomeCounts(ctx context.Context, inbox string, since time.Time) (map[string]int, error)
	Problems(ctx context.Context, inbox string, since time.Time, fn func(outcome, problems string) error) error
	ArchivedCounts(ctx context.Context, inbox string, since time.Time, fn func(at time.Time, outcome string, n int)) error
	Size() int64

	// Retention.
	ArchivedBefore(ctx context.Context, inbox string, before time.Time) ([]File, error)
	Forget(ctx context.Context, claim string) (records int, err error)

	Close() error
}

// Locker is offered by a Store that several hosts share (PG): locks that
// hold across hosts, and that end with the process holding them, however
// it ends. The service takes an inbox's pass lock and a file's processing
// lock from it when its Store is one; otherwise it locks files on this
// machine (watcher.LockPath, watcher.Lock).
type Locker interface {
	// TryLock takes the lock called name without waiting; ok is false
	// while another holder - another host, another process, or another
	// caller in this one - has it.
	TryLock(ctx context.Context, name string) (l Lock, ok bool, err error)
}

// WithLock returns a context whose writes that start messages (StartMessage,
// StartMessages) are fenced by l: a Store whose locks are its own (PG)
// starts them only while l is held, and answers ErrLockLost otherwise - a
// host that lost its pass lock, without knowing yet, starts nothing that
// the host taking over would not see. Other writes are not fenced: an
// answer received is recorded whoever holds the lock.
func WithLock(ctx context.Context, l Lock) context.Context {
	return context.WithValue(ctx, lockKeyCtx{}, l)
}

type lockKeyCtx struct{}

func lockOf(ctx context.Context) Lock {
	l, _ := ctx.Value(lockKeyCtx{}).(Lock)
	return l
}

// ErrLockLost is returned for a fenced write (WithLock) whose lock is no
// longer held: nothing was written.
var ErrLockLost = errors.New("journal: the lock this work was done under was lost")

// Lock is a lock held.
type Lock interface {
	// Lost is closed when the lock can no longer be trusted to be held
	// (the connection holding it broke): another host may take it, and
	// what was done under it must stop.
	Lost() <-chan struct{}
	Unlock()
}

// Acceptance is the last content a registry stored for a vaccination id:
// its content hash, and the MSH-10 of the message that carried it.
type Acceptance struct{ Hash, MSH10 string }

// Accepted is AcceptedAll for one vaccination id: the content hash and
// MSH-10 of the last content registry stored for it at site, if any.
func Accepted(ctx context.Context, s Store, registry, site, vaccinationID string) (hash, msh10 string, ok bool, err error) {
	held, err := s.AcceptedAll(ctx, registry, site, []string{vaccinationID})
	a, ok := held[vaccinationID]
	return a.Hash, a.MSH10, ok, err
}
