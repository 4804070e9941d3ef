// Package hl7 reads and writes HL7 v2 messages in ER7 ("pipe and hat")
// encoding: the wire form of the VXU^V04 messages izdrop sends and of the
// ACKs registries answer with. It sits under every other package: transform
// encodes with it, outbound and the sandbox parse with it.
//
// What it covers: segments, fields, repetitions, components and
// subcomponents; the escape sequences \F\ \S\ \T\ \R\ \E\ on both sides and
// \Xhh..\ on read; \r as the segment terminator on write and \r, \n or \r\n
// on read; delimiters taken from MSH-1/MSH-2 of the message read. Typed
// helpers cover the data types a VXU uses (TS/DTM, XPN, XAD, XTN, CE/CWE,
// CX, XCN, HD, EI).
//
// Why it is written here rather than imported: the Go HL7 v2 libraries found
// (fknsrs/hl7 and its forks, mylanconnolly/hl7, synkwise/go-hl7-parser and
// newer single-author modules) are small personal projects, most untouched
// for years, several read-only or without escaping on write, none fuzzed and
// none widely used. What izdrop needs is a few hundred lines: a parser that
// never panics on hostile input (see FuzzParse) and an encoder that escapes
// every value and allocates little, because transform encodes hundreds of
// thousands of messages a second.
//
// Numbering follows HL7: fields, repetitions, components and subcomponents
// are 1-based, and for MSH (and FHS/BHS) field 1 is the field separator and
// field 2 the encoding characters.
package hl7
