// Command izdrop gets immunization records from EHR export files into
// California's immunization registry (CAIR2). It only parses flags, loads
// the configuration, wires the packages and maps errors to exit codes; the
// work is done by the packages it calls.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"sort"
	"strings"

	_ "time/tzdata" // the registry's zone must resolve on machines without zoneinfo
)

// version, and the commit and commit time it was built from, are set at
// build time: -ldflags "-X main.version=v1.2.0 -X main.commit=... -X
// main.commitTime=..." (scripts/release.sh). Without them the commit comes
// from Go's build info, when the binary was built in a git checkout.
var (
	version    = "dev"
	commit     string
	commitTime string
)

// Exit statuses a script can rely on.
const (
	exitOK      = 0 // done: everything valid / accepted
	exitRecords = 1 // some records invalid or rejected (see the reports)
	exitUsage   = 2 // bad usage or configuration
	exitPending = 3 // run --once: files left waiting for the registry
	exitFailure = 4 // the service could not run (I/O, startup)
	exitRefused = 5 // run --once: the registry refused our credentials; files left in the inbox
)

// usageError is a mistake in how izdrop was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func main() {
	stop := startProfiles(os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// The environment variables that ask any command for a profile of its run.
const (
	envCPUProfile = "IZDROP_CPUPROFILE"
	envTrace      = "IZDROP_TRACE"
)

// startProfiles starts what developers ask for in the environment: a CPU
// profile (IZDROP_CPUPROFILE=FILE, for go tool pprof; izdrop bench
// -cpuprofile sets it for the runs it measures) and an execution trace
// (IZDROP_TRACE=FILE, for go tool trace), both of the whole run. stop ends
// them and writes the files.
func startProfiles(stderr io.Writer) (stop func()) {
	var stops []func()
	start := func(env string, begin func(io.Writer) error, end func()) {
		path := os.Getenv(env)
		if path == "" {
			return
		}
		f, err := os.Create(path)
		if err == nil {
			if err = begin(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "izdrop: %s=%s: %v\n", env, path, err)
			return
		}
		stops = append(stops, func() {
			end()
			f.Close()
		})
	}
	start(envCPUProfile, pprof.StartCPUProfile, pprof.StopCPUProfile)
	start(envTrace, trace.Start, trace.Stop)
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "izdrop: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

// versionLine is the version set at build time, with the commit and its
// time when the binary was built from a git checkout, and the Go release
// and platform: "izdrop v1.2.0 (commit 0123456789ab, 2026-11-30T12:00:00Z) go1.26.8 windows/amd64".
func versionLine() string {
	line := "izdrop " + version
	rev, at, dirty := commit, commitTime, ""
	if bi, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+changes"
				}
			}
		}
	}
	if rev != "" {
		line += fmt.Sprintf(" (commit %.12s%s, %s)", rev, dirty, at)
	}
	return line + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: izdrop COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-16s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "  version          print the version\n\nRun izdrop COMMAND -h for a command's flags.")
}

// newFlags returns a flag set that reports to stderr and does not exit.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("izdrop "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// fail prints err and returns the exit status it maps to.
func fail(stderr io.Writer, err error) int {
	var ue usageError
	msg := err.Error()
	fmt.Fprintln(stderr, "izdrop:", strings.ReplaceAll(msg, "\n", "\n  "))
	switch {
	case errors.As(err, &ue), errors.Is(err, errConfig):
		return exitUsage
	}
	return exitFailure
}

var errConfig = errors.New("configuration")
