package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/izdrop/izdrop/bench"
)

func init() {
	commands["bench"] = command{"measure izdrop end to end on this machine, against the sandbox registry", benchCmd}
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bench", stderr)
	var o bench.Options
	fs.IntVar(&o.Rows, "rows", 2000, "records in the generated export")
	fs.Float64Var(&o.Invalid, "invalid", 0.02, "share of the rows a check refuses")
	conc := fs.String("concurrency", "1,4,8,16", "messages in flight, comma-separated: one run each")
	fs.DurationVar(&o.Latency, "latency", 50e6, "the registry's answer time")
	fs.DurationVar(&o.Jitter, "jitter", 0, "plus a random share of this")
	fs.Float64Var(&o.FaultRate, "fault-rate", 0, "share of calls the registry answers HTTP 503 (retried)")
	fs.DurationVar(&o.ConnectDelay, "connect-delay", 0, "what a new connection costs (a TLS handshake over a WAN)")
	fs.StringVar(&o.Dir, "dir", "", "keep the export and each run's inbox, archive, journal and log here (default: a temporary folder, removed)")
	binary := fs.String("izdrop", "", "measure this izdrop binary's `run --once` (default: this one), to compare versions")
	asJSON := fs.Bool("json", false, "print the measurements as JSON")
	profiles := fs.String("cpuprofile", "", "write each run's CPU profile (go tool pprof) to this folder, as run-CONCURRENCY.pprof")
	traces := fs.String("trace", "", "write each run's execution trace (go tool trace) to this folder, as run-CONCURRENCY.trace")
	fs.BoolVar(&o.Plain, "plain", true, "also run a plain keep-alive HTTP client on the same messages, per concurrency, and compare (exports of up to 100,000 rows)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop bench [flags]\n\nGenerates an export, starts the sandbox registry, runs `izdrop run --once` on it once per\nconcurrency and prints what it measured. Sends nothing anywhere else.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fail(stderr, usageError{fmt.Sprintf("-concurrency %q: positive numbers, comma-separated", *conc)})
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	self := *binary
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return fail(stderr, err)
		}
	}
	// Each run writes the profiles asked for into their folder, named for
	// its concurrency (the run's folder is run-N); a profile asked of bench
	// itself in the environment is not passed on to overwrite.
	type perRun struct{ env, dir, ext string }
	all := []perRun{{envCPUProfile, *profiles, ".pprof"}, {envTrace, *traces, ".trace"}}
	var want []perRun
	for _, p := range all {
		if p.dir == "" {
			continue
		}
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			return fail(stderr, err)
		}
		var err error
		if p.dir, err = filepath.Abs(p.dir); err != nil {
			return fail(stderr, err)
		}
		want = append(want, p)
	}
	o.Command = func(config string) *exec.Cmd {
		cmd := exec.Command(self, "run", "--once", "-config", config)
		for _, kv := range os.Environ() {
			if !slices.ContainsFunc(all, func(p perRun) bool { return strings.HasPrefix(kv, p.env+"=") }) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		for _, p := range want {
			cmd.Env = append(cmd.Env, p.env+"="+filepath.Join(p.dir, filepath.Base(filepath.Dir(config))+p.ext))
		}
		return cmd
	}
	o.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Measure(ctx, o)
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(stderr, err)
		}
		return exitOK
	}
	rep.WriteTable(stdout)
	return exitOK
}
