// Package codes holds the code tables izdrop validates against: the CDC CVX
// (vaccines), MVX (manufacturers) and product (CVX/MVX pair) tables, and the
// HL7 and CDC value sets a VXU uses (route, body site, VFC eligibility,
// funding source, NIP001, NIP002, race and ethnicity, ...). transform checks
// records against them before anything is sent; the sandbox checks received
// messages against the same tables, as CAIR2 does.
//
// The tables are embedded (data/), each with its source and the date it was
// taken (data/manifest.tsv, data/SOURCES.md). A newer CDC export given as a
// file is loaded with Import (the `izdrop codes import FILE` command), which
// writes it to the configured codes directory; Load prefers those files to
// the embedded ones. Nothing is read from outside the binary and that
// directory.
//
// # What a CVX status means for a dose
//
// A dose is either administered (RXA-9 = 00: given by the reporting site) or
// historical (RXA-9 = 01..08: copied from another record). CDC's CVX status
// says whether a code may be used for a vaccine given today; a historical
// record describes the past, when the code may well have been current.
//
//	status        administered dose               historical dose
//	Active        accepted                        accepted
//	Inactive      accepted with a warning         accepted
//	Non-US        error (not licensed in the US)  accepted (given abroad)
//	Never Active  error                           error
//	(unknown)     error                           error
//
// Inactive is a warning rather than an error for administered doses because
// CDC's own product table still lists Active products under Inactive codes
// (SPIKEVAX 207, COMIRNATY 208/217), and a late entry of a dose given while
// its code was current is legitimate: refusing it would lose a real dose.
// The warning travels with the record so the site can check its mapping.
// An "unspecified formulation" code on an administered dose is a warning too
// (CDC: not for newly administered doses; the site knows the product).
//
// The manufacturer: an administered dose must name a known MVX, and the
// CVX/MVX pair must be a listed product, in any status (an Inactive product,
// or an Active product of an Inactive manufacturer such as Bexsero/NOV, is a
// warning). A historical dose may omit the MVX or give UNK/OTH; when it gives
// a real MVX, the pair must be a listed product, since CAIR2 checks the pair
// on every dose it stores.
package codes
