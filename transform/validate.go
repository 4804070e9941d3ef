package transform

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/hl7"
)

// validator checks and normalises a message's records in place. Problem
// texts name codes and rules but never echo a patient's names, birth date,
// address or phone: they end up in reports and logs.
type validator struct {
	r   *Reader
	t   tables
	cur *Message // the message being checked
	// dates remembers recent date conversions: a file repeats the same
	// few admin and expiry dates on most rows.
	dates map[string]string
}

// tables are the value sets looked up for every record, resolved once per
// file, with each code's CE/CWE triple encoded once for the builder.
type tables struct {
	sex, race, ethnicity, publicity, registryStatus, relationship                      map[string]string
	completion, refusal, infoSource, vfc, route, ncit, site, funding, immunity, county map[string]string
	countyByName                                                                       map[string]string // lower-case county name -> FIPS

	// ER7 "code^text^system" for a code, ready for hl7.Encoder.Raw.
	raceCE, ethnicityCE, publicityCE, relationshipCE                          map[string]string
	infoSourceCE, refusalCE, ncitCE, routeCE, siteCE, vfcCE, fundingCE, immCE map[string]string
	cvxCE, mvxCE                                                              map[string]string
}

func resolveTables(cs *codes.Set) tables {
	t := tables{
		sex: cs.Table("HL70001"), race: cs.Table("CDCREC_RACE"), ethnicity: cs.Table("CDCREC_ETHNICITY"),
		publicity: cs.Table("HL70215"), registryStatus: cs.Table("HL70441"), relationship: cs.Table("HL70063"),
		completion: cs.Table("HL70322"), refusal: cs.Table("NIP002"), infoSource: cs.Table("NIP001"),
		vfc: cs.Table("HL70064"), route: cs.Table("HL70162"), ncit: cs.Table("NCIT"), site: cs.Table("HL70163"),
		funding: cs.Table("FUNDING"), immunity: cs.Table("IMMUNITY_SNOMED"), county: cs.Table("CA_COUNTY_FIPS"),
		countyByName: map[string]string{},
	}
	for code, name := range t.county {
		t.countyByName[name] = code
		t.countyByName[strings.ToLower(name)] = code
	}
	ce := func(table map[string]string, system string) map[string]string {
		out := make(map[string]string, len(table))
		for code, text := range table {
			out[code] = hl7.DefaultDelimiters.Encode(code, text, system)
		}
		return out
	}
	t.raceCE, t.ethnicityCE = ce(t.race, "CDCREC"), ce(t.ethnicity, "CDCREC")
	t.publicityCE, t.relationshipCE = ce(t.publicity, "HL70215"), ce(t.relationship, "HL70063")
	t.infoSourceCE, t.refusalCE = ce(t.infoSource, "NIP001"), ce(t.refusal, "NIP002")
	t.ncitCE, t.routeCE, t.siteCE = ce(t.ncit, "NCIT"), ce(t.route, "HL70162"), ce(t.site, "HL70163")
	t.vfcCE, t.fundingCE, t.immCE = ce(t.vfc, "HL70064"), ce(t.funding, "CDCPHINVS"), ce(t.immunity, "SCT")
	t.cvxCE, t.mvxCE = map[string]string{}, map[string]string{}
	for _, code := range cs.CVXCodes() {
		c, _ := cs.CVX(code)
		t.cvxCE[code] = hl7.DefaultDelimiters.Encode(code, c.Short, "CVX")
	}
	for _, code := range cs.MVXCodes() {
		m, _ := cs.MVX(code)
		t.mvxCE[code] = hl7.DefaultDelimiters.Encode(code, m.Name, "MVX")
	}
	return t
}

func has(t map[string]string, code string) bool { _, ok := t[code]; return ok }

