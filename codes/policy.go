package codes

import "fmt"

// Severity of a finding.
type Severity string

// Severities: an Error keeps the record from being sent; a Warning travels
// with it.
const (
	Error   Severity = "error"
	Warning Severity = "warning"
)

// Finding is one problem with a vaccine's codes.
type Finding struct {
	Severity Severity
	Field    string // HL7 field: RXA-5 (CVX) or RXA-17 (MVX)
	Rule     string // stable rule name, e.g. "cvx-unknown"
	Text     string
}

// CheckVaccine applies the status policy of the package documentation to a
// dose's CVX and MVX. mvx may be empty (its absence on an administered dose
// is the caller's "required" rule, not this one's).
func (s *Set) CheckVaccine(cvx, mvx string, historical bool) []Finding {
	var out []Finding
	add := func(sev Severity, field, rule, format string, args ...any) {
		out = append(out, Finding{sev, field, rule, fmt.Sprintf(format, args...)})
	}
	c, ok := s.cvx[cvx]
	if !ok {
		add(Error, "RXA-5", "cvx-unknown", "CVX %q is not a CDC vaccine code", cvx)
		return out
	}
	switch c.Status {
	case NeverActive:
		add(Error, "RXA-5", "cvx-never-active", "CVX %s (%s) was never used for a real vaccine", cvx, c.Short)
	case NonUS:
		if !historical {
			add(Error, "RXA-5", "cvx-non-us-administered", "CVX %s (%s) is a non-US vaccine: it can only be reported as a historical dose", cvx, c.Short)
		}
	case Inactive:
		if !historical && !s.activeProduct(cvx, mvx) {
			add(Warning, "RXA-5", "cvx-inactive", "CVX %s (%s) is inactive: check the site's code mapping", cvx, c.Short)
		}
	}
	if !historical && c.Unspecified {
		add(Warning, "RXA-5", "cvx-unspecified-administered", "CVX %s (%s) is for historical doses of unknown formulation; an administered dose should name the product", cvx, c.Short)
	}
	if mvx == "" {
		return out
	}
	if historical && (mvx == "UNK" || mvx == "OTH") {
		return out
	}
	m, ok := s.mvx[mvx]
	if !ok {
		add(Error, "RXA-17", "mvx-unknown", "MVX %q is not a CDC manufacturer code", mvx)
		return out
	}
	products := s.pairs[pair{cvx, mvx}]
	if len(products) == 0 {
		add(Error, "RXA-17", "cvx-mvx-pair", "no CDC product pairs CVX %s (%s) with MVX %s (%s)", cvx, c.Short, mvx, m.Name)
		return out
	}
	if historical {
		return out
	}
	if !s.activeProduct(cvx, mvx) {
		add(Warning, "RXA-17", "product-inactive", "every CDC product for CVX %s with MVX %s is inactive", cvx, mvx)
	} else if m.Status != Active {
		add(Warning, "RXA-17", "mvx-inactive", "MVX %s (%s) is inactive", mvx, m.Name)
	}
	return out
}

func (s *Set) activeProduct(cvx, mvx string) bool {
	for _, p := range s.pairs[pair{cvx, mvx}] {
		if p.Status == Active {
			return true
		}
	}
	return false
}
