// The CAIR2 test plan, run against an endpoint: the wiring around package
// testplan (endpoint, site, sandbox, journal) for `izdrop testplan`.

package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/testplan"
	"github.com/izdrop/izdrop/transform"
)

// TestplanOptions say where and how the test plan runs.
type TestplanOptions struct {
	Endpoint string   // default: the first inbox's endpoint
	Site     string   // a [sites] name; default: that inbox's site
	Only     []string // case names; empty for all
	Out      string   // folder for messages and ACKs; default ./testplan-RUN
	Version  string
	Log      zerolog.Logger
	Now      func() time.Time
}

// TestplanReport is what a run did.
type TestplanReport struct {
	Header  testplan.Header
	Results []testplan.Result
	Added   []string // cases run first because a chosen one needs them
	Dir     string
	// Recorded: a run of every case, kept in the journal (config check
	// looks for a passed one before production).
	Recorded bool
}

// ErrProduction refuses a test plan against a production endpoint: it
// sends fake patients.
var ErrProduction = errors.New("the test plan sends fake patients: it runs against a staging endpoint (or the sandbox), never production")

// RunTestplan builds the test plan's messages for a site, sends them to an
// endpoint in order, writes every message and ACK with a summary to a
// folder and records the run (and what it says of the credentials) in the
// journal.
func RunTestplan(ctx context.Context, c *config.Config, o TestplanOptions) (TestplanReport, error) {
	var rep TestplanReport
	if o.Now == nil {
		o.Now = time.Now
	}
	epName, siteName := o.Endpoint, o.Site
	for _, n := range c.InboxNames() {
		in := c.Inboxes[n]
		if epName == "" {
			epName = in.Endpoint
		}
		if siteName == "" && in.Endpoint == epName {
			siteName = in.Site
		}
	}
	e, ok := c.Endpoints[epName]
	if !ok {
		return rep, fmt.Errorf("endpoint %q is not defined", epName)
	}
	if e.Environment == config.Production {
		return rep, fmt.Errorf("endpoint %s: %w", epName, ErrProduction)
	}
	site, ok := c.Sites[siteName]
	if !ok {
		return rep, fmt.Errorf("site %q is not defined", siteName)
	}
	cases, added, err := testplan.Select(o.Only)
	if err != nil {
		return rep, err
	}
	rep.Added = added
	cs, err := codes.Load(filepath.Join(c.Service.DataDir, "codes"))
	if err != nil {
		return rep, err
	}
	sbURL := ""
	if Embedded(c, epName) {
		sb, url, err := EmbeddedSandbox(c, o.Log)
		if err != nil {
			return rep, fmt.Errorf("embedded sandbox: %w", err)
		}
		if sb != nil {
			defer sb.Close()
		}
		sbURL = url
	}
	oep, err := OutboundEndpoint(c, epName, sbURL)
	if err != nil {
		return rep, err
	}
	oep.MaxAttempts, oep.RetryBudget = 3, 2*time.Minute
	cl, err := outbound.New(oep, o.Log)
	if err != nil {
		return rep, err
	}
	defer cl.Close()

	now := o.Now().In(c.Location())
	run := "TP" + now.Format("060102150405")
	rep.Dir = o.Out
	if rep.Dir == "" {
		rep.Dir = "testplan-" + run
	}
	if err := os.MkdirAll(rep.Dir, 0o700); err != nil {
		return rep, err
	}
	ts := site.TransformSite()
	opt := transform.Options{Profile: transform.Profile{Name: config.DefaultProfile, Delimiter: ','}, Site: ts, Sites: c.TransformSites(),
		Codes: cs, Now: o.Now, Location: c.Location(), FileDate: now, Application: "izdrop " + o.Version}
	msgs, err := testplan.Build(cases, opt, run, rep.Dir)
	if err != nil {
		return rep, err
	}
	rep.Header = testplan.Header{Endpoint: epName, URL: oep.URL, Environment: e.Environment, Site: ts.ID, SendingFacility: ts.SendingFacility,
		Region: ts.Region, Run: run, At: now, Version: o.Version}
	rep.Results, err = testplan.Run(ctx, cl, msgs, rep.Dir)
	if werr := testplan.WriteSummary(rep.Dir, rep.Header, rep.Results); werr != nil && err == nil {
		err = werr
	}
	j, jerr := OpenJournal(c)
	if jerr != nil {
		return rep, errors.Join(err, jerr)
	}
	defer j.Close()
	answered := false
	for _, r := range rep.Results {
		answered = answered || r.Outcome != ""
	}
	switch {
	case errors.Is(err, outbound.ErrCredentialsRefused):
		CredentialsChecked(ctx, j, e, err)
	case answered:
		CredentialsChecked(ctx, j, e, nil)
	}
	if len(o.Only) == 0 && len(rep.Results) == len(cases) {
		failed := testplan.Failed(rep.Results)
		if jerr := j.AddTestplanRun(ctx, journal.TestplanRun{Endpoint: epName, Registry: e.Identity(), Environment: e.Environment,
			Site: ts.ID, At: now, Cases: len(cases), Failed: failed}); jerr != nil {
			return rep, errors.Join(err, jerr)
		}
		rep.Recorded = true
	}
	return rep, err
}
