// Package status is what izdrop says of itself: per inbox, the files
// waiting, in work, done and failed, their records' outcomes, the most
// frequent errors, and each endpoint's state - for `izdrop status`, its
// --json, and the status page `izdrop serve` serves. It only reads: the
// journal (files, records, what the service wrote of its endpoints and its
// heartbeat) and the inbox folders. Record ids and error codes appear here,
// never a patient's name, birth date, address or phone.
package status

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/watcher"
)

// Report is the service's state at one moment.
type Report struct {
	At    time.Time `json:"at"`
	Since time.Time `json:"since"` // done/failed and records count from here
	// Running lists the izdrop processes that beat in the last minutes.
	Running   []journal.Heartbeat `json:"running"`
	Inboxes   []Inbox             `json:"inboxes"`
	Endpoints []Endpoint          `json:"endpoints"`
}

// Inbox is one inbox's figures.
type Inbox struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Endpoint string `json:"endpoint"`
	// Waiting counts files in the inbox not taken yet (-1 for an SFTP
	// inbox: not listed from here).
	Waiting int `json:"waiting"`
	InWork  int `json:"in_work"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	// Records by outcome: accepted, accepted_with_warnings,
	// already_accepted, rejected, invalid, unknown, and pending.
	Records   map[string]int `json:"records"`
	TopErrors []ErrorCount   `json:"top_errors,omitempty"`
	Files     []File         `json:"files"`
}

// ErrorCount is how often one error came up.
type ErrorCount struct {
	Source string `json:"source"` // izdrop or registry
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
	Text   string `json:"text"` // one example text
	Count  int    `json:"count"`
}

// File is one file of an inbox.
type File struct {
	Claim     string         `json:"claim"`
	Name      string         `json:"name"`
	State     string         `json:"state"`  // claimed, reading, pending, archiving, archived
	Result    string         `json:"result"` // done or failed, once archived
	ClaimedAt time.Time      `json:"claimed_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	Archive   string         `json:"archive,omitempty"`
	Error     string         `json:"error,omitempty"`
	Counts    map[string]int `json:"counts"`
}

// Endpoint is a registry endpoint's state.
type Endpoint struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	State       string    `json:"state"` // ok, retrying, breaker-open, half-open, credentials-refused, unknown
	Reason      string    `json:"reason,omitempty"`
	Since       time.Time `json:"since,omitempty"`
	UpdatedAt   time.Time `json:"updated_at,omitempty"`
}

// Options choose what a report covers.
type Options struct {
	Since    time.Time // default: the start of today in the service's zone
	MaxFiles int       // files listed per inbox (default 50)
	Now      func() time.Time
}

// Build reads a report.
func Build(ctx context.Context, c *config.Config, j journal.Store, o Options) (Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now().In(c.Location())
	if o.Since.IsZero() {
		o.Since = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	}
	if o.MaxFiles == 0 {
		o.MaxFiles = 50
	}
	r := Report{At: now, Since: o.Since}
	var err error
	if r.Running, err = j.Heartbeats(ctx, now.Add(-3*time.Minute)); err != nil {
		return r, err
	}
	states, err := j.EndpointStates(ctx)
	if err != nil {
		return r, err
	}
	used := map[string]bool{}
	for _, name := range c.InboxNames() {
		in, err := buildInbox(ctx, c, j, name, o)
		if err != nil {
			return r, err
		}
		r.Inboxes = append(r.Inboxes, in)
		used[c.Inboxes[name].Endpoint] = true
	}
	for _, name := range sortedKeys(used) {
		e, ok := c.Endpoints[name]
		if !ok {
			continue
		}
		ep := Endpoint{Name: name, Environment: e.Environment, State: "unknown"}
		if s, ok := states[name]; ok && s.Registry == e.Identity() {
			ep.State, ep.Reason, ep.Since, ep.UpdatedAt = s.State, s.Reason, s.Since, s.UpdatedAt
			if len(r.Running) == 0 && ep.State != "credentials-refused" {
				ep.State = "unknown" // nobody is sending: last known only
				ep.Reason = "no izdrop is running; last seen " + s.State
			}
		}
		// A refusal is on record whoever reads: it holds until a check passes.
		if rf, ok, _ := j.Refused(ctx, e.Identity()); ok && rf.Fingerprint == e.Fingerprint() {
			ep.State, ep.Reason, ep.Since = "credentials-refused", rf.Reason, rf.At
		}
		r.Endpoints = append(r.Endpoints, ep)
	}
	return r, nil
}

