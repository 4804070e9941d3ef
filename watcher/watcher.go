// Package watcher finds export files in inbox folders and claims them: the
// first step of the flow, before transform reads them.
//
// A file is taken only when it is stable - size and modification time
// unchanged for a window (default 2 s) - when it is not hidden or a temp
// name (.*, *.tmp, *.part, ~*), when it matches the inbox's patterns, and,
// when the inbox asks for one, when its marker file (NAME.done or
// NAME.ready) is there. Ready files are taken oldest first.
//
// Claiming is one atomic rename into the inbox's work/ folder under a name
// no other claim can have (<claim id>--NAME), so two izdrop processes on one
// inbox never take the same file: only one rename of it can succeed, and a
// claim never overwrites. While a file in work/ is processed its processor
// holds an exclusive lock on it (Lock), which the kernel drops when the
// process dies: another instance, or the same one restarted, resumes only
// files nobody holds.
//
// The listing is behind a small interface (Lister) so that local folders
// and SFTP servers share the rules. Local inboxes add fsnotify events to the
// periodic rescan; events get lost (overflow, network file systems,
// restarts), so the rescan is what guarantees a file is seen.
//
// Per platform, the locks are flock(LOCK_EX|LOCK_NB) on Linux and macOS
// (advisory: they keep izdrop processes apart and stop no reader) and
// LockFileEx(LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY) on Windows,
// where byte-range locks are mandatory: the lock covers one byte far past
// any file's end, so reading the file is not blocked, and the lock handle
// shares delete so the locked file can still be moved to the archive.
// Where Windows differs: a file its writer still has open cannot be
// renamed, so it is not claimed until the writer closes it (it is then
// looked at as a new file); and the inbox folder's mode and group
// (CreateInbox) are not applied - its ACL is whatever the folder inherits.
// flock on an NFS mount is only as good as the server's lock manager: run
// the processes sharing an inbox on one host.
package watcher

import (
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Entry is a file in a folder.
type Entry struct {
	Name    string
	Size    int64
	ModTime time.Time
	// Kind is "" for a regular file; "symlink", "folder" or "other" for
	// what is listed only to be reported as not taken.
	Kind string
}

// Rules say which files of an inbox are taken.
type Rules struct {
	Patterns  []string      // shell patterns; empty takes every file
	Marker    string        // "", "done" or "ready"
	StableFor time.Duration // default 2s
	// TrustModTime lets a file whose modification time is already older
	// than StableFor be taken at first sight (a local clock); for remote
	// servers the window is always observed.
	TrustModTime bool
	// CaseSensitive makes the patterns match names in their case only; by
	// default *.csv also takes EXPORT.CSV.
	CaseSensitive bool
	// Pair, when set, makes files that come in pairs wait for each other:
	// a pair's data file is taken only when its partner is there and
	// stable too, and a partner is never taken on its own.
	Pair Pairing
}

// Pairing says which files of an inbox come in pairs, as a FHIR bulk
// export's Patient.ndjson and Immunization.ndjson do: for a name, the name
// of its partner and whether it is the pair's data file (the one processed;
// its partner is claimed and archived with it, as a marker is). ok is false
// for a file that stands alone.
type Pairing func(name string) (partner string, data, ok bool)

// Tracker remembers what it saw of an inbox across listings.
type Tracker struct {
	rules Rules
	seen  map[string]observation
	told  map[string]string // names reported as not taken, and why
}

type observation struct {
	size  int64
	mtime time.Time
	since time.Time // when this size and mtime were first seen
}

// NewTracker returns a tracker for an inbox's rules.
func NewTracker(r Rules) *Tracker {
	if r.StableFor <= 0 {
		r.StableFor = 2 * time.Second
	}
	return &Tracker{rules: r, seen: map[string]observation{}, told: map[string]string{}}
}

// Ignored reports whether a name is never taken: hidden, temporary, or a
// marker.
func Ignored(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~") ||
		strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".part") ||
		strings.HasSuffix(lower, ".done") || strings.HasSuffix(lower, ".ready") ||
		strings.Contains(name, "--") && isClaimName(name)
}