func (v *validator) add(rec *Record, line int, c Col, sev Severity, rule, format string, args ...any) {
	p := Problem{File: v.r.name, Line: line, Field: c.Field(), Rule: rule, Severity: sev, Text: fmt.Sprintf(format, args...)}
	if v.r.src == nil {
		p.Column = v.r.headerName(c)
	} else {
		at := rec
		if at.Line == 0 { // the patient's problems, collected apart
			at = v.cur.Records[0]
		}
		p.Where = v.r.src.where(at, c)
	}
	rec.Problems = append(rec.Problems, p)
}

func (v *validator) message(m *Message) {
	v.cur = m
	first := m.Records[0]
	for _, rec := range m.Records[1:] {
		for c := Col(0); c < firstVaccinationCol; c++ {
			if rec.Row.Get(c) != first.Row.Get(c) {
				v.add(rec, rec.Line, c, Warning, "patient-data-differs",
					"differs from line %d, the first row of this patient's group; the first row's value is sent", first.Line)
			}
		}
	}
	// Patient columns come from the first row; their problems belong to
	// every record of the group, since all of them travel in one message.
	var pat Record
	birth, death := v.patient(&pat, first)
	for _, rec := range m.Records {
		for _, p := range pat.Problems {
			rec.Problems = append(rec.Problems, p)
		}
		v.lengths(rec)
		v.dose(rec, m, birth, death)
		rec.VaccinationID = rec.Row.Get(VaccinationID)
		rec.site = m.SiteID
	}
}

