//go:build !linux

package pgtest

import "runtime"

func start() (*Server, string, error) {
	return nil, "the tests start PostgreSQL on Linux only, not on " + runtime.GOOS, nil
}

func (s *Server) stop() {}
