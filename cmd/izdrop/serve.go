package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/izdrop/izdrop/internal/daemon"
	"github.com/izdrop/izdrop/service"
)

func init() {
	commands["serve"] = command{"run the service: watch the inboxes (or run them on their schedules) until stopped", serveCmd}
	commands["run"] = command{"run --once: process what is in the inboxes now, then exit", runCmd}
}

func startService(path string, stderr io.Writer) (*service.Service, func(), error) {
	c, err := loadConfig(path)
	if err != nil {
		return nil, nil, err
	}
	out, closeLog, err := logOutput(c, stderr)
	if err != nil {
		return nil, nil, err
	}
	log, err := service.NewLogger(c.Service.LogFormat, c.Service.LogLevel, out)
	if err != nil {
		closeLog()
		return nil, nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	s, err := service.New(c, service.Options{Log: log, Version: version})
	if err != nil {
		closeLog()
		return nil, nil, err
	}
	return s, func() { s.Close(); closeLog() }, nil
}

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	// Until SIGINT or SIGTERM, or the Windows service control manager's
	// stop: all cancel the same context.
	err := daemon.Run(serviceName, func(ctx context.Context) error {
		s, closeFn, err := startService(*path, stderr)
		if err != nil {
			return err
		}
		defer closeFn()
		return s.Serve(ctx)
	})
	if err != nil {
		return fail(stderr, err)
	}
	return exitOK
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	once := fs.Bool("once", false, "process what is in the inboxes now and exit (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop run --once [-config FILE]\n\nExit status: 0 every file done, 1 some files failed (records rejected or invalid,\nor unreadable), 3 some files wait in work/ for the registry, 5 the registry refused\nour credentials (files left where they are; fix them, then izdrop ping -auth),\n2 usage/config error, 4 izdrop could not run.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if !*once {
		fs.Usage()
		return exitUsage
	}
	s, closeFn, err := startService(*path, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	defer closeFn()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProgress := showProgress(s, stderr)
	sum, err := s.RunOnce(ctx)
	stopProgress()
	writeSummary(stdout, sum)
	fmt.Fprintf(stdout, "files: %d done, %d failed, %d waiting for the registry", sum.Done, sum.Failed, sum.Pending)
	if len(sum.Records) > 0 {
		fmt.Fprint(stdout, "; records:")
		for _, k := range []string{"accepted", "accepted_with_warnings", "already_accepted", "rejected", "invalid", "unknown"} {
			if n := sum.Records[k]; n > 0 {
				fmt.Fprintf(stdout, " %d %s", n, k)
			}
		}
	}
	fmt.Fprintln(stdout)
	for _, ep := range sum.Refused {
		fmt.Fprintf(stdout, "endpoint %s: the registry refused our credentials; nothing was sent to it. Fix them, then run: izdrop ping -endpoint %s -auth\n", ep, ep)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		return fail(stderr, err)
	case len(sum.Refused) > 0:
		return exitRefused
	case sum.Pending > 0 || ctx.Err() != nil:
		return exitPending
	case sum.Failed > 0:
		return exitRecords
	}
	return exitOK
}
