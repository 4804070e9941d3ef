package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/testplan"
)

func init() {
	commands["testplan"] = command{"send CAIR2's onboarding test messages (fake patients) to a staging endpoint and check the answers", testplanCmd}
}

func testplanCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("testplan", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	endpoint := fs.String("endpoint", "", "endpoint to test (default: the first inbox's); never a production one")
	site := fs.String("site", "", "[sites] name whose Site ID, facility and region the messages carry (default: the inbox's)")
	out := fs.String("out", "", "folder for the messages, ACKs and summary (default: ./testplan-RUN)")
	only := fs.String("only", "", "run only these cases, comma-separated (cases they refer to run first)")
	list := fs.Bool("list", false, "list the cases and exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: izdrop testplan [-config FILE] [-endpoint NAME] [-site NAME] [-out DIR] [-only CASE,...] [-list]\n\n"+
			"Exit status: 0 every case passed, 1 some failed, 5 the registry refused our credentials,\n2 usage or configuration error, 4 no answer from the registry.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tEXPECTED\tWHAT IT SENDS")
		for _, c := range testplan.Cases() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Expect, c.Title)
		}
		tw.Flush()
		return exitOK
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	log, _ := service.NewLogger("auto", "warn", stderr)
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := service.RunTestplan(ctx, c, service.TestplanOptions{Endpoint: *endpoint, Site: *site, Only: names, Out: *out, Version: version, Log: log})
	if len(rep.Added) > 0 {
		fmt.Fprintf(stdout, "also running %s, which the chosen cases refer to\n", strings.Join(rep.Added, ", "))
	}
	if len(rep.Results) > 0 {
		h := rep.Header
		fmt.Fprintf(stdout, "test plan %s against %s (%s, %s); Site ID %s, sending facility %s, region %s\n\n",
			h.Run, h.Endpoint, h.Environment, h.URL, h.Site, h.SendingFacility, h.Region)
		testplan.WriteTable(stdout, rep.Results)
		fmt.Fprintf(stdout, "\nmessages, ACKs and summary.txt are in %s (attach them to the email to the CAIR Data Exchange Specialist)\n", rep.Dir)
	}
	switch {
	case errors.Is(err, outbound.ErrCredentialsRefused):
		fmt.Fprintf(stdout, "the registry refused our credentials: fix them, then run izdrop ping -endpoint %s -auth\n", rep.Header.Endpoint)
		return exitRefused
	case errors.Is(err, service.ErrProduction):
		return fail(stderr, usageError{err.Error()})
	case err != nil && len(rep.Results) == 0:
		return fail(stderr, err)
	case err != nil:
		fmt.Fprintln(stderr, "izdrop:", err)
		return exitFailure
	}
	for _, r := range rep.Results {
		if r.Err != nil {
			return exitFailure
		}
	}
	if !testplan.Passed(rep.Results) {
		fmt.Fprintf(stdout, "FAILED: %s\n", strings.Join(testplan.Failed(rep.Results), ", "))
		return exitRecords
	}
	if rep.Recorded {
		fmt.Fprintln(stdout, "every case passed; the run is recorded (izdrop config check looks for it before production)")
	} else {
		fmt.Fprintln(stdout, "every case chosen passed (only a run of every case is recorded as the test plan passing)")
	}
	return exitOK
}
