package hl7

import (
	"errors"
	"fmt"
	"time"
)

// Each type below mirrors an HL7 2.5.1 data type by its components, in
// order, as far as the VXU and ACK use them. Put writes the type at the
// encoder's cursor starting with component 1 (the caller has moved to a fresh
// field or repetition); Parse* reads it from a parsed repetition.

// HD is a hierarchic designator (MSH-4, assigning authorities).
type HD struct {
	NamespaceID, UniversalID, UniversalIDType string
}

// Put writes hd as components.
func (hd HD) Put(e *Encoder) { e.Comps(hd.NamespaceID, hd.UniversalID, hd.UniversalIDType) }

// PutSubs writes hd as subcomponents of the current component, the form it
// takes inside CX, XCN and EI.
func (hd HD) PutSubs(e *Encoder) {
	e.Value(hd.NamespaceID)
	e.Sub()
	e.Value(hd.UniversalID)
	e.Sub()
	e.Value(hd.UniversalIDType)
}

// ParseHD reads an HD from a repetition.
func ParseHD(r Rep) HD {
	return HD{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String()}
}

func hdFromSubs(c Comp) HD { return HD{c.Sub(1), c.Sub(2), c.Sub(3)} }

// CX is an extended identifier (PID-3).
type CX struct {
	ID                 string // CX.1
	CheckDigit         string // CX.2
	CheckDigitScheme   string // CX.3
	AssigningAuthority HD     // CX.4
	IDType             string // CX.5 (HL70203: MR, SS, ...)
}

// Put writes cx.
func (cx CX) Put(e *Encoder) {
	e.Comps(cx.ID, cx.CheckDigit, cx.CheckDigitScheme)
	e.Comp()
	cx.AssigningAuthority.PutSubs(e)
	e.Comp()
	e.Value(cx.IDType)
}

// ParseCX reads a CX.
func ParseCX(r Rep) CX {
	return CX{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), hdFromSubs(r.Comp(4)), r.Comp(5).String()}
}

// XPN is a person name (PID-5, PID-6, NK1-2).
type XPN struct {
	Family, Given, Middle, Suffix, Prefix, Degree string // XPN.1-6
	NameType                                      string // XPN.7 (HL70200: L, M, ...)
}

// Put writes x.
func (x XPN) Put(e *Encoder) {
	e.Comps(x.Family, x.Given, x.Middle, x.Suffix, x.Prefix, x.Degree, x.NameType)
}

// ParseXPN reads an XPN.
func ParseXPN(r Rep) XPN {
	return XPN{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String(),
		r.Comp(5).String(), r.Comp(6).String(), r.Comp(7).String()}
}

// XAD is an address (PID-11).
type XAD struct {
	Street, Other, City, State, Zip, Country string // XAD.1-6
	Type                                     string // XAD.7 (HL70190: H, M, L, P, ...)
	OtherGeo                                 string // XAD.8
	County                                   string // XAD.9 (FIPS county code)
}

// Put writes a.
func (a XAD) Put(e *Encoder) {
	e.Comps(a.Street, a.Other, a.City, a.State, a.Zip, a.Country, a.Type, a.OtherGeo, a.County)
}

// ParseXAD reads an XAD.
func ParseXAD(r Rep) XAD {
	return XAD{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String(),
		r.Comp(5).String(), r.Comp(6).String(), r.Comp(7).String(), r.Comp(8).String(), r.Comp(9).String()}
}

// XTN is a telecommunication address (PID-13, NK1-5).
type XTN struct {
	Number        string // XTN.1 (deprecated free text)
	UseCode       string // XTN.2 (HL70201: PRN, NET, ...)
	EquipmentType string // XTN.3 (HL70202: PH, CP, Internet, ...)
	Email         string // XTN.4
	CountryCode   string // XTN.5
	AreaCode      string // XTN.6
	LocalNumber   string // XTN.7
	Extension     string // XTN.8
}

// Put writes t.
func (t XTN) Put(e *Encoder) {
	e.Comps(t.Number, t.UseCode, t.EquipmentType, t.Email, t.CountryCode, t.AreaCode, t.LocalNumber, t.Extension)
}

// ParseXTN reads an XTN.
func ParseXTN(r Rep) XTN {
	return XTN{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String(),
		r.Comp(5).String(), r.Comp(6).String(), r.Comp(7).String(), r.Comp(8).String()}
}

// CWE is a coded value with exceptions; CE, its older form, has the same
// first six components, so the two share a type.
type CWE struct {
	Identifier, Text, CodingSystem          string // .1-.3
	AltIdentifier, AltText, AltCodingSystem string // .4-.6
	CodingSystemVersion, AltVersion         string // .7-.8 (CWE only)
	OriginalText                            string // .9 (CWE only)
}

// CE is the coded element type; see CWE.
type CE = CWE

// Put writes c.
func (c CWE) Put(e *Encoder) {
	e.Comps(c.Identifier, c.Text, c.CodingSystem, c.AltIdentifier, c.AltText, c.AltCodingSystem,
		c.CodingSystemVersion, c.AltVersion, c.OriginalText)
}

