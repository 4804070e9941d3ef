package transform

import (
	"strconv"
	"strings"
	"time"

	"github.com/izdrop/izdrop/hl7"
)

// Header carries what a message gets at send time rather than from the
// file: MSH-10 and MSH-7. A resend uses the same Header, so it is byte for
// byte the message first sent.
type Header struct {
	ControlID string
	Time      time.Time
}

// Constant field values, encoded once. Building them with Encode (rather
// than typing "a^b^c") keeps them correctly escaped.
var (
	ce       = hl7.DefaultDelimiters.Encode
	msh9     = ce("VXU", "V04", "VXU_V04")
	msh21    = ce("Z22", "CDCPHINVS")
	mL       = ce("mL", "mL", "UCUM")
	vxc40    = ce("VXC40", "Eligibility captured at the immunization level", "CDCPHINVS")
	loincVFC = ce("64994-7", "Vaccine funding program eligibility category", "LN")
	loincFS  = ce("30963-3", "Vaccine funding source", "LN")
	loincDoc = ce("69764-9", "Document type", "LN")
	loincVT  = ce("30956-7", "Vaccine type", "LN")
	loincPub = ce("29768-9", "Date vaccine information statement published", "LN")
	loincPre = ce("29769-7", "Date vaccine information statement presented", "LN")
	loincImm = ce("59784-9", "Disease with presumed immunity", "LN")
)

// Encode writes the VXU^V04 for the given records of m (normally
// m.Sendable(), less any the caller skips) into e and returns e's buffer,
// valid until e is next used. It returns nil when recs is empty. e must
// write hl7.DefaultDelimiters (|^~\&), the only set izdrop sends.
func (m *Message) Encode(e *hl7.Encoder, h Header, recs []*Record) []byte {
	if len(recs) == 0 {
		return nil
	}
	if e.Delimiters() != hl7.DefaultDelimiters {
		e = hl7.NewEncoder(hl7.DefaultDelimiters)
	}
	o := m.opt
	t := m.t
	p := m.patient
	site := m.site
	e.Reset()

	e.Segment("MSH")
	e.F(o.Application)        // MSH-3
	e.F(site.SendingFacility) // MSH-4
	e.F("CAIR IIS")           // MSH-5
	e.F(site.Region)          // MSH-6
	e.Field()
	e.Time(h.Time) // MSH-7
	e.Field()      // MSH-8
	e.Field()
	e.Raw(msh9)      // MSH-9
	e.F(h.ControlID) // MSH-10
	e.F("P")         // MSH-11: CAIR answers AR to anything else
	e.F("2.5.1")     // MSH-12
	e.At(15)
	e.Value("ER") // MSH-15
	e.F("AL")     // MSH-16
	e.At(21)
	e.Raw(msh21)  // MSH-21
	e.F(m.SiteID) // MSH-22

	e.Segment("PID")
	e.F("1")
	e.At(3)
	idType := o.Profile.IDType
	if m.idType != "" {
		idType = m.idType
	}
	hl7.CX{ID: p.Get(PatientID), AssigningAuthority: hl7.HD{NamespaceID: site.AssigningAuthority}, IDType: idType}.Put(e)
	e.At(5)
	hl7.XPN{Family: p.Get(PatientLastName), Given: p.Get(PatientFirstName), Middle: p.Get(PatientMiddleName), Suffix: p.Get(PatientSuffix), NameType: "L"}.Put(e)
	e.Field()
	if p.Get(MotherMaidenLastName) != "" {
		hl7.XPN{Family: p.Get(MotherMaidenLastName), NameType: "M"}.Put(e)
	}
	e.F(p.Get(PatientBirthDate)) // PID-7
	e.F(p.Get(PatientSex))       // PID-8
	e.At(10)
	if r := p.Get(Race); r != "" {
		for i, code := range strings.Split(r, ";") {
			if i > 0 {
				e.Rep()
			}
			rawCE(e, t.raceCE, code)
		}
	}
	e.At(11)
	if p.Get(AddressStreet) != "" || p.Get(AddressCity) != "" || p.Get(AddressZip) != "" {
		hl7.XAD{Street: p.Get(AddressStreet), Other: p.Get(AddressStreet2), City: p.Get(AddressCity), State: p.Get(AddressState),
			Zip: p.Get(AddressZip), Country: "USA", Type: "H", County: p.Get(AddressCounty)}.Put(e)
	}
	e.At(13)
	first := true
	if ph := p.Get(Phone); ph != "" {
		hl7.XTN{UseCode: "PRN", EquipmentType: "PH", AreaCode: ph[:3], LocalNumber: ph[3:]}.Put(e)
		first = false
	}
	if em := p.Get(Email); em != "" {
		if !first {
			e.Rep()
		}
		hl7.XTN{UseCode: "NET", EquipmentType: "Internet", Email: em}.Put(e)
	}
	e.At(15)
	if l := p.Get(Language); l != "" {
		e.Comps(strings.ToLower(l), "", "HL70296")
	}
	e.At(22)
	rawCE(e, t.ethnicityCE, p.Get(Ethnicity))
	e.At(24)
	e.Value(p.Get(MultipleBirth))
	e.F(p.Get(BirthOrder)) // PID-25
	e.At(29)
	if d := p.Get(DeathDate); d != "" {
		e.Value(d)
		e.F("Y") // PID-30
	}

	// PD1: publicity, protection (the patient's sharing choice) and registry
	// status. The consent itself is the site's to obtain; nothing here
	// invents one: PD1-12 is only sent when the file says.
	e.Segment("PD1")
	e.At(11)
	rawCE(e, t.publicityCE, p.Get(ReminderRecall))
	switch p.Get(ShareWithRegistry) {
	case "Y", "N":
		prot := "N"
		if p.Get(ShareWithRegistry) == "N" {
			prot = "Y"
		}
		e.F(prot) // PD1-12
		date := p.Get(DisclosureDate)
		if date == "" {
			date = recs[0].Row.Get(AdminDate)
		}
		e.F(date) // PD1-13
	}
	e.At(16)
	status := p.Get(RegistryStatus)
	if status == "" {
		status = "A"
	}
	e.Value(status)                                // PD1-16, where the cursor is: an ID of length 1 in HL7 2.5.1 (HL70441), not a CE
	e.F(hl7.FormatDate(o.FileDate.In(o.Location))) // PD1-17

	if p.Get(GuardianLastName) != "" {
		e.Segment("NK1")
		e.F("1")
		e.Field()
		hl7.XPN{Family: p.Get(GuardianLastName), Given: p.Get(GuardianFirstName), NameType: "L"}.Put(e)
		e.Field()
		rawCE(e, t.relationshipCE, p.Get(GuardianRelationship))
	}

	for _, rec := range recs {
		encodeDose(e, &rec.Row, site, m.SiteID, t)
	}
	return e.Bytes()
}

