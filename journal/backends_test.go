package journal

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/izdrop/izdrop/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backend is one implementation of Store under test. open opens a handle
// on the test's journal - each call another handle on the same journal,
// as another process or another host would - closed at the test's end.
type backend struct {
	name string
	open func(t testing.TB) Store
}

func sqliteBackend(t testing.TB) backend {
	path := filepath.Join(t.TempDir(), "journal.db")
	return backend{name: "sqlite", open: func(t testing.TB) Store {
		t.Helper()
		j, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		return j
	}}
}

func postgresBackend(t testing.TB) backend {
	url, s := pgtest.Database(t)
	return backend{name: "postgres", open: func(t testing.TB) Store {
		t.Helper()
		p, err := OpenPostgres(context.Background(), url, s.Password)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}}
}

// eachBackend runs a test against both implementations, each on a new,
// empty journal.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresBackend(t)) })
}

// commits is how many transactions a handle committed.
func commits(s Store) int64 {
	switch j := s.(type) {
	case *Journal:
		return j.w.commits.Load()
	case *PG:
		return j.w.commits.Load()
	}
	panic("unknown store")
}

// rows counts the rows of a table.
func rows(t testing.TB, s Store, table string) int {
	t.Helper()
	var n int
	var err error
	switch j := s.(type) {
	case *Journal:
		err = j.db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n)
	case *PG:
		err = j.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}
