package service

import (
	"context"
	"fmt"
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