func encodeDose(e *hl7.Encoder, r *Row, site Site, siteID string, t *tables) {
	status := r.Get(CompletionStatus)
	given := status == "CP" || status == "PA"
	historical := r.Get(InfoSource) != "00"
	doseSite := r.Get(SiteID)
	if doseSite == "" {
		doseSite = siteID
	}

	e.Segment("ORC")
	e.F("RE")
	e.At(3)
	hl7.EI{EntityID: r.Get(VaccinationID), NamespaceID: site.SendingFacility}.Put(e)
	e.At(10)
	if eb := r.Get(EnteredBy); eb != "" {
		hl7.XCN{ID: eb}.Put(e)
	}
	e.At(12)
	if !historical && (r.Get(OrderingProviderNPI) != "" || r.Get(OrderingProviderLastName) != "") {
		provider(r.Get(OrderingProviderNPI), r.Get(OrderingProviderLastName), r.Get(OrderingProviderFirstName)).Put(e)
	}
	e.At(17)
	e.Comps(doseSite, "", "HL70362")

	e.Segment("RXA")
	e.F("0")
	e.F("1")
	e.F(r.Get(AdminDate)) // RXA-3
	e.Field()
	e.Field() // RXA-5
	cvx := r.Get(CVXCode)
	if name := r.Get(VaccineName); name != "" {
		e.Comps(cvx, name, "CVX")
	} else {
		rawCE(e, t.cvxCE, cvx)
	}
	e.F(r.Get(DoseML)) // RXA-6
	e.Field()          // RXA-7
	if r.Get(DoseML) != "999" {
		e.Raw(mL)
	}
	e.At(9)
	if given {
		rawCE(e, t.infoSourceCE, r.Get(InfoSource))
	}
	e.At(10)
	if given && !historical && (r.Get(AdministeredByNPI) != "" || r.Get(AdministeredByLastName) != "") {
		provider(r.Get(AdministeredByNPI), r.Get(AdministeredByLastName), r.Get(AdministeredByFirstName)).Put(e)
	}
	e.At(11)
	if given {
		e.CompAt(4)
		e.Value(doseSite) // RXA-11.4
	}
	e.At(15)
	if given {
		e.Value(r.Get(LotNumber))
		e.F(r.Get(LotExpiration)) // RXA-16
		e.Field()                 // RXA-17
		rawCE(e, t.mvxCE, r.Get(MVXCode))
	}
	e.At(18)
	rawCE(e, t.refusalCE, r.Get(RefusalReason))
	e.At(20)
	e.Value(status)
	e.F(r.Get(Action)) // RXA-21

	if given && (r.Get(Route) != "" || r.Get(BodySite) != "") {
		e.Segment("RXR")
		e.Field()
		if rt := r.Get(Route); rt != "" {
			if v, ok := t.ncitCE[rt]; ok {
				e.Raw(v)
			} else {
				rawCE(e, t.routeCE, rt)
			}
		}
		e.Field()
		rawCE(e, t.siteCE, r.Get(BodySite))
	}

	obx := obxWriter{e: e, adminDate: r.Get(AdminDate)}
	if sn := r.Get(ImmunitySNOMED); sn != "" {
		v, ok := t.immCE[sn]
		if !ok {
			v = ce(sn, "", "SCT")
		}
		obx.coded(1, loincImm, v, false)
		return
	}
	if !given {
		return
	}
	sub := 0
	if v := r.Get(VFCEligibility); v != "" {
		sub++
		obx.coded(sub, loincVFC, t.vfcCE[v], true)
	}
	if f := r.Get(FundingSource); f != "" {
		sub++
		obx.coded(sub, loincFS, t.fundingCE[f], false)
	}
	// VIS: the bar code form (69764-9) when the document is known, the CVX
	// form (30956-7 + publication date) otherwise; both with the date given.
	switch {
	case r.Get(VISDocument) != "":
		sub++
		obx.coded(sub, loincDoc, ce(r.Get(VISDocument), "", "cdcgs1vis"), false)
		obx.date(sub, loincPre, r.Get(VISGivenDate))
	case r.Get(VISPublicationDate) != "":
		sub++
		if name := r.Get(VaccineName); name != "" {
			obx.coded(sub, loincVT, ce(cvx, name, "CVX"), false)
		} else {
			obx.coded(sub, loincVT, t.cvxCE[cvx], false)
		}
		obx.date(sub, loincPub, r.Get(VISPublicationDate))
		obx.date(sub, loincPre, r.Get(VISGivenDate))
	}
}