// MarkerFor returns the marker names that release a data file.
func MarkerFor(name, marker string) []string {
	if marker == "" {
		return nil
	}
	ext := filepath.Ext(name)
	return []string{name + "." + marker, strings.TrimSuffix(name, ext) + "." + marker}
}

// MarkerRenamed returns the name a marker (or a partner, see Pairing) gets
// when its data file, first called name, is filed as newName: NAME.done
// stays newName.done, the stem form (a.done for a.csv) stays in the stem
// form of newName, and a partner takes the same change of name as its data
// file (Patient.ndjson goes with Immunization-1.ndjson as Patient-1.ndjson).
func MarkerRenamed(name, marker, newName string) string {
	if rest, ok := strings.CutPrefix(marker, name); ok && strings.HasPrefix(rest, ".") {
		return newName + rest
	}
	stem := strings.TrimSuffix(name, filepath.Ext(name))
	if rest, ok := strings.CutPrefix(marker, stem); ok && strings.HasPrefix(rest, ".") {
		return strings.TrimSuffix(newName, filepath.Ext(newName)) + rest
	}
	// A partner shares its data file's extension and differs from its name
	// in one part (PRE Immunization SUF and PRE Patient SUF); newName
	// keeps PRE and the data file's part.
	pre := 0
	for pre < len(name) && pre < len(marker) && name[pre] == marker[pre] {
		pre++
	}
	suf := 0
	for suf < len(name)-pre && suf < len(marker)-pre && name[len(name)-1-suf] == marker[len(marker)-1-suf] {
		suf++
	}
	if part := name[pre : len(name)-suf]; part != "" && filepath.Ext(name) != "" && suf >= len(filepath.Ext(name)) && strings.HasPrefix(newName, name[:pre]+part) {
		return name[:pre] + marker[pre:len(marker)-suf] + newName[pre+len(part):]
	}
	return newName + "." + marker // not a companion of name: keep it whole, beside it
}

// Update takes a fresh listing at time now and returns the files ready to
// take, oldest first, and how many more are waiting to become stable or to
// get their marker.
func (t *Tracker) Update(entries []Entry, now time.Time) (ready []Entry, waiting int) {
	ready, waiting, _ = t.update(entries, now)
	return ready, waiting
}

// UpdateNext is Update that also says when the first waiting file will
// have been stable long enough, if nothing changes (zero when none waits
// for stability only).
func (t *Tracker) UpdateNext(entries []Entry, now time.Time) (ready []Entry, waiting int, next time.Time) {
	return t.update(entries, now)
}

func (t *Tracker) update(entries []Entry, now time.Time) (ready []Entry, waiting int, next time.Time) {
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name] = true
	}
	seen := make(map[string]observation, len(entries))
	byName := make(map[string]Entry)
	for _, e := range entries {
		if e.Kind != "" || Ignored(e.Name) || !t.matches(e.Name) && t.rules.Pair == nil {
			continue
		}
		o, ok := t.seen[e.Name]
		if !ok || o.size != e.Size || !o.mtime.Equal(e.ModTime) {
			o = observation{size: e.Size, mtime: e.ModTime, since: now}
		}
		seen[e.Name] = o
		byName[e.Name] = e
	}
	// stable reports whether a file has been stable long enough, or when
	// it will have been.
	stable := func(e Entry) (bool, time.Time) {
		o := seen[e.Name]
		if now.Sub(o.since) >= t.rules.StableFor || t.rules.TrustModTime && now.Sub(e.ModTime) >= t.rules.StableFor {
			return true, time.Time{}
		}
		return false, o.since.Add(t.rules.StableFor)
	}
	wait := func(at time.Time) {
		waiting++
		if !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	for _, e := range entries {
		if e.Kind != "" || Ignored(e.Name) || !t.matches(e.Name) {
			continue
		}
		ok, at := stable(e)
		if t.rules.Pair != nil {
			if partner, data, paired := t.rules.Pair(e.Name); paired {
				if !data {
					if !present[partner] {
						wait(time.Time{}) // waits for its data file
					}
					continue // taken with its data file
				}
				pe, there := byName[partner]
				if !there {
					wait(time.Time{}) // waits for its partner
					continue
				}
				if pok, pat := stable(pe); !pok {
					ok = false
					if at.IsZero() || pat.After(at) {
						at = pat
					}
				}
			}
		}
		marked := t.rules.Marker == ""
		for _, m := range MarkerFor(e.Name, t.rules.Marker) {
			marked = marked || present[m]
		}
		switch {
		case ok && marked:
			ready = append(ready, e)
		case !ok:
			wait(at)
		default:
			wait(time.Time{}) // waits for its marker
		}
	}
	t.seen = seen
	sort.Slice(ready, func(i, j int) bool {
		if !ready[i].ModTime.Equal(ready[j].ModTime) {
			return ready[i].ModTime.Before(ready[j].ModTime)
		}
		return ready[i].Name < ready[j].Name
	})
	return ready, waiting, next
}

