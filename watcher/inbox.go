package watcher

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// CreateInbox makes a local inbox folder that does not exist yet, with
// mode (permission bits, setgid and sticky as asked) and group (a name or
// a number; "" keeps the account's own), so that an export account in that
// group can write into it. Folders it creates above the inbox are private
// but for the group's search bit, enough to reach the inbox; an existing
// folder is left as it is. The notes say what may keep the group from the
// inbox: an existing inbox with other permissions, or a folder above it
// the group cannot pass through.
//
// Modes and groups are unix ones: on Windows the folder gets what its
// parent's ACL passes on, and a group is an error.
func CreateInbox(dir string, mode os.FileMode, group string) (notes []string, err error) {
	gid := -1
	if group != "" {
		if gid, err = lookupGroup(group); err != nil {
			return nil, fmt.Errorf("inbox folder %s: %w", dir, err)
		}
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	shared := mode.Perm()&0o070 != 0
	if len(missing) == 0 {
		if st, err := os.Stat(dir); err == nil && shared && st.Mode().Perm() != mode.Perm() {
			notes = append(notes, fmt.Sprintf("the inbox folder exists with mode %04o; inbox_mode %04o applies only to a folder izdrop creates", st.Mode().Perm(), mode.Perm()))
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d, m := missing[i], os.FileMode(0o700)
		if d == dir {
			m = mode
		} else if shared {
			m |= 0o010
		}
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return notes, err
		}
		// The group before the mode: a chown may clear setgid. The mode
		// set outright, as the umask would take bits away.
		if gid >= 0 {
			if err := os.Lchown(d, -1, gid); err != nil {
				return notes, fmt.Errorf("inbox folder %s: group %s (is izdrop's account a member?): %w", d, group, err)
			}
		}
		if err := os.Chmod(d, m); err != nil {
			return notes, err
		}
	}
	if shared {
		notes = append(notes, unreachable(dir)...)
	}
	return notes, nil
}

// lookupGroup takes a group name or number. Without cgo, names come from
// /etc/group only (not LDAP or a directory service): give a number then.
func lookupGroup(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", group, err)
	}
	return strconv.Atoi(g.Gid)
}

// unreachable lists the folders above dir that neither their group nor
// other accounts may search: an export account can reach dir through them
// only if it owns them.
func unreachable(dir string) []string {
	var notes []string
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o011 == 0 {
			notes = append(notes, fmt.Sprintf("folder %s (mode %04o) above the inbox lets no other account through: the export account may not reach the inbox", d, st.Mode().Perm()))
		}
		if filepath.Dir(d) == d {
			return notes
		}
	}
}
