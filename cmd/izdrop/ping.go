package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/service"

	"github.com/izdrop/izdrop/ack"
)

func init() {
	commands["ping"] = command{"test the connection to a configured registry endpoint", pingCmd}
}

func pingCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("ping", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	name := fs.String("endpoint", "", "endpoint name (default: the first inbox's endpoint)")
	auth := fs.Bool("auth", false, "also check the credentials, with a header-only test message (MSH-11 T) the registry refuses without storing anything")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	if *name == "" {
		if names := c.InboxNames(); len(names) > 0 {
			*name = c.Inboxes[names[0]].Endpoint
		}
	}
	log, _ := service.NewLogger("auto", "warn", stderr)
	sandboxURL := ""
	if service.Embedded(c, *name) {
		sb, url, err := service.EmbeddedSandbox(c, log)
		if err != nil {
			return fail(stderr, err)
		}
		sandboxURL = url
		if sb != nil {
			defer sb.Close()
			fmt.Fprintf(stdout, "endpoint %q is the embedded sandbox, started at %s for this test\n", *name, url)
		} else {
			fmt.Fprintf(stdout, "endpoint %q is the embedded sandbox of the izdrop running at %s\n", *name, url)
		}
	}
	ep, err := service.OutboundEndpoint(c, *name, sandboxURL)
	if err != nil {
		return fail(stderr, usageError{err.Error()})
	}
	ep.MaxAttempts = 1
	cl, err := outbound.New(ep, log)
	if err != nil {
		return fail(stderr, usageError{err.Error()})
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), ep.ConnectTimeout+ep.ReadTimeout+5*time.Second)
	defer cancel()
	start := time.Now()
	if err := cl.Ping(ctx); err != nil {
		fmt.Fprintf(stdout, "%s (%s): connectivity test FAILED after %v\n  %s\n", *name, ep.URL, time.Since(start).Round(time.Millisecond), outbound.Explain(err))
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s (%s, %s codec): connectivity test ok in %v\n", *name, ep.URL, ep.Codec.Name, time.Since(start).Round(time.Millisecond))
	if !*auth {
		fmt.Fprintln(stdout, "  (the connectivity test does not check credentials; add -auth for that)")
		return exitOK
	}
	e := hl7.NewEncoder(hl7.DefaultDelimiters)
	e.Segment("MSH")
	e.F("izdrop")
	e.F(ep.FacilityID)
	e.F("CAIR IIS")
	e.At(7)
	e.Time(time.Now())
	e.At(9)
	e.Comps("VXU", "V04", "VXU_V04")
	e.F(fmt.Sprintf("PING%d", time.Now().Unix()))
	e.F("T") // training: refused with AR, nothing stored
	e.F("2.5.1")
	text, err := cl.Submit(ctx, e.Bytes())
	if err == nil {
		if _, perr := ack.Parse([]byte(text)); perr != nil {
			fmt.Fprintf(stdout, "  credentials check: the answer is not an ACK (%v)\n", perr)
			return exitFailure
		}
	}
	// The service stops sending to a registry that refused our
	// credentials, and resumes once a check like this one passes.
	j, jerr := service.OpenJournal(c)
	if jerr != nil {
		return fail(stderr, jerr)
	}
	defer j.Close()
	before, wasRefused, _ := j.Refused(ctx, c.Endpoints[*name].Identity())
	if jerr := service.CredentialsChecked(ctx, j, c.Endpoints[*name], err); jerr != nil {
		return fail(stderr, jerr)
	}
	if err != nil {
		fmt.Fprintf(stdout, "  credentials check FAILED\n  %s\n", outbound.Explain(err))
		var sec *outbound.SecurityFault
		if errors.As(err, &sec) {
			fmt.Fprintln(stdout, "  izdrop sends nothing more to this endpoint until a check like this one passes.")
			return exitRefused
		}
		return exitFailure
	}
	fmt.Fprintln(stdout, "  credentials accepted (the registry answered the header-only test message with an ACK)")
	if wasRefused {
		fmt.Fprintf(stdout, "  the registry had refused our credentials on %s; sending to it resumes\n", before.At.Local().Format("2006-01-02 15:04:05"))
	}
	return exitOK
}
