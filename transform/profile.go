package transform

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/izdrop/izdrop/codes"
)

// Profile describes one export layout: how a file's columns and values map
// onto the default layout. The zero Profile is the default layout itself.
type Profile struct {
	// Name is the profile's name in config.toml, used in messages.
	Name string
	// Columns maps a default-layout column name to the file's header name.
	// Columns not listed are looked up under their default name.
	Columns map[string]string
	// Values maps, per default-layout column name, a file value to the value
	// the default layout expects, e.g. patient_sex: {"Male": "M"}. Keys are
	// matched case-insensitively.
	Values map[string]map[string]string
	// Delimiter is the field separator: ',' (default), '|' or '\t'.
	Delimiter rune
	// Encoding is "utf-8" (default) or "windows-1252": a file that is not
	// valid UTF-8 is then read as Windows-1252.
	Encoding string
	// DateFormat pins one date format: "YYYY-MM-DD", "YYYYMMDD" or
	// "MM/DD/YYYY". Empty accepts all three.
	DateFormat string
	// IDType is PID-3.5 (HL70203), default "MR".
	IDType string
	// NamePolicy says what to do with characters other than letters, space,
	// hyphen and apostrophe in names (CAIR accepts letters only): "strip"
	// (default; a warning says what was removed) or "reject" (an error).
	NamePolicy string

	// Format is the export's format: FormatCSV (default), FormatHL7 or
	// FormatFHIR (see formats.go). Columns, Delimiter and DateFormat are
	// for CSV only; Values apply to every format.
	Format string
	// SetSiteFields (hl7) takes MSH-4, MSH-6, MSH-22 and RXA-11.4 from the
	// inbox's site, and sends MSH-11 as P, whatever a message says; without
	// it a message's own values are kept where it has them. MSH-5 is always
	// CAIR IIS.
	SetSiteFields bool
	// MSH10 (hl7) is "keep" (default): a message goes out under its own
	// MSH-10 unless izdrop already sent one with it; or "replace": every
	// message gets a new one.
	MSH10 string
}

// Site is a CAIR2 reporting site: the identities that go into MSH, RXA-11
// and PID-3.4.
type Site struct {
	// ID is the CAIR Site ID (org code): MSH-22 and RXA-11.4, unless a
	// record's site_id names another.
	ID string
	// SendingFacility is MSH-4 when one organisation sends for several
	// sites; defaults to ID.
	SendingFacility string
	// Region is the CAIR region code for MSH-6, e.g. CAIRLO or CAIRBA.
	Region string
	// AssigningAuthority is PID-3.4; defaults to SendingFacility.
	AssigningAuthority string
	// County is the site's California county (name or FIPS code), used by
	// the San Joaquin region rule.
	County string
}

// Options are everything a Reader needs besides the file.
type Options struct {
	Profile Profile
	// Name is the file's name as dropped, used in problem texts; defaults
	// to the base name of the path read (the service reads a claimed copy
	// whose name carries the claim id).
	Name string
	// Site is the inbox's site: defaults for MSH-4/6/22, RXA-11.4, PID-3.4.
	Site Site
	// Sites lists every configured site by Site ID, so that a record whose
	// site_id names one is checked against that site's county.
	Sites map[string]Site
	Codes *codes.Set
	// Now is the clock for "in the future" checks and for MSH-7; defaults to
	// time.Now.
	Now func() time.Time
	// Location is the registry's time zone for dates; default
	// America/Los_Angeles (CAIR2), UTC if that zone is not installed.
	Location *time.Location
	// FileDate is PD1-17 (registry status date); defaults to today.
	FileDate time.Time
	// Application is MSH-3, e.g. "izdrop 1.2.0".
	Application string
	// DryRunProgress, when set, is told by DryRun after each message how
	// many bytes of the file and how many records it has read.
	DryRunProgress func(read int64, records int)
	// MaxDoses caps the doses of one message; a larger group is split
	// (default 20) so that no message comes near CAIR's size limit.
	MaxDoses int
}

// SanJoaquinCounties report to the CAIR San Joaquin region's own registry,
// not to CAIR2.
var SanJoaquinCounties = []string{"Alpine", "Amador", "Calaveras", "Mariposa", "Merced", "San Joaquin", "Stanislaus", "Tuolumne"}

// InSanJoaquinRegion reports whether county (a name or a FIPS code) is one
// of SanJoaquinCounties.
func InSanJoaquinRegion(county string, cs *codes.Set) bool {
	county = strings.TrimSpace(county)
	if name, ok := cs.Lookup("CA_COUNTY_FIPS", county); ok {
		county = name
	}
	for _, c := range SanJoaquinCounties {
		if strings.EqualFold(c, county) {
			return true
		}
	}
	return false
}