func (v *validator) patient(out *Record, rec *Record) (birth, death int) {
	row := &rec.Row
	line := rec.Line
	if row.Get(PatientID) == "" {
		v.add(out, line, PatientID, Error, "patient-id-missing", "patient_id is required (PID-3.1)")
	}
	for _, c := range []Col{PatientLastName, PatientFirstName} {
		if row.Get(c) == "" {
			v.add(out, line, c, Error, "patient-name-missing", "%s is required", c.Name())
		}
	}
	for _, c := range []Col{PatientLastName, PatientFirstName, PatientMiddleName, PatientSuffix, MotherMaidenLastName, GuardianLastName, GuardianFirstName} {
		v.name(out, line, row, c)
	}
	first := strings.ToUpper(row.Get(PatientFirstName))
	switch first {
	case "BABY", "BOY", "GIRL", "INFANT", "NEWBORN", "BABY BOY", "BABY GIRL", "BABYBOY", "BABYGIRL":
		v.add(out, line, PatientFirstName, Warning, "name-temporary", "the first name looks like a temporary newborn name")
	}
	if strings.EqualFold(row.Get(PatientLastName), "TEST") || first == "TEST" {
		v.add(out, line, PatientLastName, Warning, "name-test", "the name looks like a test patient")
	}
	var ok bool
	if row.Get(PatientBirthDate) == "" {
		v.add(out, line, PatientBirthDate, Error, "birth-date-missing", "patient_birth_date is required (PID-7)")
	} else if birth, ok = v.date(row.Get(PatientBirthDate)); !ok {
		v.add(out, line, PatientBirthDate, Error, "birth-date-invalid", "not a date in %s", v.formats())
	} else if birth > v.r.today {
		v.add(out, line, PatientBirthDate, Error, "birth-date-future", "the birth date is in the future")
		birth = 0
	} else if birth < v.r.today-1300000 {
		v.add(out, line, PatientBirthDate, Warning, "birth-date-old", "the birth date is more than 130 years ago")
	}
	if birth > 0 {
		row.Set(PatientBirthDate, dateString(row.Get(PatientBirthDate), birth))
	}
	sex := strings.ToUpper(row.Get(PatientSex))
	row.Set(PatientSex, sex)
	if sex == "" {
		v.add(out, line, PatientSex, Error, "sex-missing", "patient_sex is required (F, M, X or U)")
	} else if _, ok := v.t.sex[sex]; !ok {
		v.add(out, line, PatientSex, Error, "sex-invalid", "%q is not F, M, X or U (map other values with the profile's values table)", short(sex))
	}
	v.races(out, line, row)
	if e := row.Get(Ethnicity); e == "" {
		v.add(out, line, Ethnicity, Warning, "ethnicity-missing", "no ethnicity given")
	} else if _, ok := v.t.ethnicity[e]; !ok {
		v.add(out, line, Ethnicity, Warning, "ethnicity-invalid", "%q is not a CDCREC ethnicity code; not sent", short(e))
		row.Set(Ethnicity, "")
	}
	if s := row.Get(AddressState); s != "" {
		s = strings.ToUpper(s)
		row.Set(AddressState, s)
		if len(s) != 2 || !isLetters(s) {
			v.add(out, line, AddressState, Warning, "state-invalid", "not a two-letter state code; not sent")
			row.Set(AddressState, "")
		}
	}
	if z := row.Get(AddressZip); z != "" {
		d := strings.ReplaceAll(z, "-", "")
		if !(len(d) == 5 || len(d) == 9) || !isDigits(d) {
			v.add(out, line, AddressZip, Warning, "zip-invalid", "not a 5 or 9 digit ZIP code; not sent")
			row.Set(AddressZip, "")
		}
	}
	if c := row.Get(AddressCounty); c != "" {
		if fips, ok := v.countyFIPS(c); ok {
			row.Set(AddressCounty, fips)
		} else {
			v.add(out, line, AddressCounty, Warning, "county-invalid", "not a California county name or FIPS code; not sent")
			row.Set(AddressCounty, "")
		}
	}
	if p := row.Get(Phone); p == "" {
		v.add(out, line, Phone, Warning, "phone-missing", "no phone number (CAIR asks for one)")
	} else {
		d := digitsOnly(p)
		if len(d) == 11 && d[0] == '1' {
			d = d[1:]
		}
		if len(d) != 10 || d[0] == '0' || d[0] == '1' {
			v.add(out, line, Phone, Warning, "phone-invalid", "not a 10-digit US phone number; not sent")
			row.Set(Phone, "")
		} else {
			row.Set(Phone, d)
		}
	}
	if e := row.Get(Email); e != "" && (!strings.Contains(e, "@") || strings.ContainsAny(e, " ,;")) {
		v.add(out, line, Email, Warning, "email-invalid", "not an e-mail address; not sent")
		row.Set(Email, "")
	}
	if l := row.Get(Language); l != "" && (len(l) < 2 || len(l) > 3 || !isLetters(l)) {
		v.add(out, line, Language, Warning, "language-invalid", "not an ISO 639 language code; not sent")
		row.Set(Language, "")
	}
	if mb := strings.ToUpper(row.Get(MultipleBirth)); mb != "" {
		row.Set(MultipleBirth, mb)
		if mb != "Y" && mb != "N" {
			v.add(out, line, MultipleBirth, Warning, "multiple-birth-invalid", "not Y or N; not sent")
			row.Set(MultipleBirth, "")
		} else if mb == "Y" && row.Get(BirthOrder) == "" {
			v.add(out, line, BirthOrder, Warning, "birth-order-missing", "birth_order is expected when multiple_birth is Y")
		}
	}
	if bo := row.Get(BirthOrder); bo != "" && (len(bo) != 1 || bo < "1" || bo > "9") {
		v.add(out, line, BirthOrder, Warning, "birth-order-invalid", "not a number from 1 to 9; not sent")
		row.Set(BirthOrder, "")
	}
	if d := row.Get(DeathDate); d != "" {
		if death, ok = v.date(d); !ok {
			v.add(out, line, DeathDate, Error, "death-date-invalid", "not a date in %s", v.formats())
		} else if death > v.r.today {
			v.add(out, line, DeathDate, Error, "death-date-future", "the death date is in the future")
			death = 0
		} else if birth > 0 && death < birth {
			v.add(out, line, DeathDate, Error, "death-before-birth", "the death date is before the birth date")
		} else {
			row.Set(DeathDate, dateString(d, death))
		}
	}
	if s := strings.ToUpper(row.Get(ShareWithRegistry)); s != "" {
		row.Set(ShareWithRegistry, s)
		if s != "Y" && s != "N" {
			v.add(out, line, ShareWithRegistry, Error, "protection-invalid", "share_with_registry must be Y (shares) or N (declined: record locked)")
		}
	}
	if d := row.Get(DisclosureDate); d != "" {
		if n, ok := v.date(d); !ok {
			v.add(out, line, DisclosureDate, Error, "disclosure-date-invalid", "not a date in %s", v.formats())
		} else if n > v.r.today {
			v.add(out, line, DisclosureDate, Error, "disclosure-date-future", "the disclosure date is in the future")
		} else {
			row.Set(DisclosureDate, dateString(d, n))
		}
	}
	if p := row.Get(ReminderRecall); p != "" {
		if len(p) == 1 {
			p = "0" + p
		}
		if _, ok := v.t.publicity[p]; !ok {
			v.add(out, line, ReminderRecall, Warning, "publicity-invalid", "%q is not an HL70215 publicity code; not sent", short(p))
			p = ""
		}
		row.Set(ReminderRecall, p)
	}
	if s := strings.ToUpper(row.Get(RegistryStatus)); s != "" {
		row.Set(RegistryStatus, s)
		if _, ok := v.t.registryStatus[s]; !ok {
			v.add(out, line, RegistryStatus, Error, "registry-status-invalid", "%q is not an HL70441 registry status", short(s))
		}
	}
	if g := strings.ToUpper(row.Get(GuardianRelationship)); g != "" {
		row.Set(GuardianRelationship, g)
		if _, ok := v.t.relationship[g]; !ok {
			v.add(out, line, GuardianRelationship, Warning, "relationship-invalid", "%q is not an HL70063 relationship code; not sent", short(g))
			row.Set(GuardianRelationship, "")
		}
	}
	if row.Get(GuardianLastName) == "" && (row.Get(GuardianFirstName) != "" || row.Get(GuardianRelationship) != "") {
		v.add(out, line, GuardianLastName, Warning, "guardian-incomplete", "a guardian needs a last name; no NK1 is sent")
	}
	return birth, death
}

