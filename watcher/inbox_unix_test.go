//go:build unix

package watcher

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The EHR's export account writes into the inbox through its group, while
// what izdrop keeps there stays private.
func TestCreateInboxGivesTheGroupTheInboxAndNothingElse(t *testing.T) {
	old := syscall.Umask(0o077) // the modes are set outright, not through the umask
	defer syscall.Umask(old)
	gid := os.Getgid()
	if groups, _ := os.Getgroups(); os.Getuid() != 0 && len(groups) > 0 {
		gid = groups[len(groups)-1]
	} else if os.Getuid() == 0 {
		gid = 65534 // nogroup: root may give any group
	}
	top := t.TempDir()
	dir := filepath.Join(top, "srv", "inbox")
	notes, err := CreateInbox(dir, 0o770|os.ModeSetgid, strconv.Itoa(gid))
	if err != nil {
		t.Fatal(err)
	}
	check := func(p string, want os.FileMode) {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() & (os.ModePerm | os.ModeSetgid | os.ModeSticky); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
		if g := int(st.Sys().(*syscall.Stat_t).Gid); g != gid {
			t.Errorf("%s: group %d, want %d", p, g, gid)
		}
	}
	check(dir, 0o770|os.ModeSetgid)
	check(filepath.Dir(dir), 0o710) // created on the way: the group may pass, not list
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), top) {
		t.Errorf("notes %q: want one naming %s (0700, from t.TempDir) as a folder the export account cannot pass", notes, top)
	}

	// What izdrop makes inside stays private.
	os.WriteFile(filepath.Join(dir, "x.csv"), []byte("data"), 0o640)
	c, err := ClaimLocal(dir, filepath.Join(dir, "work"), "x.csv", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Dir(c.Path)); st.Mode().Perm() != 0o700 {
		t.Errorf("work/ mode %v, want 0700", st.Mode().Perm())
	}
	unlock, ok, err := LockPath(filepath.Join(dir, ".izdrop.lock"))
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	unlock()
	if st, _ := os.Stat(filepath.Join(dir, ".izdrop.lock")); st.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", st.Mode().Perm())
	}

	// An existing inbox is left alone, and the note says so.
	notes, err = CreateInbox(dir, 0o750, "")
	if err != nil || !strings.Contains(strings.Join(notes, "\n"), "exists with mode 0770") {
		t.Errorf("existing inbox: %q %v", notes, err)
	}
	check(dir, 0o770|os.ModeSetgid)

	if _, err := CreateInbox(filepath.Join(top, "other"), 0o770, "no-such-group-izdrop"); err == nil || !strings.Contains(err.Error(), "no-such-group-izdrop") {
		t.Errorf("an unknown group: %v", err)
	}
}
