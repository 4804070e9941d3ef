package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
)

// OpenJournal opens the journal the configuration names: SQLite in the
// data folder, or the PostgreSQL database of [journal] url.
func OpenJournal(c *config.Config) (journal.Store, error) {
	if !c.Journal.Postgres() {
		return journal.Open(filepath.Join(c.Service.DataDir, "journal.db"))
	}
	pw, err := c.Journal.Password()
	if err != nil {
		return nil, fmt.Errorf("%s: the journal's database password: %w", c.At("journal"), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return journal.OpenPostgres(ctx, c.Journal.URL, pw)
}

// MigrateJournal copies the SQLite journal at from (the data folder's when
// empty) into the PostgreSQL journal of [journal] url, which must be empty.
func MigrateJournal(ctx context.Context, c *config.Config, from string) (journal.Copied, error) {
	if !c.Journal.Postgres() {
		return journal.Copied{}, fmt.Errorf("%s: no url: set [journal] url to the PostgreSQL database to copy the journal into", c.At("journal"))
	}
	if from == "" {
		from = filepath.Join(c.Service.DataDir, "journal.db")
	}
	if _, err := os.Stat(from); err != nil {
		return journal.Copied{}, fmt.Errorf("no SQLite journal to copy: %w", err)
	}
	src, err := journal.Open(from)
	if err != nil {
		return journal.Copied{}, err
	}
	defer src.Close()
	dst, err := OpenJournal(c)
	if err != nil {
		return journal.Copied{}, err
	}
	defer dst.Close()
	n, err := journal.CopyToPostgres(ctx, src, dst.(*journal.PG))
	if errors.Is(err, journal.ErrNotEmpty) {
		err = fmt.Errorf("%w: %s holds files already; copy into an empty database", err, c.Journal.Where(c.Service.DataDir))
	}
	return n, err
}