// rawCE writes the pre-encoded CE of code, if there is a code.
func rawCE(e *hl7.Encoder, table map[string]string, code string) {
	if code != "" {
		e.Raw(table[code])
	}
}

func provider(npi, last, first string) hl7.XCN {
	x := hl7.XCN{ID: npi, Family: last, Given: first, NameType: "L"}
	if npi != "" {
		x.AssigningAuthority = hl7.HD{NamespaceID: "CMS"}
		x.IDType = "NPI"
	}
	return x
}

// obxWriter numbers a dose's OBX segments (OBX-1) and writes the common
// fields; OBX-4 groups the observations of one fact.
type obxWriter struct {
	e         *hl7.Encoder
	n         int
	adminDate string
}

func (w *obxWriter) start(sub int, valueType, loinc string) {
	w.n++
	e := w.e
	e.Segment("OBX")
	e.F(strconv.Itoa(w.n))
	e.F(valueType)
	e.Field()
	e.Raw(loinc)
	e.F(strconv.Itoa(sub))
}

// coded writes a CE observation; value is an encoded CE.
func (w *obxWriter) coded(sub int, loinc, value string, vfc bool) {
	w.start(sub, "CE", loinc)
	w.e.Field()
	w.e.Raw(value) // OBX-5
	w.e.At(11)
	w.e.Value("F")
	w.e.At(14)
	w.e.Value(w.adminDate)
	if vfc {
		w.e.At(17)
		w.e.Raw(vxc40)
	}
}

func (w *obxWriter) date(sub int, loinc, value string) {
	if value == "" {
		return
	}
	w.start(sub, "DT", loinc)
	w.e.F(value)
	w.e.At(11)
	w.e.Value("F")
}
