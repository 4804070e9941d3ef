package transform

// Col is one column of izdrop's default export layout
// (docs/export-csv.md); a profile maps a file's own header names onto these.
type Col int

// The columns. Their order is the order of the default layout's tables.
const (
	PatientID Col = iota
	PatientLastName
	PatientFirstName
	PatientMiddleName
	PatientSuffix
	MotherMaidenLastName
	PatientBirthDate
	PatientSex
	Race
	Ethnicity
	AddressStreet
	AddressStreet2
	AddressCity
	AddressState
	AddressZip
	AddressCounty
	Phone
	Email
	Language
	MultipleBirth
	BirthOrder
	DeathDate
	ShareWithRegistry
	DisclosureDate
	ReminderRecall
	RegistryStatus
	GuardianLastName
	GuardianFirstName
	GuardianRelationship
	VaccinationID
	AdminDate
	CVXCode
	VaccineName
	DoseML
	InfoSource
	LotNumber
	LotExpiration
	MVXCode
	Route
	BodySite
	AdministeredByNPI
	AdministeredByLastName
	AdministeredByFirstName
	OrderingProviderNPI
	OrderingProviderLastName
	OrderingProviderFirstName
	EnteredBy
	SiteID
	VFCEligibility
	FundingSource
	VISDocument
	VISPublicationDate
	VISGivenDate
	RefusalReason
	CompletionStatus
	Action
	ImmunitySNOMED
	numCols
)

// firstVaccinationCol splits patient columns (taken from the first row of a
// group) from vaccination columns (one ORC/RXA group per row).
const firstVaccinationCol = VaccinationID

type colInfo struct {
	name  string // name in the default layout
	field string // where it lands in the VXU
}

var cols = [numCols]colInfo{
	PatientID:                 {"patient_id", "PID-3"},
	PatientLastName:           {"patient_last_name", "PID-5.1"},
	PatientFirstName:          {"patient_first_name", "PID-5.2"},
	PatientMiddleName:         {"patient_middle_name", "PID-5.3"},
	PatientSuffix:             {"patient_suffix", "PID-5.4"},
	MotherMaidenLastName:      {"mother_maiden_last_name", "PID-6"},
	PatientBirthDate:          {"patient_birth_date", "PID-7"},
	PatientSex:                {"patient_sex", "PID-8"},
	Race:                      {"race", "PID-10"},
	Ethnicity:                 {"ethnicity", "PID-22"},
	AddressStreet:             {"address_street", "PID-11.1"},
	AddressStreet2:            {"address_street2", "PID-11.2"},
	AddressCity:               {"address_city", "PID-11.3"},
	AddressState:              {"address_state", "PID-11.4"},
	AddressZip:                {"address_zip", "PID-11.5"},
	AddressCounty:             {"address_county", "PID-11.9"},
	Phone:                     {"phone", "PID-13"},
	Email:                     {"email", "PID-13"},
	Language:                  {"language", "PID-15"},
	MultipleBirth:             {"multiple_birth", "PID-24"},
	BirthOrder:                {"birth_order", "PID-25"},
	DeathDate:                 {"death_date", "PID-29"},
	ShareWithRegistry:         {"share_with_registry", "PD1-12"},
	DisclosureDate:            {"disclosure_date", "PD1-13"},
	ReminderRecall:            {"reminder_recall", "PD1-11"},
	RegistryStatus:            {"registry_status", "PD1-16"},
	GuardianLastName:          {"guardian_last_name", "NK1-2"},
	GuardianFirstName:         {"guardian_first_name", "NK1-2"},
	GuardianRelationship:      {"guardian_relationship", "NK1-3"},
	VaccinationID:             {"vaccination_id", "ORC-3"},
	AdminDate:                 {"admin_date", "RXA-3"},
	CVXCode:                   {"cvx", "RXA-5"},
	VaccineName:               {"vaccine_name", "RXA-5.2"},
	DoseML:                    {"dose_ml", "RXA-6"},
	InfoSource:                {"info_source", "RXA-9"},
	LotNumber:                 {"lot_number", "RXA-15"},
	LotExpiration:             {"lot_expiration", "RXA-16"},
	MVXCode:                   {"mvx", "RXA-17"},
	Route:                     {"route", "RXR-1"},
	BodySite:                  {"body_site", "RXR-2"},
	AdministeredByNPI:         {"administered_by_npi", "RXA-10.1"},
	AdministeredByLastName:    {"administered_by_last_name", "RXA-10.2"},
	AdministeredByFirstName:   {"administered_by_first_name", "RXA-10.3"},
	OrderingProviderNPI:       {"ordering_provider_npi", "ORC-12.1"},
	OrderingProviderLastName:  {"ordering_provider_last_name", "ORC-12.2"},
	OrderingProviderFirstName: {"ordering_provider_first_name", "ORC-12.3"},
	EnteredBy:                 {"entered_by", "ORC-10"},
	SiteID:                    {"site_id", "RXA-11.4"},
	VFCEligibility:            {"vfc_eligibility", "OBX-5 (64994-7)"},
	FundingSource:             {"funding_source", "OBX-5 (30963-3)"},
	VISDocument:               {"vis_document", "OBX-5 (69764-9)"},
	VISPublicationDate:        {"vis_publication_date", "OBX-5 (29768-9)"},
	VISGivenDate:              {"vis_given_date", "OBX-5 (29769-7)"},
	RefusalReason:             {"refusal_reason", "RXA-18"},
	CompletionStatus:          {"completion_status", "RXA-20"},
	Action:                    {"action", "RXA-21"},
	ImmunitySNOMED:            {"immunity_snomed", "OBX-5 (59784-9)"},
}

// Name returns the column's name in the default layout.
func (c Col) Name() string { return cols[c].name }

// Field returns the VXU field the column fills.
func (c Col) Field() string { return cols[c].field }

// requiredCols must be in every file's header: without them no record of the
// file can be valid, so the file is refused as a whole.
var requiredCols = []Col{PatientID, PatientLastName, PatientFirstName, PatientBirthDate, VaccinationID, AdminDate, CVXCode}

// ColByName finds a column of the default layout by name.
func ColByName(name string) (Col, bool) {
	for i := range cols {
		if cols[i].name == name {
			return Col(i), true
		}
	}
	return 0, false
}