func buildInbox(ctx context.Context, c *config.Config, j journal.Store, name string, o Options) (Inbox, error) {
	ic := c.Inboxes[name]
	in := Inbox{Name: name, Path: ic.Path, Endpoint: ic.Endpoint, Waiting: -1}
	if ic.Kind == "local" {
		in.Waiting = waitingIn(ic)
	}
	files, err := j.InboxFiles(ctx, name, o.Since, 0)
	if err != nil {
		return in, err
	}
	for i, f := range files {
		switch {
		case f.State != journal.Archived:
			in.InWork++
		case f.Result == string(archive.Done):
			in.Done++
		default:
			in.Failed++
		}
		if i < o.MaxFiles {
			counts, err := j.Counts(ctx, f.Claim)
			if err != nil {
				return in, err
			}
			in.Files = append(in.Files, File{Claim: f.Claim, Name: f.Name, State: f.State, Result: f.Result, ClaimedAt: f.ClaimedAt,
				UpdatedAt: f.UpdatedAt, Archive: f.ArchivePath, Error: f.Error, Counts: pendingKey(counts)})
		}
	}
	counts, err := j.OutcomeCounts(ctx, name, o.Since)
	if err != nil {
		return in, err
	}
	in.Records = pendingKey(counts)
	in.TopErrors, err = topErrors(ctx, j, name, o.Since, 10)
	return in, err
}

// pendingKey names the records without an outcome yet.
func pendingKey(counts map[string]int) map[string]int {
	if n, ok := counts[""]; ok {
		delete(counts, "")
		counts["pending"] = n
	}
	return counts
}

// waitingIn counts the files in a local inbox that look like exports.
func waitingIn(ic *config.Inbox) int {
	ents, err := watcher.ListLocal(ic.Path)
	if err != nil {
		return -1
	}
	t := watcher.NewTracker(watcher.Rules{Patterns: ic.Patterns, CaseSensitive: ic.PatternsCaseSensitive})
	n := 0
	for _, e := range ents {
		if e.Kind == "" && !watcher.Ignored(e.Name) && t.Matches(e.Name) {
			n++
		}
	}
	return n
}

// shown is an issue as status shows it: a registry's own text can echo a
// patient (registries quote names), so it is redacted; izdrop's texts never
// carry patient data. The sidecars keep the registry's text whole.
func shown(i Issue) Issue {
	if i.Source != "izdrop" {
		i.Text = ack.Redact(i.Text)
	}
	return i
}

// Issue is an error or warning as the journal keeps it.
type Issue struct {
	Source   string `json:"source"`
	Severity string `json:"severity"`
	Field    string `json:"field"`
	Code     string `json:"code"`
	Text     string `json:"text"`
}

// topErrors counts the errors of the records in view, most frequent first.
func topErrors(ctx context.Context, j journal.Store, inbox string, since time.Time, n int) ([]ErrorCount, error) {
	byKey := map[string]*ErrorCount{}
	err := j.Problems(ctx, inbox, since, func(outcome, problems string) error {
		var is []Issue
		if json.Unmarshal([]byte(problems), &is) != nil {
			return nil
		}
		for _, i := range is {
			if i.Severity != "error" {
				continue
			}
			key := i.Source + "\x00" + i.Code + "\x00" + i.Field
			e, ok := byKey[key]
			if !ok {
				e = &ErrorCount{Source: i.Source, Code: i.Code, Field: i.Field, Text: shown(i).Text}
				byKey[key] = e
			}
			e.Count++
		}
		return nil
	})
	out := make([]ErrorCount, 0, len(byKey))
	for _, e := range byKey {
		out = append(out, *e)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Count != out[b].Count {
			return out[a].Count > out[b].Count
		}
		return out[a].Code < out[b].Code
	})
	if len(out) > n {
		out = out[:n]
	}
	return out, err
}