func (v *validator) races(out *Record, line int, row *Row) {
	r := row.Get(Race)
	if r == "" {
		v.add(out, line, Race, Warning, "race-missing", "no race given")
		return
	}
	if !strings.Contains(r, ";") {
		if _, ok := v.t.race[r]; !ok {
			v.add(out, line, Race, Warning, "race-invalid", "%q is not a CDCREC race code; not sent", short(r))
			row.Set(Race, "")
		}
		return
	}
	var keep []string
	for _, code := range strings.Split(r, ";") {
		code = strings.TrimSpace(code)
		if code == "" {
			continue
		}
		if _, ok := v.t.race[code]; !ok {
			v.add(out, line, Race, Warning, "race-invalid", "%q is not a CDCREC race code; not sent", short(code))
			continue
		}
		keep = append(keep, code)
	}
	row.Set(Race, strings.Join(keep, ";"))
}

// name applies the profile's name policy: CAIR takes letters, space, hyphen
// and apostrophe only.
func (v *validator) name(out *Record, line int, row *Row, c Col) {
	s := row.Get(c)
	if s == "" || isNameASCII(s) {
		return
	}
	var b strings.Builder
	removed := 0
	for _, r := range s {
		if unicode.IsLetter(r) || r == ' ' || r == '-' || r == '\'' {
			b.WriteRune(r)
		} else {
			removed++
		}
	}
	if removed == 0 {
		return
	}
	if v.r.opt.Profile.NamePolicy == "reject" {
		v.add(out, line, c, Error, "name-invalid-chars", "%d character(s) other than letters, space, hyphen and apostrophe (CAIR takes letters only)", removed)
		return
	}
	clean := strings.Join(strings.Fields(b.String()), " ")
	row.Set(c, clean)
	if clean == "" && (c == PatientLastName || c == PatientFirstName) {
		v.add(out, line, c, Error, "name-invalid-chars", "no letters left after removing %d character(s) CAIR does not accept", removed)
		return
	}
	v.add(out, line, c, Warning, "name-stripped", "removed %d character(s) other than letters, space, hyphen and apostrophe", removed)
}

