//go:build !windows

package daemon

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Run runs serve until SIGINT or SIGTERM (systemd's and launchd's stop)
// cancels its context, and returns what serve returns. name is the
// service's; it matters on Windows only.
func Run(name string, serve func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx)
}
