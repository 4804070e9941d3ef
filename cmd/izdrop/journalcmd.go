package main

import (
	"context"
	"fmt"
	"io"

	"github.com/izdrop/izdrop/service"
)

func init() {
	commands["journal"] = command{"journal migrate: copy the SQLite journal into the PostgreSQL one of [journal] url", journalCmd}
}

func journalCmd(args []string, stdout, stderr io.Writer) int {
	const use = "usage: izdrop journal migrate [-config FILE] [-from JOURNAL.db]"
	if len(args) == 0 || args[0] != "migrate" {
		return fail(stderr, usageError{use})
	}
	fs := newFlags("journal migrate", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	from := fs.String("from", "", "the SQLite journal to copy (default: journal.db in the data folder)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, use+"\n\nCopies everything the SQLite journal holds into the empty PostgreSQL\njournal of [journal] url, in one transaction. Stop izdrop first.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	if !c.Journal.Postgres() {
		return fail(stderr, usageError{fmt.Sprintf("%s: no url: set [journal] url to the PostgreSQL database to copy the journal into", c.At("journal"))})
	}
	n, err := service.MigrateJournal(context.Background(), c, *from)
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "copied %d files, %d messages, %d records, %d acceptances (%d registries) and %d other rows into %s\n",
		n.Files, n.Messages, n.Records, n.Accepted, n.Registries, n.Other, c.Journal.Where(c.Service.DataDir))
	return exitOK
}