func (v *validator) dose(rec *Record, m *Message, birth, death int) {
	row := &rec.Row
	line := rec.Line
	cs := v.r.opt.Codes

	act := strings.ToUpper(row.Get(Action))
	if act == "" {
		act = "A"
	}
	switch act {
	case "A", "U", "D":
	default:
		v.add(rec, line, Action, Error, "action-invalid", "%q is not A (add), U (update) or D (delete)", short(act))
	}
	row.Set(Action, act)
	rec.Action = act
	if row.Get(VaccinationID) == "" {
		if act == "U" || act == "D" {
			v.add(rec, line, VaccinationID, Error, "vaccination-id-missing", "an update or delete must name the dose it changes: vaccination_id is required")
		} else {
			v.add(rec, line, VaccinationID, Error, "vaccination-id-missing", "vaccination_id is required: updates and deletes refer to it (ORC-3)")
		}
	}

	admin := 0
	if row.Get(AdminDate) == "" {
		v.add(rec, line, AdminDate, Error, "admin-date-missing", "admin_date is required (RXA-3)")
	} else if n, ok := v.date(row.Get(AdminDate)); !ok {
		v.add(rec, line, AdminDate, Error, "admin-date-invalid", "%q is not a date in %s", short(row.Get(AdminDate)), v.formats())
	} else {
		admin = n
		row.Set(AdminDate, v.dateOf(row.Get(AdminDate), n))
		switch {
		case n > v.r.today:
			v.add(rec, line, AdminDate, Error, "admin-date-future", "the administration date %s is in the future", isoDate(n))
		case birth > 0 && n < birth:
			v.add(rec, line, AdminDate, Error, "admin-before-birth", "the administration date %s is before the patient's birth date", isoDate(n))
		case death > 0 && n > death:
			v.add(rec, line, AdminDate, Error, "admin-after-death", "the administration date %s is after the patient's death date", isoDate(n))
		}
	}

	immunity := row.Get(ImmunitySNOMED) != ""
	refusal := row.Get(RefusalReason) != ""
	status := strings.ToUpper(row.Get(CompletionStatus))
	if status == "" {
		switch {
		case refusal:
			status = "RE"
		case immunity:
			status = "NA"
		default:
			status = "CP"
		}
	}
	row.Set(CompletionStatus, status)
	if _, ok := v.t.completion[status]; !ok {
		v.add(rec, line, CompletionStatus, Error, "completion-status-invalid", "%q is not CP, RE, NA or PA", short(status))
	}
	if refusal {
		rr := row.Get(RefusalReason)
		if len(rr) == 1 {
			rr = "0" + rr
		}
		row.Set(RefusalReason, rr)
		if _, ok := v.t.refusal[rr]; !ok {
			v.add(rec, line, RefusalReason, Error, "refusal-reason-invalid", "%q is not an NIP002 refusal reason (00-03)", short(rr))
		}
		if status != "RE" {
			v.add(rec, line, CompletionStatus, Error, "refusal-completion-conflict", "a refusal (refusal_reason given) must have completion_status RE, not %s", status)
		}
		if row.Get(LotNumber) != "" {
			v.add(rec, line, LotNumber, Warning, "refusal-lot-ignored", "a refusal has no lot; the lot is not sent")
			row.Set(LotNumber, "")
		}
	} else if status == "RE" {
		v.add(rec, line, RefusalReason, Error, "refusal-reason-missing", "completion_status RE (refused) needs a refusal_reason (NIP002)")
	}

	cvx := codes.NormalizeCVX(row.Get(CVXCode))
	if immunity {
		if cvx != "" && cvx != "998" {
			v.add(rec, line, CVXCode, Error, "immunity-with-cvx", "evidence of immunity is reported with CVX 998 (no vaccine administered), not CVX %s", cvx)
		}
		cvx = "998"
		if status != "NA" {
			v.add(rec, line, CompletionStatus, Error, "immunity-completion", "evidence of immunity needs completion_status NA, not %s", status)
		}
		sn := row.Get(ImmunitySNOMED)
		if !isDigits(sn) || len(sn) < 6 || len(sn) > 18 {
			v.add(rec, line, ImmunitySNOMED, Error, "immunity-invalid", "%q is not a SNOMED CT code", short(sn))
		} else if _, ok := v.t.immunity[sn]; !ok {
			v.add(rec, line, ImmunitySNOMED, Warning, "immunity-unlisted", "SNOMED %s is not in the evidence-of-immunity codes izdrop ships; the registry may not know it", sn)
		}
	}
	row.Set(CVXCode, cvx)

	src := strings.ToLower(row.Get(InfoSource))
	switch src {
	case "", "administered", "00", "0":
		src = "00"
	case "historical":
		src = "01"
	default:
		if len(src) == 1 {
			src = "0" + src
		}
		if _, ok := v.t.infoSource[src]; !ok {
			v.add(rec, line, InfoSource, Error, "info-source-invalid", "%q is not administered, historical or an NIP001 code 00-08", short(row.Get(InfoSource)))
		}
	}
	row.Set(InfoSource, src)
	historical := src != "00"
	given := status == "CP" || status == "PA"
	administered := !historical && given

	mvx := strings.ToUpper(row.Get(MVXCode))
	row.Set(MVXCode, mvx)
	switch {
	case cvx == "" && !immunity:
		v.add(rec, line, CVXCode, Error, "cvx-missing", "cvx is required (RXA-5)")
	case immunity:
	case cvx == "998":
		if given {
			v.add(rec, line, CVXCode, Error, "cvx-998-given", "CVX 998 means no vaccine was administered: use completion_status NA")
		}
	default:
		// Refusals and not-administered rows name a vaccine that was not
		// given: its status matters no more than for a historical dose.
		for _, f := range cs.CheckVaccine(cvx, mvx, historical || !given) {
			c := CVXCode
			if f.Field == "RXA-17" {
				c = MVXCode
			}
			v.add(rec, line, c, f.Severity, f.Rule, "%s", f.Text)
		}
	}
	if administered {
		if row.Get(LotNumber) == "" {
			v.add(rec, line, LotNumber, Error, "lot-missing", "lot_number is required for an administered dose (RXA-15)")
		}
		if mvx == "" {
			v.add(rec, line, MVXCode, Error, "mvx-missing", "mvx is required for an administered dose (RXA-17)")
		}
		if row.Get(VFCEligibility) == "" {
			v.add(rec, line, VFCEligibility, Error, "vfc-missing", "vfc_eligibility is required for an administered dose (OBX 64994-7)")
		}
	}
	if e := strings.ToUpper(row.Get(VFCEligibility)); e != "" {
		row.Set(VFCEligibility, e)
		if _, ok := v.t.vfc[e]; !ok {
			if administered {
				v.add(rec, line, VFCEligibility, Error, "vfc-invalid", "%q is not an HL70064 VFC eligibility code (V01-V07)", short(e))
			} else {
				v.add(rec, line, VFCEligibility, Warning, "vfc-invalid", "%q is not an HL70064 VFC eligibility code; not sent", short(e))
				row.Set(VFCEligibility, "")
			}
		}
	}
	if !given {
		row.Set(VFCEligibility, "")
	}

	switch d := row.Get(DoseML); {
	case !given:
		row.Set(DoseML, "999")
	case d == "":
		if administered {
			v.add(rec, line, DoseML, Warning, "dose-missing", "no dose amount; sent as 999 (unknown)")
		}
		row.Set(DoseML, "999")
	default:
		f, err := strconv.ParseFloat(d, 64)
		if err != nil || f <= 0 || (f > 10 && f != 999) {
			v.add(rec, line, DoseML, Error, "dose-invalid", "%q is not a dose in mL (or 999 for unknown)", short(d))
		}
	}

	if x := row.Get(LotExpiration); x != "" && given {
		if n, ok := v.expiry(x); !ok {
			v.add(rec, line, LotExpiration, Warning, "lot-expiration-invalid", "%q is not a date or YYYY-MM; not sent", short(x))
			row.Set(LotExpiration, "")
		} else {
			row.Set(LotExpiration, v.dateOf(x, n))
			if admin > 0 && n < admin && administered {
				v.add(rec, line, LotExpiration, Warning, "lot-expired", "the lot expired (%s) before the dose was given (%s)", isoDate(n), isoDate(admin))
			}
		}
	}
	if r := strings.ToUpper(row.Get(Route)); r != "" {
		row.Set(Route, r)
		if !has(v.t.ncit, r) && !has(v.t.route, r) {
			v.add(rec, line, Route, Warning, "route-invalid", "%q is not an NCIT or HL70162 route; not sent", short(r))
			row.Set(Route, "")
		}
	}
	if s := strings.ToUpper(row.Get(BodySite)); s != "" {
		row.Set(BodySite, s)
		if _, ok := v.t.site[s]; !ok {
			v.add(rec, line, BodySite, Warning, "site-invalid", "%q is not an HL70163 body site; not sent", short(s))
			row.Set(BodySite, "")
		}
	}
	for _, c := range []Col{AdministeredByNPI, OrderingProviderNPI} {
		if n := row.Get(c); n != "" && !validNPI(n) {
			v.add(rec, line, c, Warning, "npi-invalid", "%q is not a valid 10-digit NPI; not sent", short(n))
			row.Set(c, "")
		}
	}
	for _, c := range []Col{AdministeredByLastName, AdministeredByFirstName, OrderingProviderLastName, OrderingProviderFirstName} {
		v.name(rec, line, row, c)
	}
	if f := strings.ToUpper(row.Get(FundingSource)); f != "" {
		row.Set(FundingSource, f)
		if _, ok := v.t.funding[f]; !ok {
			v.add(rec, line, FundingSource, Warning, "funding-invalid", "%q is not a CDC funding source code; not sent", short(f))
			row.Set(FundingSource, "")
		}
	}
	if d := row.Get(VISDocument); d != "" && (len(d) != 24 || !isDigits(d) || !strings.HasPrefix(d, "253088698300")) {
		v.add(rec, line, VISDocument, Warning, "vis-document-invalid", "%q is not a CDC VIS bar code (24 digits, GS1 GDTI 253088698300...); not sent", short(d))
		row.Set(VISDocument, "")
	}
	for _, c := range []Col{VISPublicationDate, VISGivenDate} {
		if d := row.Get(c); d != "" {
			if n, ok := v.date(d); ok {
				row.Set(c, v.dateOf(d, n))
			} else {
				v.add(rec, line, c, Warning, "vis-date-invalid", "%q is not a date; not sent", short(d))
				row.Set(c, "")
			}
		}
	}
	if s, ok := v.r.opt.Sites[m.SiteID]; ok && s.County != "" && InSanJoaquinRegion(s.County, cs) {
		v.add(rec, line, SiteID, Error, "san-joaquin-region", "site %s is in the CAIR San Joaquin region (%s county): its doses go to the regional registry, not CAIR2", m.SiteID, s.County)
	}
}

