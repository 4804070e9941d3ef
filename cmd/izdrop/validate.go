package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/izdrop/izdrop/transform"
)

func init() {
	commands["validate"] = command{"dry run: write the VXUs a file would send and a report", validateCmd}
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	inbox := fs.String("inbox", "", "read the files with this inbox's profile and site (default: the inbox whose folder or patterns fit each file)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop validate [-config FILE] [-inbox NAME] FILE...\n\nWrites NAME.vxu.hl7 and NAME.report.json beside each file; sends nothing.\nExit status: 0 every record valid, 1 some invalid, 2 usage or configuration error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	cs, err := codeSet(c)
	if err != nil {
		return fail(stderr, err)
	}
	status := exitOK
	for _, file := range fs.Args() {
		if st, err := os.Stat(file); err != nil || st.IsDir() {
			fmt.Fprintf(stderr, "izdrop: %s: not a file\n", file)
			status = exitUsage
			continue
		}
		name := *inbox
		if name == "" {
			name = c.InboxFor(file)
		}
		opt, err := c.TransformOptions(name, cs)
		if err != nil {
			return fail(stderr, usageError{err.Error()})
		}
		opt.Application = "izdrop " + version
		loc := opt.Location
		opt.Now = func() time.Time { return time.Now().In(loc) }
		stop := func() {}
		opt.DryRunProgress, stop = validateProgress(stderr, file)
		rep, err := transform.DryRun(file, opt, stdout)
		stop()
		if err != nil {
			fmt.Fprintf(stderr, "izdrop: %s: %v\n", file, err)
			status = exitFailure
			continue
		}
		if (rep.Error != "" || rep.Invalid > 0) && status == exitOK {
			status = exitRecords
		}
	}
	return status
}
