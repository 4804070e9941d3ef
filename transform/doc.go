// Package transform turns an EHR export file into the VXU^V04 messages
// CAIR2 accepts, and refuses, before anything is sent, every record CAIR2
// would reject for its content. In the flow it comes after watcher (which
// hands it a claimed file) and before outbound (which sends what it yields).
//
// Reading: Open checks the file as a whole first - encoding (UTF-8, or
// Windows-1252 when the profile says so), a header with the required
// columns - and fails with a *FileError before anything is yielded. Then
// Reader.Next streams messages: a patient's consecutive rows for one site
// become one message (one ORC/RXA/RXR/OBX group per row), split at 20 doses
// and whenever a vaccination id repeats, so an update or delete never
// travels with the dose it changes. Only one group is held at a time: a file
// of any length is read in constant memory (TestReadingIsFlatInMemory).
//
// Layouts: the default layout is docs/export-csv.md; a Profile maps
// another export's header names and values onto it. The CSV reader is
// transform's own (csv.go): it behaves exactly as encoding/csv (the
// FuzzCSVReader target compares the two on every input) but returns a
// record as one string plus offsets, which keeps a record at a few hundred
// bytes and makes transform roughly twice as fast.
//
// Other formats: a Profile's Format selects HL7 VXU files and batches
// (hl7in.go) or FHIR R4 bulk exports (fhirin.go) instead of CSV. Their
// records are mapped onto the default layout's columns first, so the same
// rules check them and the same builder encodes them; problems then carry
// Where (the message and field, or the FHIR element) instead of a column,
// and RawRows gives a record as a row of the default layout, for the
// rejects file. See formats.go.
//
// Validation gives every problem as a Problem naming the file, line, column,
// VXU field and rule; errors keep the record from being sent, warnings travel
// with it. Rules cover what AIRA's message-quality evaluator rates ERROR
// (dates missing, invalid, in the future or out of order; names, id and sex;
// unknown CVX; CVX/MVX pairs; lot, manufacturer and VFC eligibility on
// administered doses; refusals without a reason; action codes; updates and
// deletes without a vaccination id) plus CAIR2's (letters-only names under
// the profile's policy, PID-3.5, MSH-11 P, the San Joaquin region). An
// invalid optional value (a route, a phone number) is a warning and is left
// out of the message rather than sent wrong. Problem texts never repeat a
// patient's name, birth date, address or phone number.
//
// Encoding follows docs/cair2.md segment by segment; MSH-10 and
// MSH-7 come from the caller (Header), so a resend is the same message byte
// for byte.
package transform
