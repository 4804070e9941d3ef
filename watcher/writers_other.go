//go:build !linux

package watcher

// BeingWritten cannot tell, outside Linux, whether a process holds a file
// open for writing (known is false): the stability window decides. On
// Windows a file its writer has open cannot be renamed, so it is not
// claimed anyway; on macOS a writer that pauses longer than stable_for
// between writes can have its file taken early: have it write under a
// temporary name, or use a marker.
func BeingWritten(path string) (writing, known bool) { return false, false }
