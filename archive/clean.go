package archive

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Leftover is a file Clean removed, and why.
type Leftover struct{ Path, Why string }

// Clean removes what an interrupted run can leave in an archive's recent
// day folders (the newest days, at most): temporary files of atomic writes
// and moves (".NAME.tmp-*", which hold patient data), and reservations
// (a NAME.ack.json that only says who reserved NAME) whose file never came
// and that held(owner, path) says are no longer in use. Filed files and
// their sidecars are never touched.
func Clean(root string, days int, held func(owner, path string) bool) ([]Leftover, error) {
	var out []Leftover
	for _, result := range []Result{Done, Failed} {
		base := filepath.Join(root, string(result))
		ents, err := os.ReadDir(base)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return out, err
		}
		var dirs []string
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		if len(dirs) > days {
			dirs = dirs[:days]
		}
		for _, d := range dirs {
			got, err := cleanDir(filepath.Join(base, d), true, held)
			out = append(out, got...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// CleanTemp removes the temporary files of interrupted atomic writes from a
// folder (a work/ folder), and nothing else.
func CleanTemp(dir string) ([]Leftover, error) { return cleanDir(dir, false, nil) }

func cleanDir(dir string, reservations bool, held func(owner, path string) bool) ([]Leftover, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Leftover
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-"):
			if os.Remove(p) == nil {
				out = append(out, Leftover{p, "temporary file of an interrupted write"})
			}
		case reservations && strings.HasSuffix(name, ACKJSON):
			target := strings.TrimSuffix(p, ACKJSON)
			if exists(target) {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil || len(b) > 200 {
				continue
			}
			owner, ok := reservedBy(string(b))
			if len(b) == 0 {
				owner, ok = "", true // a reservation cut short (a full disk)
			}
			if !ok || held != nil && owner != "" && held(owner, target) {
				continue
			}
			if os.Remove(p) == nil {
				out = append(out, Leftover{p, "reservation of a file that was never filed here (claim " + owner + ")"})
			}
		}
	}
	return out, nil
}

func reservedBy(content string) (string, bool) {
	const pre, post = `{"reserved_by": "`, "\"}\n"
	if !strings.HasPrefix(content, pre) || !strings.HasSuffix(content, post) {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(content, pre), post), true
}