// Forget drops what the tracker knows of a name (after a claim).
func (t *Tracker) Forget(name string) { delete(t.seen, name) }

func (t *Tracker) matches(name string) bool {
	if len(t.rules.Patterns) == 0 {
		return true
	}
	for _, p := range t.rules.Patterns {
		n := name
		if !t.rules.CaseSensitive {
			p, n = strings.ToLower(p), strings.ToLower(name)
		}
		if ok, _ := filepath.Match(p, n); ok {
			return true
		}
	}
	return false
}

// Skip is a file of an inbox izdrop will not take, and why.
type Skip struct{ Name, Why string }

// Skipped returns the entries of a listing that will never be taken, each
// once: a name is reported again only after it left the inbox or its
// reason changed. izdrop's own names (work/, the lock file, probes) and
// markers, taken with their file, are not reported.
func (t *Tracker) Skipped(entries []Entry) []Skip {
	var out []Skip
	now := make(map[string]bool, len(entries))
	for _, e := range entries {
		why := t.whyNot(e)
		if why == "" {
			continue
		}
		now[e.Name] = true
		if t.told[e.Name] != why {
			t.told[e.Name] = why
			out = append(out, Skip{e.Name, why})
		}
	}
	for n := range t.told {
		if !now[n] {
			delete(t.told, n)
		}
	}
	return out
}

func (t *Tracker) whyNot(e Entry) string {
	lower := strings.ToLower(e.Name)
	switch {
	case strings.HasPrefix(e.Name, ".izdrop") || e.Kind == "folder" && (e.Name == "work" || e.Name == "done" || e.Name == "failed"):
		return "" // izdrop's own
	case e.Kind == "symlink":
		return "a symbolic link: izdrop takes regular files only (a link may lead outside the inbox); put the file itself in the inbox"
	case e.Kind == "folder":
		return "a folder: izdrop does not look into sub-folders of the inbox"
	case e.Kind != "":
		return "not a regular file"
	case strings.HasSuffix(lower, ".done") || strings.HasSuffix(lower, ".ready"):
		return "" // a marker, taken with its file
	case strings.HasPrefix(e.Name, "."):
		return "a hidden name (starting with .): renamed to its final name, it is taken"
	case strings.HasPrefix(e.Name, "~") || strings.HasSuffix(lower, ".tmp") || strings.HasSuffix(lower, ".part"):
		return "a temporary name (~*, *.tmp, *.part): renamed to its final name, it is taken"
	case strings.Contains(e.Name, "--") && isClaimName(e.Name):
		return "the name looks like one izdrop gives claimed files (TIME-ID--NAME): rename it"
	}
	if t.rules.Pair != nil {
		if _, _, paired := t.rules.Pair(e.Name); paired {
			return "" // one of a pair: taken with its partner
		}
	}
	if !t.matches(e.Name) {
		return "the name matches none of the inbox's patterns (" + strings.Join(t.rules.Patterns, ", ") + ")"
	}
	return ""
}

// Matches reports whether a name matches the rules' patterns.
func (t *Tracker) Matches(name string) bool { return t.matches(name) }
