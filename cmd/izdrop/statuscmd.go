package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/status"
)

func init() {
	commands["status"] = command{"what izdrop is doing: files, records, errors and endpoints per inbox; or one file's records", statusCmd}
}

func statusCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	asJSON := fs.Bool("json", false, "print JSON, for scripts")
	since := fs.String("since", "", "count done/failed files and records since a duration ago (24h, 168h) or a date (2026-11-01); default: today")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop status [-config FILE] [-json] [-since DURATION|DATE] [FILE|CLAIM]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 1 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	var from time.Time
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil {
			from = time.Now().Add(-d)
		} else if t, err := time.ParseInLocation("2006-01-02", *since, c.Location()); err == nil {
			from = t
		} else {
			return fail(stderr, usageError{fmt.Sprintf("-since %q: a duration such as 24h, or a date such as 2026-11-01", *since)})
		}
	}
	j, err := service.OpenJournal(c)
	if err != nil {
		return fail(stderr, err)
	}
	defer j.Close()
	ctx := context.Background()
	if fs.NArg() == 1 {
		rep, ok, err := status.ForFile(ctx, j, fs.Arg(0))
		if err != nil {
			return fail(stderr, err)
		}
		if !ok {
			fmt.Fprintf(stdout, "nothing in the journal for %q (a file name or claim id)\n", fs.Arg(0))
			return exitRecords
		}
		if *asJSON {
			return writeJSON(stdout, stderr, rep)
		}
		status.WriteFileText(stdout, rep, c.Location())
		return exitOK
	}
	rep, err := status.Build(ctx, c, j, status.Options{Since: from})
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		return writeJSON(stdout, stderr, rep)
	}
	status.WriteText(stdout, rep)
	return exitOK
}

func writeJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(stderr, err)
	}
	return exitOK
}
