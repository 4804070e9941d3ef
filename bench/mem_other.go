//go:build !linux

package bench

// watchMem is Linux's only (its /proc says it): elsewhere, nothing.
func watchMem(pid int, stop <-chan struct{}) <-chan memPeak {
	out := make(chan memPeak, 1)
	go func() {
		<-stop
		out <- memPeak{}
	}()
	return out
}