// Validate reports every problem of a profile at once.
func (p Profile) Validate(cs *codes.Set) error {
	var errs []error
	where := "profile"
	if p.Name != "" {
		where = fmt.Sprintf("profile %q", p.Name)
	}
	keys := make([]string, 0, len(p.Columns))
	for k := range p.Columns {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]string{}
	for _, k := range keys {
		if _, ok := ColByName(k); !ok {
			errs = append(errs, fmt.Errorf("%s: columns: %q is not a column of the default layout", where, k))
		}
		h := strings.ToLower(strings.TrimSpace(p.Columns[k]))
		if h == "" {
			errs = append(errs, fmt.Errorf("%s: columns: %q maps to an empty header name", where, k))
		}
		if o, dup := seen[h]; dup {
			errs = append(errs, fmt.Errorf("%s: columns: %q and %q both map to header %q", where, o, k, p.Columns[k]))
		}
		seen[h] = k
	}
	for k := range p.Values {
		if _, ok := ColByName(k); !ok {
			errs = append(errs, fmt.Errorf("%s: values: %q is not a column of the default layout", where, k))
		}
	}
	switch p.Delimiter {
	case 0, ',', '|', '\t', ';':
	default:
		errs = append(errs, fmt.Errorf("%s: delimiter %q: use \",\", \"|\", \";\" or \"\\t\"", where, p.Delimiter))
	}
	switch strings.ToLower(p.Encoding) {
	case "", "utf-8", "utf8", "windows-1252", "cp1252":
	default:
		errs = append(errs, fmt.Errorf("%s: encoding %q: use \"utf-8\" or \"windows-1252\"", where, p.Encoding))
	}
	switch p.DateFormat {
	case "", "YYYY-MM-DD", "YYYYMMDD", "MM/DD/YYYY":
	default:
		errs = append(errs, fmt.Errorf("%s: date_format %q: use \"YYYY-MM-DD\", \"YYYYMMDD\" or \"MM/DD/YYYY\"", where, p.DateFormat))
	}
	if p.IDType != "" {
		if _, ok := cs.Lookup("HL70203", p.IDType); !ok {
			errs = append(errs, fmt.Errorf("%s: id_type %q is not an HL70203 identifier type (CAIR rejects a PID-3.5 it does not know)", where, p.IDType))
		}
	}
	switch p.NamePolicy {
	case "", "strip", "reject":
	default:
		errs = append(errs, fmt.Errorf("%s: name_policy %q: use \"strip\" or \"reject\"", where, p.NamePolicy))
	}
	errs = append(errs, p.validateFormat(where)...)
	return errors.Join(errs...)
}

// Validate reports every problem of a site at once. cair2 says the site
// reports to CAIR2 (rather than to a regional registry).
func (s Site) Validate(cs *codes.Set, cair2 bool) error {
	var errs []error
	if s.ID == "" {
		errs = append(errs, errors.New("site: id (the CAIR Site ID, MSH-22) is required"))
	}
	if len(s.Region) != 6 || !strings.HasPrefix(s.Region, "CAIR") {
		errs = append(errs, fmt.Errorf("site %s: region %q: want a CAIR region code such as CAIRLO or CAIRBA (MSH-6)", s.ID, s.Region))
	}
	if s.County != "" {
		_, fips := cs.Lookup("CA_COUNTY_FIPS", s.County)
		name := false
		for _, n := range caCountyNames(cs) {
			if strings.EqualFold(n, s.County) {
				name = true
			}
		}
		if !fips && !name {
			errs = append(errs, fmt.Errorf("site %s: county %q is not a California county name or FIPS code", s.ID, s.County))
		}
		if cair2 && InSanJoaquinRegion(s.County, cs) {
			errs = append(errs, fmt.Errorf("site %s: county %s is in the CAIR San Joaquin region, whose sites report to the regional registry, not to CAIR2: point this site at that registry's endpoint", s.ID, s.County))
		}
	}
	return errors.Join(errs...)
}

func caCountyNames(cs *codes.Set) []string {
	var out []string
	for i := 1; i <= 115; i += 2 {
		if n, ok := cs.Lookup("CA_COUNTY_FIPS", fmt.Sprintf("06%03d", i)); ok {
			out = append(out, n)
		}
	}
	return out
}

func (o *Options) withDefaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		loc, err := time.LoadLocation("America/Los_Angeles")
		if err != nil {
			loc = time.UTC
		}
		o.Location = loc
	}
	if o.Codes == nil {
		o.Codes = codes.Embedded()
	}
	if o.FileDate.IsZero() {
		o.FileDate = o.Now().In(o.Location)
	}
	if o.Application == "" {
		o.Application = "izdrop"
	}
	if o.MaxDoses <= 0 {
		o.MaxDoses = 20
	}
	if o.Profile.Delimiter == 0 {
		o.Profile.Delimiter = ','
	}
	if o.Profile.IDType == "" {
		o.Profile.IDType = "MR"
	}
	if o.Profile.NamePolicy == "" {
		o.Profile.NamePolicy = "strip"
	}
	if o.Profile.Format == "" {
		o.Profile.Format = FormatCSV
	}
	if o.Profile.MSH10 == "" {
		o.Profile.MSH10 = "keep"
	}
	if o.Site.SendingFacility == "" {
		o.Site.SendingFacility = o.Site.ID
	}
	if o.Site.AssigningAuthority == "" {
		o.Site.AssigningAuthority = o.Site.SendingFacility
	}
}