// date parses one of the accepted date formats into YYYYMMDD.
func (v *validator) date(s string) (int, bool) {
	f := v.r.opt.Profile.DateFormat
	var y, m, d int
	switch {
	case len(s) == 10 && s[4] == '-' && s[7] == '-' && (f == "" || f == "YYYY-MM-DD"):
		y, m, d = num(s[0:4]), num(s[5:7]), num(s[8:10])
	case len(s) == 8 && isDigits(s) && (f == "" || f == "YYYYMMDD"):
		y, m, d = num(s[0:4]), num(s[4:6]), num(s[6:8])
	case strings.Count(s, "/") == 2 && (f == "" || f == "MM/DD/YYYY"):
		p := strings.Split(s, "/")
		if len(p[0]) < 1 || len(p[0]) > 2 || len(p[1]) < 1 || len(p[1]) > 2 || len(p[2]) != 4 {
			return 0, false
		}
		m, d, y = num(p[0]), num(p[1]), num(p[2])
	default:
		return 0, false
	}
	if y < 1850 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return y*10000 + m*100 + d, true
}

// expiry parses a lot expiration: a date, or YYYY-MM meaning the month's
// last day.
func (v *validator) expiry(s string) (int, bool) {
	if len(s) == 7 && s[4] == '-' {
		y, m := num(s[0:4]), num(s[5:7])
		if y >= 1900 && m >= 1 && m <= 12 {
			return y*10000 + m*100 + daysIn(y, m), true
		}
		return 0, false
	}
	return v.date(s)
}

