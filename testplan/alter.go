package testplan

import "strings"

// The negative cases alter a valid message's ER7 text: izdrop's own checks
// would never let such a message out, which is the point.

// setField sets component comp of field n of the first segment id (MSH-n
// counts MSH-1, the field separator, as MSH does).
func setField(msg []byte, id string, n, comp int, value string) []byte {
	return edit(msg, id, n, func(field string) string {
		comps := strings.Split(field, "^")
		for len(comps) < comp {
			comps = append(comps, "")
		}
		comps[comp-1] = value
		return strings.TrimRight(strings.Join(comps, "^"), "^")
	})
}

// setComps replaces field n of the first segment id with the components.
func setComps(msg []byte, id string, n int, comps ...string) []byte {
	return edit(msg, id, n, func(string) string { return strings.Join(comps, "^") })
}

func edit(msg []byte, id string, n int, change func(string) string) []byte {
	segs := strings.Split(string(msg), "\r")
	for i, s := range segs {
		if !strings.HasPrefix(s, id+"|") {
			continue
		}
		fields := strings.Split(s, "|")
		idx := n
		if id == "MSH" {
			idx = n - 1 // fields[1] is MSH-2
		}
		for len(fields) <= idx {
			fields = append(fields, "")
		}
		fields[idx] = change(fields[idx])
		segs[i] = strings.Join(fields, "|")
		break
	}
	return []byte(strings.Join(segs, "\r"))
}
