//go:build unix && !linux && !darwin

package archive

// renameNoReplace: these systems have no no-replace rename Go can call, so
// Move links then unlinks, which never replaces either.
func renameNoReplace(src, dst string) error { return errNoAtomic }