// Day is one day's records by outcome, for the 30-day chart.
type Day struct {
	Date     string `json:"date"` // YYYY-MM-DD in the service's zone
	Accepted int    `json:"accepted"`
	Rejected int    `json:"rejected"` // rejected and invalid
}

// Days returns the records of files archived over the last n days, by day
// and outcome, oldest first (every day present, zeros included).
func Days(ctx context.Context, c *config.Config, j journal.Store, now time.Time, n int) ([]Day, error) {
	loc := c.Location()
	now = now.In(loc)
	first := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -(n - 1))
	out := make([]Day, n)
	idx := map[string]int{}
	for i := range out {
		out[i].Date = first.AddDate(0, 0, i).Format("2006-01-02")
		idx[out[i].Date] = i
	}
	for _, name := range c.InboxNames() {
		err := j.ArchivedCounts(ctx, name, first, func(at time.Time, outcome string, k int) {
			i, ok := idx[at.In(loc).Format("2006-01-02")]
			if !ok {
				return
			}
			switch outcome {
			case "accepted", "accepted_with_warnings", "already_accepted":
				out[i].Accepted += k
			case "rejected", "invalid", "unknown":
				out[i].Rejected += k
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// FileReport is one file and its records, for `izdrop status FILE` and the
// file page.
type FileReport struct {
	File    File     `json:"file"`
	Inbox   string   `json:"inbox"`
	Records []Record `json:"records"`
	Waiting string   `json:"waiting,omitempty"` // why its records wait, when they do
	Rejects string   `json:"rejects,omitempty"` // the rejects file, when there is one
}

// Record is one record's fate. The patient is not named: the line and the
// vaccination id find the row in the export.
type Record struct {
	Line          int     `json:"line"`
	VaccinationID string  `json:"vaccination_id"`
	Action        string  `json:"action,omitempty"`
	MSH10         string  `json:"msh10,omitempty"`
	Outcome       string  `json:"outcome"`
	Errors        []Issue `json:"errors,omitempty"`
	Warnings      []Issue `json:"warnings,omitempty"`
}

// ForFile reads the report of a file by claim id or, failing that, the
// newest file of that name.
func ForFile(ctx context.Context, j journal.Store, key string) (FileReport, bool, error) {
	f, err := j.GetFile(ctx, key)
	if err == journal.ErrNotFound {
		fs, err := j.FilesByName(ctx, filepath.Base(key))
		if err != nil || len(fs) == 0 {
			return FileReport{}, false, err
		}
		f = fs[0]
	} else if err != nil {
		return FileReport{}, false, err
	}
	counts, err := j.Counts(ctx, f.Claim)
	if err != nil {
		return FileReport{}, true, err
	}
	rep := FileReport{Inbox: f.Inbox, File: File{Claim: f.Claim, Name: f.Name, State: f.State, Result: f.Result, ClaimedAt: f.ClaimedAt,
		UpdatedAt: f.UpdatedAt, Archive: f.ArchivePath, Error: f.Error, Counts: pendingKey(counts)}}
	err = j.Records(ctx, f.Claim, func(r journal.Record) error {
		rec := Record{Line: r.Line, VaccinationID: r.VaccinationID, Action: r.Action, MSH10: r.MSH10, Outcome: r.Outcome}
		if rec.Outcome == "" {
			rec.Outcome = "pending"
		}
		var is []Issue
		if r.Problems != "" && json.Unmarshal([]byte(r.Problems), &is) == nil {
			for _, i := range is {
				if i.Severity == "error" {
					rec.Errors = append(rec.Errors, shown(i))
				} else {
					rec.Warnings = append(rec.Warnings, shown(i))
				}
			}
		}
		rep.Records = append(rep.Records, rec)
		return nil
	})
	if f.State != journal.Archived {
		if ms, err := j.SendingMessages(ctx, f.Claim); err == nil {
			for _, m := range ms {
				if m.LastError != "" {
					rep.Waiting = m.LastError
					break
				}
			}
		}
	}
	if f.ArchivePath != "" {
		if _, err := os.Stat(f.ArchivePath + archive.Rejects); err == nil {
			rep.Rejects = f.ArchivePath + archive.Rejects
		}
	}
	return rep, true, err
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