func (v *validator) formats() string {
	if f := v.r.opt.Profile.DateFormat; f != "" {
		return f
	}
	return "YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY"
}

func (v *validator) countyFIPS(c string) (string, bool) {
	if has(v.t.county, c) {
		return c, true
	}
	if len(c) == 3 && isDigits(c) && has(v.t.county, "06"+c) {
		return "06" + c, true
	}
	name := strings.TrimSuffix(strings.TrimSuffix(c, " County"), " county")
	if code, ok := v.t.countyByName[name]; ok {
		return code, true
	}
	code, ok := v.t.countyByName[strings.ToLower(name)]
	return code, ok
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func num(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// dateString returns YYYYMMDD for n, reusing the input when it already is.
func dateString(in string, n int) string {
	if len(in) == 8 && isDigits(in) {
		return in
	}
	return strconv.Itoa(n)
}

// dateOf is dateString with the validator's memory of recent dates.
func (v *validator) dateOf(in string, n int) string {
	if len(in) == 8 {
		return dateString(in, n)
	}
	if d, ok := v.dates[in]; ok {
		return d
	}
	if v.dates == nil || len(v.dates) > 512 {
		v.dates = map[string]string{}
	}
	d := strconv.Itoa(n)
	v.dates[in] = d
	return d
}

func isoDate(n int) string { return fmt.Sprintf("%04d-%02d-%02d", n/10000, n/100%100, n%100) }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// isNameASCII is the fast path of the name policy.
func isNameASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c|0x20 >= 'a' && c|0x20 <= 'z' || c == ' ' || c == '-' || c == '\'') {
			return false
		}
	}
	return true
}

func digitsOnly(s string) string {
	if isDigits(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// validNPI checks the NPI's Luhn check digit (computed with CMS's 80840
// prefix).
func validNPI(n string) bool {
	if len(n) != 10 || !isDigits(n) {
		return false
	}
	sum := 24 // the digits of the 80840 prefix, doubled per Luhn
	for i := 8; i >= 0; i-- {
		d := int(n[i] - '0')
		if (8-i)%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == int(n[9]-'0')
}

// short bounds a code echoed in a message, so that a misplaced column of
// free text cannot carry patient data into a report.
func short(s string) string {
	if len(s) > 12 {
		return s[:12] + "..."
	}
	return s
}
