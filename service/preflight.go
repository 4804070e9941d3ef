// Preflight: what `izdrop config check` looks at beyond the file itself -
// the runtime checks of config.Check, whether a test plan passed before
// production is selected, refusals on record, and, when asked, each
// endpoint's answer to a connectivity test.

package service

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
)

// Preflight checks a configuration as the service would meet it at run
// time. With connect, each endpoint an inbox uses is sent a connectivity
// test (no credentials, nothing stored).
func Preflight(ctx context.Context, c *config.Config, connect bool) []config.Finding {
	out := c.Check()
	used := map[string][]string{}
	for _, name := range c.InboxNames() {
		e := c.Inboxes[name].Endpoint
		used[e] = append(used[e], name)
	}
	names := make([]string, 0, len(used))
	for n := range used {
		if _, ok := c.Endpoints[n]; ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var j journal.Store
	key := "service.data_dir"
	if c.Journal.Postgres() {
		key = "journal.url"
	}
	if _, err := os.Stat(filepath.Join(c.Service.DataDir, "journal.db")); err == nil || c.Journal.Postgres() {
		if j, err = OpenJournal(c); err != nil {
			out = append(out, c.Finding(config.SevError, key, "the journal cannot be opened: %v", err))
			j = nil
		} else {
			defer j.Close()
		}
	}
	for _, name := range names {
		e := c.Endpoints[name]
		key := "endpoints." + name
		if e.Environment == config.Production {
			out = append(out, testplanFinding(ctx, c, j, key))
		}
		if j != nil {
			if r, ok, err := j.Refused(ctx, e.Identity()); err == nil && ok && r.Fingerprint == e.Fingerprint() {
				out = append(out, c.Finding(config.SevError, key, "the registry refused our credentials on %s (%s): nothing is sent to it until they are fixed and `izdrop ping -endpoint %s -auth` passes",
					r.At.Local().Format("2006-01-02 15:04"), r.Reason, name))
			}
		}
		if connect {
			out = append(out, connectFinding(ctx, c, name, key))
		}
	}
	return out
}

func testplanFinding(ctx context.Context, c *config.Config, j journal.Store, key string) config.Finding {
	if j == nil {
		return c.Finding(config.SevWarning, key+".environment", "production is selected, but no `izdrop testplan` run against a staging endpoint is recorded from this installation: run it and have CAIR approve before going live")
	}
	last, passed, okLast, okPassed, err := j.LastTestplanRun(ctx, config.Staging)
	switch {
	case err != nil:
		return c.Finding(config.SevWarning, key+".environment", "the journal's test plan runs cannot be read: %v", err)
	case !okLast:
		return c.Finding(config.SevWarning, key+".environment", "production is selected, but no `izdrop testplan` run against a staging endpoint is recorded from this installation: run it and have CAIR approve before going live")
	case !okPassed:
		return c.Finding(config.SevWarning, key+".environment", "production is selected, but no `izdrop testplan` run against staging has passed from this installation (the last, on %s, failed: %s)",
			last.At.Local().Format("2006-01-02"), strings.Join(last.Failed, ", "))
	}
	return c.Finding(config.SevInfo, key+".environment", "production; the test plan passed against staging endpoint %s on %s (site %s)", passed.Endpoint, passed.At.Local().Format("2006-01-02 15:04"), passed.Site)
}

func connectFinding(ctx context.Context, c *config.Config, name, key string) config.Finding {
	sandboxURL := ""
	if Embedded(c, name) {
		return c.Finding(config.SevInfo, key, "the embedded sandbox: started with the service, nothing to connect to now")
	}
	ep, err := OutboundEndpoint(c, name, sandboxURL)
	if err != nil {
		return c.Finding(config.SevError, key, "%v", err)
	}
	ep.MaxAttempts = 1
	cl, err := outbound.New(ep, zerolog.Nop())
	if err != nil {
		return c.Finding(config.SevError, key, "%v", err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, ep.ConnectTimeout+ep.ReadTimeout)
	defer cancel()
	if err := cl.Ping(cctx); err != nil {
		sev := config.SevError
		if errors.Is(err, context.DeadlineExceeded) {
			sev = config.SevWarning
		}
		return c.Finding(sev, key+".url", "connectivity test failed: %s", outbound.Explain(err))
	}
	return c.Finding(config.SevInfo, key+".url", "connectivity test ok (credentials are checked by `izdrop ping -endpoint %s -auth`)", name)
}
