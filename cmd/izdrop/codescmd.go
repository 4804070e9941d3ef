package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/izdrop/izdrop/codes"
)

func init() {
	commands["codes"] = command{"show the code tables, or import a newer CDC CVX/MVX/TRADENAME export", codesCmd}
}

func codesCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "import" && args[0] != "show") {
		return fail(stderr, usageError{"usage: izdrop codes show [-config FILE]\n       izdrop codes import [-config FILE] [-force] FILE"})
	}
	sub := args[0]
	fs := newFlags("codes "+sub, stderr)
	path := fs.String("config", "config.toml", "configuration file")
	force := fs.Bool("force", false, "import even if the file lacks codes the current table has")
	if err := fs.Parse(args[1:]); err != nil {
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
	if sub == "show" {
		fmt.Fprintf(stdout, "%-13s %-6s %-11s %5s  %s\n", "FILE", "TABLE", "AS OF", "ROWS", "SOURCE")
		for _, p := range cs.Provenance() {
			fmt.Fprintf(stdout, "%-13s %-6s %-11s %5d  %s [%s]\n", p.File, p.Table, p.AsOf, p.Rows, p.Source, p.Origin)
		}
		return exitOK
	}
	if fs.NArg() != 1 {
		return fail(stderr, usageError{"usage: izdrop codes import [-config FILE] [-force] FILE"})
	}
	rep, err := codes.Import(fs.Arg(0), codesDir(c), cs, *force, time.Now())
	if err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintf(stdout, "imported %s table: %d rows (was %d), newest entry %s\n", rep.Table, rep.Rows, rep.Previous, rep.Newest)
	if len(rep.Added) > 0 {
		fmt.Fprintf(stdout, "  new: %s\n", strings.Join(rep.Added, ", "))
	}
	if len(rep.Changed) > 0 {
		fmt.Fprintf(stdout, "  status changed: %s\n", strings.Join(rep.Changed, ", "))
	}
	fmt.Fprintf(stdout, "  written to %s; izdrop uses it from now on (restart a running service)\n", rep.Written)
	return exitOK
}
