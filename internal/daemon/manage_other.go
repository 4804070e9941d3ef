//go:build !linux && !windows && !darwin

package daemon

// Install and the rest need a service manager izdrop knows: run
// `izdrop serve` from the system's own (rc.d, ...) there.
func Install(s Spec) error          { return ErrUnsupported }
func Uninstall(s Spec) error        { return ErrUnsupported }
func Start(s Spec) error            { return ErrUnsupported }
func Stop(s Spec) error             { return ErrUnsupported }
func Status(s Spec) (string, error) { return "", ErrUnsupported }
