package transform

import (
	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/hl7"
)

func newEnc() *hl7.Encoder { return hl7.NewEncoder(hl7.DefaultDelimiters) }

func testOptionsCodes() *codes.Set { return codes.Embedded() }

func headerNames() []string {
	var h []string
	for c := Col(0); c < numCols; c++ {
		h = append(h, c.Name())
	}
	return h
}

// rowValues is base with over applied, in column order (no quoting needed:
// base has no commas).
func rowValues(over map[Col]string) []string {
	var r []string
	for c := Col(0); c < numCols; c++ {
		v := base[c]
		if o, ok := over[c]; ok {
			v = o
		}
		r = append(r, v)
	}
	return r
}
