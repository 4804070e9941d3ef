package config

import (
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// positions maps each key and table header of a document ("inboxes.clinic",
// "inboxes.clinic.path") to the line it is on, so that a problem found after
// decoding still names its line.
func positions(doc []byte) map[string]int {
	out := map[string]int{}
	var p unstable.Parser
	p.Reset(doc)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = table[:0]
			line := 0
			for it := e.Key(); it.Next(); {
				n := it.Node()
				table = append(table, string(n.Data))
				line = p.Shape(n.Raw).Start.Line
				// a.b.c declares a, a.b and a.b.c: the first mention wins.
				if _, ok := out[strings.Join(table, ".")]; !ok {
					out[strings.Join(table, ".")] = line
				}
			}
		case unstable.KeyValue:
			key := append([]string(nil), table...)
			line := 0
			for it := e.Key(); it.Next(); {
				n := it.Node()
				key = append(key, string(n.Data))
				line = p.Shape(n.Raw).Start.Line
				if _, ok := out[strings.Join(key, ".")]; !ok {
					out[strings.Join(key, ".")] = line
				}
			}
		}
	}
	return out // a syntax error is reported by the decoder
}

// Line returns the line of a key in the file ("inboxes.clinic.path"), or of
// the nearest table holding it when the key itself is not written there
// (a missing setting). 0 when neither is in the file (a default).
func (c *Config) Line(key string) int {
	for k := key; k != ""; {
		if n, ok := c.lines[k]; ok {
			return n
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// At prefixes a message about key with the file and line it concerns, and
// the key: "config.toml:12: inboxes.clinic.path: ...".
func (c *Config) At(key string) string {
	if n := c.Line(key); n > 0 {
		return fmt.Sprintf("%s:%d: %s", c.path, n, key)
	}
	return fmt.Sprintf("%s: %s", c.path, key)
}
