package watcher

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/izdrop/izdrop/internal/durable"
)

// ErrGone is returned when a file to claim is no longer there: another
// process took it, or its writer moved it. On Windows it is also returned
// for a file another program still has open (its writer, most likely),
// which cannot be renamed there: it is looked at again as a new file.
var ErrGone = errors.New("watcher: the file is gone (claimed elsewhere?)")

// Claimed is a file in an inbox's work/ folder.
type Claimed struct {
	ID      string    // claim id: when and by whom, unique
	Name    string    // the file's name in the inbox
	Path    string    // its path in work/
	Markers []string  // marker files claimed with it, in work/
	At      time.Time // claim time, from the id
}

// NewClaimID returns a claim id: the UTC time (so names sort by claim
// order) and random bits (so no two claims collide).
// Within a process, ids strictly increase: two claims in the same
// millisecond would otherwise sort by their random bits, and a resumed pass
// could take the later file first.
func NewClaimID(now time.Time) string {
	var b [5]byte
	rand.Read(b[:])
	ms := now.UnixMilli()
	for {
		last := lastClaimMS.Load()
		if ms <= last {
			ms = last + 1
		}
		if lastClaimMS.CompareAndSwap(last, ms) {
			break
		}
	}
	return time.UnixMilli(ms).UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

var lastClaimMS atomic.Int64

func isClaimName(name string) bool {
	id, _, ok := strings.Cut(name, "--")
	if !ok || len(id) != len("20060102T150405.000Z")+11 {
		return false
	}
	_, err := time.Parse("20060102T150405.000Z", id[:20])
	return err == nil
}

// ParseClaimName splits a work/ file name into claim id and inbox name.
func ParseClaimName(workName string) (id, name string, at time.Time, ok bool) {
	if !isClaimName(workName) {
		return "", "", time.Time{}, false
	}
	id, name, _ = strings.Cut(workName, "--")
	at, _ = time.Parse("20060102T150405.000Z", id[:20])
	return id, name, at, true
}

// ClaimLocal moves inbox/name into work/ under a fresh claim name, with its
// marker files if the inbox uses them. Only one claim of a file can succeed;
// the others get ErrGone.
func ClaimLocal(inbox, work, name, marker string, now time.Time) (Claimed, error) {
	if err := os.MkdirAll(work, 0o700); err != nil {
		return Claimed{}, err
	}
	id := NewClaimID(now)
	c := Claimed{ID: id, Name: name, Path: filepath.Join(work, id+"--"+name), At: now}
	if err := os.Rename(filepath.Join(inbox, name), c.Path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Claimed{}, ErrGone
		}
		if isBusy(err) {
			return Claimed{}, fmt.Errorf("%w: %s is open in another program", ErrGone, name)
		}
		return Claimed{}, fmt.Errorf("claiming %s: %w", name, err)
	}
	c.Markers = claimMarkers(inbox, work, id, name, marker)
	durable.SyncDir(work)
	durable.SyncDir(inbox)
	return c, nil
}

// ClaimLocalPaired is ClaimLocal for an inbox whose files may come in
// pairs: a data file's partner is claimed right after it, under the same
// claim id, and listed in Markers - it travels with the data file as a
// marker does. A claim cut short between the two is completed by
// WorkFilesPaired.
func ClaimLocalPaired(inbox, work, name, marker string, pair Pairing, now time.Time) (Claimed, error) {
	c, err := ClaimLocal(inbox, work, name, marker, now)
	if err != nil || pair == nil {
		return c, err
	}
	if p := claimPartner(inbox, work, c.ID, c.Name, pair); p != "" {
		c.Markers = append(c.Markers, p)
		durable.SyncDir(work)
		durable.SyncDir(inbox)
	}
	return c, nil
}

// claimPartner moves the partner of the data file name into work/ under
// the claim id; "" when it has none or it is not in the inbox.
func claimPartner(inbox, work, id, name string, pair Pairing) string {
	partner, data, ok := pair(name)
	if !ok || !data || validLocalName(partner) != nil {
		return ""
	}
	dst := filepath.Join(work, id+"--"+partner)
	if err := os.Rename(filepath.Join(inbox, partner), dst); err != nil {
		return ""
	}
	return dst
}

