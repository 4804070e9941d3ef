// Package winetest lets Go's Windows test binaries run under Wine 8, the
// Wine of Debian bookworm, on which CI runs the Windows build's tests of
// the packages with platform code (.ci/wine/run). Imported only by test
// files built with the tag "wine"; it changes nothing in izdrop.
//
// Wine 8 lacks FileDispositionInformationEx, with which Go's os.RemoveAll
// deletes a file on Windows 10 and later, and answers with an error Go
// does not fall back on; t.TempDir's cleanup would fail every test. The
// standard library keeps the older way, for Windows versions and file
// systems without it, behind a switch for its own tests; this package sets
// that switch, which needs -ldflags=-checklinkname=0 to link.
package winetest
