package bench

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"
)

// ExportStats says what an export holds.
type ExportStats struct {
	Records, Patients                                  int
	Administered, Historical, Refusals, Invalid, Later int // Later: rows of a patient's second visit, further down
}

// exportColumns are the default layout's columns the export fills.
var exportColumns = []string{
	"patient_id", "patient_last_name", "patient_first_name", "patient_middle_name", "patient_birth_date", "patient_sex", "race", "ethnicity",
	"address_street", "address_city", "address_state", "address_zip", "address_county", "phone", "mother_maiden_last_name",
	"share_with_registry", "vaccination_id", "admin_date", "cvx", "mvx", "lot_number", "lot_expiration", "dose_ml", "route", "body_site",
	"info_source", "vfc_eligibility", "funding_source", "administered_by_npi", "administered_by_last_name", "administered_by_first_name",
	"ordering_provider_npi", "ordering_provider_last_name", "ordering_provider_first_name", "refusal_reason",
}

// Vaccines given at a visit (CVX, MVX: pairs a CDC product has).
var vaccines = [][2]string{{"20", "SKB"}, {"10", "PMC"}, {"133", "PFR"}, {"08", "MSD"}, {"03", "MSD"}, {"116", "MSD"},
	{"150", "SKB"}, {"187", "SKB"}, {"83", "MSD"}, {"21", "MSD"}, {"165", "MSD"}, {"115", "SKB"}}

var (
	lastNames  = []string{"Alvarez", "Nguyen", "Chen", "Haddad", "Okafor", "Kowalski", "Garcia", "Singh", "Rivera", "Johnson", "Kim", "Patel", "O'Neil"}
	firstNames = []string{"Sofia", "Daniel", "Wei", "Layla", "Jan", "Ana", "Mateo", "Priya", "Noah", "Mia", "Luca", "Zoe"}
	cities     = [][3]string{{"San Francisco", "94103", "San Francisco"}, {"Oakland", "94607", "Alameda"}, {"Fresno", "93701", "Fresno"},
		{"Pasadena", "91101", "Los Angeles"}, {"San Diego", "92101", "San Diego"}, {"Sacramento", "95814", "Sacramento"}}
	races = []string{"2106-3", "2028-9", "2054-5", "2131-1", "1002-5", "2076-8"}
)

// Export writes rows records in the default layout to w, as a clinic's
// export of a few weeks looks: patients (mostly children) with one to four
// doses at a visit - administered mostly, some historical, some refusals -
// a tenth of them back for a second visit further down the file, one in
// thirty without a phone number (a warning), and a share invalid of rows a
// check refuses (a lot number missing, a vaccine
// its manufacturer does not make, a date that is not one). Vaccination ids
// are BV<patient>-<n>, n growing in file order for each patient. The same
// seed gives the same file.
func Export(w io.Writer, rows int, invalid float64, seed uint64, today time.Time) (ExportStats, error) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	bw := bufio.NewWriter(w)
	bw.WriteString(strings.Join(exportColumns, ",") + "\n")
	var st ExportStats
	type patient struct {
		num, doses int
		row        []string // the patient columns
		back       int      // row number of the second visit, 0 if none
	}
	var waiting []*patient // second visits to come, in row order
	nextPatient := 0
	newPatient := func() *patient {
		nextPatient++
		p := &patient{num: nextPatient}
		// Born before any visit (the first is 10 to 40 days ago).
		birth := today.AddDate(-rnd.IntN(12), -rnd.IntN(12), -rnd.IntN(28)-60)
		if rnd.IntN(5) == 0 {
			birth = today.AddDate(-18-rnd.IntN(60), 0, -rnd.IntN(365))
		}
		c := cities[rnd.IntN(len(cities))]
		sex := "F"
		if rnd.IntN(2) == 0 {
			sex = "M"
		}
		p.row = []string{fmt.Sprintf("MRN%07d", p.num), lastNames[rnd.IntN(len(lastNames))], firstNames[rnd.IntN(len(firstNames))], "",
			birth.Format("2006-01-02"), sex, races[rnd.IntN(len(races))], []string{"2135-2", "2186-5"}[rnd.IntN(2)],
			fmt.Sprintf("%d %s St", 1+rnd.IntN(4000), []string{"Mission", "Elm", "Harbor", "Orange", "Oak"}[rnd.IntN(5)]), c[0], "CA", c[1], c[2],
			fmt.Sprintf("(%03d) 555-%04d", 200+rnd.IntN(700), rnd.IntN(10000)), lastNames[rnd.IntN(len(lastNames))], "Y"}
		if rnd.IntN(30) == 0 {
			p.row[13] = "" // no phone: a warning, the record is still sent
		}
		st.Patients++
		return p
	}
	visit := func(p *patient, n int, date time.Time, later bool) {
		for i := 0; i < n && st.Records < rows; i++ {
			p.doses++
			st.Records++
			if later {
				st.Later++
			}
			v := vaccines[rnd.IntN(len(vaccines))]
			vfc := []string{"V01", "V02", "V03", "V04"}[rnd.IntN(4)]
			fund := "VXC51"
			if vfc == "V01" {
				fund = "PHC70"
			}
			dose := []string{fmt.Sprintf("BV%07d-%d", p.num, p.doses), date.Format("2006-01-02"), v[0], v[1],
				fmt.Sprintf("L%05X", rnd.IntN(1<<20)), date.AddDate(1, 6, 0).Format("2006-01"), "0.5", "C28161",
				[]string{"LT", "RT", "LD", "RD", "LA", "RA"}[rnd.IntN(6)], "", vfc, fund,
				"1987654328", "Nguyen", "Thao", "1234567893", "Okafor", "Chidi", ""}
			switch r := rnd.Float64(); {
			case r < invalid:
				st.Invalid++
				switch rnd.IntN(3) {
				case 0:
					dose[4] = "" // lot-missing
				case 1:
					dose[2], dose[3] = "115", "MSD" // no such product
				default:
					dose[1] = date.Format("2006-01") + "-45" // not a date
				}
			case r < invalid+0.08:
				st.Historical++
				// Given elsewhere, between birth and this visit.
				b, _ := time.Parse("2006-01-02", p.row[4])
				old := b.Add(time.Duration(rnd.Float64() * float64(date.Sub(b))))
				dose = []string{dose[0], old.Format("2006-01-02"), v[0], "", "", "", "", "", "", "historical", "", "", "", "", "", "", "", "", ""}
			case r < invalid+0.11:
				st.Refusals++
				dose = []string{dose[0], date.Format("2006-01-02"), v[0], "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "00"}
			default:
				st.Administered++
			}
			bw.WriteString(strings.Join(p.row, ","))
			bw.WriteByte(',')
			bw.WriteString(strings.Join(dose, ","))
			bw.WriteByte('\n')
		}
	}
	for st.Records < rows {
		if len(waiting) > 0 && waiting[0].back <= st.Records {
			p := waiting[0]
			waiting = waiting[1:]
			visit(p, 1+rnd.IntN(2), today.AddDate(0, 0, -1-rnd.IntN(5)), true)
			continue
		}
		p := newPatient()
		visit(p, 1+rnd.IntN(4), today.AddDate(0, 0, -10-rnd.IntN(30)), false)
		if rnd.IntN(10) == 0 {
			p.back = st.Records + 50 + rnd.IntN(500)
			p.row = append([]string(nil), p.row...)
			waiting = append(waiting, p)
		}
	}
	return st, bw.Flush()
}