func validLocalName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return errors.New("not a file name")
	}
	return nil
}

func claimMarkers(inbox, work, id, name, marker string) []string {
	var out []string
	for _, m := range MarkerFor(name, marker) {
		dst := filepath.Join(work, id+"--"+m)
		if err := os.Rename(filepath.Join(inbox, m), dst); err == nil {
			out = append(out, dst)
		}
	}
	return out
}

// WorkFiles lists the claimed files in a work/ folder, oldest claim first.
// Markers left in the inbox by a claim cut short are claimed now.
func WorkFiles(inbox, work, marker string) ([]Claimed, error) {
	return WorkFilesPaired(inbox, work, marker, nil)
}

// WorkFilesPaired is WorkFiles for an inbox whose files may come in pairs:
// a partner in work/ is listed with its data file (in Markers), a partner
// a claim cut short left in the inbox is claimed now, and a partner whose
// data file has left work/ (archived without it) is not a claim.
func WorkFilesPaired(inbox, work, marker string, pair Pairing) ([]Claimed, error) {
	ents, err := os.ReadDir(work)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	byID := map[string]*Claimed{}
	var order []string
	var markers []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		id, name, at, ok := ParseClaimName(e.Name())
		if !ok {
			continue
		}
		lower := strings.ToLower(name)
		if strings.HasSuffix(lower, ".part") || strings.HasSuffix(lower, ".tmp") {
			continue // a download or copy not finished
		}
		if strings.HasSuffix(lower, ".done") || strings.HasSuffix(lower, ".ready") {
			markers = append(markers, e.Name())
			continue
		}
		if pair != nil {
			if _, data, ok := pair(name); ok && !data {
				markers = append(markers, e.Name())
				continue
			}
		}
		byID[id] = &Claimed{ID: id, Name: name, Path: filepath.Join(work, e.Name()), At: at}
		order = append(order, id)
	}
	for _, m := range markers {
		id, _, _, _ := ParseClaimName(m)
		if c, ok := byID[id]; ok {
			c.Markers = append(c.Markers, filepath.Join(work, m))
		}
	}
	sort.Strings(order)
	out := make([]Claimed, 0, len(order))
	for _, id := range order {
		c := byID[id]
		hasMarker, hasPartner := false, false
		partner, data, paired := "", false, false
		if pair != nil {
			partner, data, paired = pair(c.Name)
		}
		for _, m := range c.Markers {
			_, n, _, _ := ParseClaimName(filepath.Base(m))
			if paired && data && n == partner {
				hasPartner = true
			} else {
				hasMarker = true
			}
		}
		if marker != "" && !hasMarker {
			c.Markers = append(c.Markers, claimMarkers(inbox, work, c.ID, c.Name, marker)...)
		}
		if paired && data && !hasPartner {
			if p := claimPartner(inbox, work, c.ID, c.Name, pair); p != "" {
				c.Markers = append(c.Markers, p)
			}
		}
		out = append(out, *c)
	}
	return out, nil
}

// LockPath takes an exclusive lock on a lock file (created if needed)
// without waiting; ok is false when another process holds it. The lock lasts
// until unlock is called or the process ends.
func LockPath(path string) (unlock func(), ok bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	f, err := openLockable(path, true)
	if err != nil {
		return nil, false, err
	}
	if ok, err := tryLock(f); !ok {
		f.Close()
		return nil, false, err
	}
	return func() { unlockFile(f) }, true, nil
}

// Lock takes the exclusive processing lock of a claimed file without
// waiting. ok is false when another process holds it. The lock lasts until
// unlock or the process's death. The file can still be read, and renamed
// or removed (also on Windows), while it is locked.
func Lock(path string) (unlock func(), ok bool, err error) {
	f, err := openLockable(path, false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, err
	}
	if ok, err := tryLock(f); !ok {
		f.Close()
		return nil, false, err
	}
	// The file may have been archived between open and lock: make sure the
	// name still leads to the file locked.
	st1, err1 := f.Stat()
	st2, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(st1, st2) {
		unlockFile(f)
		return nil, false, nil
	}
	return func() { unlockFile(f) }, true, nil
}
