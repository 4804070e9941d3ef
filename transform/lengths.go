package transform

import "unicode/utf8"

// Length limits. HL7 2.5.1 and the CDC immunization guide give each field
// a conformance length; CAIR refuses what does not fit, and a value far
// beyond any real one (a 5 MB field from a broken export) must never reach
// the registry, where it would be answered with a fault and retried. The
// limits are the guide's where it gives one, otherwise 200 characters -
// far above any real value. A value longer than its limit makes the record
// invalid, with its line, column and field.
var maxLen = func() [numCols]int {
	var m [numCols]int
	for c := range m {
		m[c] = 200
	}
	for c, n := range map[Col]int{
		PatientID: 20, PatientLastName: 50, PatientFirstName: 30, PatientMiddleName: 30, PatientSuffix: 10,
		MotherMaidenLastName: 50, PatientBirthDate: 10, PatientSex: 10, Race: 60, Ethnicity: 20,
		AddressStreet: 120, AddressStreet2: 120, AddressCity: 50, AddressState: 20, AddressZip: 12, AddressCounty: 30,
		Phone: 30, Email: 100, Language: 20, MultipleBirth: 1, BirthOrder: 2, DeathDate: 10,
		GuardianLastName: 50, GuardianFirstName: 30, GuardianRelationship: 20,
		VaccinationID: 50, AdminDate: 10, CVXCode: 10, DoseML: 10, LotNumber: 20, LotExpiration: 10, MVXCode: 10,
		AdministeredByNPI: 10, AdministeredByLastName: 50, AdministeredByFirstName: 30,
		OrderingProviderNPI: 10, OrderingProviderLastName: 50, OrderingProviderFirstName: 30, EnteredBy: 50, SiteID: 20,
	} {
		m[c] = n
	}
	return m
}()

// lengths checks every value against its column's limit.
func (v *validator) lengths(rec *Record) {
	for c := Col(0); c < numCols; c++ {
		val := rec.Row.Get(c)
		if len(val) <= maxLen[c] {
			continue // bytes >= characters: nothing longer in characters
		}
		if n := utf8.RuneCountInString(val); n > maxLen[c] {
			v.add(rec, rec.Line, c, Error, "too-long", "%s holds %d characters; at most %d fit in %s", c.Name(), n, maxLen[c], c.Field())
		}
	}
}
