package main

import (
	"context"
	"fmt"
	"io"

	"github.com/izdrop/izdrop/service"
)

func init() {
	commands["find"] = command{"what became of a file, a vaccination id or an MSH-10 (from the journal)", findCmd}
}

func findCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("find", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop find [-config FILE] NAME|VACCINATION_ID|MSH10")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	j, err := service.OpenJournal(c)
	if err != nil {
		return fail(stderr, err)
	}
	defer j.Close()
	found, err := service.Find(context.Background(), j, fs.Arg(0), stdout)
	if err != nil {
		return fail(stderr, err)
	}
	if !found {
		fmt.Fprintf(stdout, "nothing in the journal for %q (a file name, vaccination id or MSH-10)\n", fs.Arg(0))
		return exitRecords
	}
	return exitOK
}