// ParseCWE reads a CWE (or CE).
func ParseCWE(r Rep) CWE {
	return CWE{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String(),
		r.Comp(5).String(), r.Comp(6).String(), r.Comp(7).String(), r.Comp(8).String(), r.Comp(9).String()}
}

// XCN is a person with an identifier (ORC-10, ORC-12, RXA-10).
type XCN struct {
	ID                                             string // .1
	Family, Given, Middle, Suffix, Prefix, Degree  string // .2-.7
	SourceTable                                    string // .8
	AssigningAuthority                             HD     // .9
	NameType, CheckDigit, CheckDigitScheme, IDType string // .10-.13
}

// Put writes x.
func (x XCN) Put(e *Encoder) {
	e.Comps(x.ID, x.Family, x.Given, x.Middle, x.Suffix, x.Prefix, x.Degree, x.SourceTable)
	e.Comp()
	x.AssigningAuthority.PutSubs(e)
	e.Comp()
	e.Comps(x.NameType, x.CheckDigit, x.CheckDigitScheme, x.IDType)
}

// ParseXCN reads an XCN.
func ParseXCN(r Rep) XCN {
	return XCN{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String(),
		r.Comp(5).String(), r.Comp(6).String(), r.Comp(7).String(), r.Comp(8).String(),
		hdFromSubs(r.Comp(9)), r.Comp(10).String(), r.Comp(11).String(), r.Comp(12).String(), r.Comp(13).String()}
}

// EI is an entity identifier (ORC-2, ORC-3).
type EI struct {
	EntityID, NamespaceID, UniversalID, UniversalIDType string
}

// Put writes ei.
func (ei EI) Put(e *Encoder) {
	e.Comps(ei.EntityID, ei.NamespaceID, ei.UniversalID, ei.UniversalIDType)
}

// ParseEI reads an EI.
func ParseEI(r Rep) EI {
	return EI{r.Comp(1).String(), r.Comp(2).String(), r.Comp(3).String(), r.Comp(4).String()}
}

// Precision says how much of a TS/DTM value was given.
type Precision int

// Precisions of a DTM value, from year to fractions of a second.
const (
	Year Precision = iota + 1
	Month
	Day
	Hour
	Minute
	Second
	Fraction
)

// ErrBadTS is wrapped by every TS/DTM parse error.
var ErrBadTS = errors.New("not a valid HL7 date/time")

// ParseTS reads a TS/DTM value: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].
// Without an offset the time is taken in loc (UTC when loc is nil).
func ParseTS(s string, loc *time.Location) (time.Time, Precision, error) {
	if loc == nil {
		loc = time.UTC
	}
	body, zone := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '+' || s[i] == '-' {
			body, zone = s[:i], s[i:]
			break
		}
	}
	if zone != "" {
		if len(zone) != 5 || !digits(zone[1:]) {
			return time.Time{}, 0, fmt.Errorf("%w: %q has a bad offset", ErrBadTS, s)
		}
		h := atoi(zone[1:3])
		m := atoi(zone[3:5])
		if h > 14 || m > 59 {
			return time.Time{}, 0, fmt.Errorf("%w: %q has a bad offset", ErrBadTS, s)
		}
		off := (h*60 + m) * 60
		if zone[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	frac := ""
	if i := indexByte(body, '.'); i >= 0 {
		body, frac = body[:i], body[i+1:]
		if len(body) != 14 || frac == "" || len(frac) > 4 || !digits(frac) {
			return time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadTS, s)
		}
	}
	if !digits(body) {
		return time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadTS, s)
	}
	var p Precision
	switch len(body) {
	case 4:
		p = Year
	case 6:
		p = Month
	case 8:
		p = Day
	case 10:
		p = Hour
	case 12:
		p = Minute
	case 14:
		p = Second
	default:
		return time.Time{}, 0, fmt.Errorf("%w: %q", ErrBadTS, s)
	}
	f := [6]int{0, 1, 1, 0, 0, 0}
	for i := 0; i*2+4 <= len(body); i++ {
		if i == 0 {
			f[0] = atoi(body[:4])
			continue
		}
		f[i] = atoi(body[2+i*2 : 4+i*2])
	}
	ns := 0
	if frac != "" {
		p = Fraction
		ns = atoi(frac)
		for k := len(frac); k < 9; k++ {
			ns *= 10
		}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], ns, loc)
	if f[0] < 1 || f[1] < 1 || f[1] > 12 || f[2] < 1 || t.Day() != f[2] || f[3] > 23 || f[4] > 59 || f[5] > 59 {
		return time.Time{}, 0, fmt.Errorf("%w: %q is not a calendar date/time", ErrBadTS, s)
	}
	return t, p, nil
}

// FormatDate writes t as YYYYMMDD.
func FormatDate(t time.Time) string { return t.Format("20060102") }

// FormatTS writes t as YYYYMMDDHHMMSS+ZZZZ, the form MSH-7 takes.
func FormatTS(t time.Time) string { return t.Format("20060102150405-0700") }

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
