package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/izdrop/izdrop/config"
)

// logOutput is where the logs go: the [service] log_file, rotated by size,
// or stderr. The file is opened now, so that one that cannot be written
// stops the start rather than the first log line.
func logOutput(c *config.Config, stderr io.Writer) (io.Writer, func(), error) {
	s := c.Service
	if s.LogFile == "" {
		return stderr, func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(s.LogFile), 0o700); err != nil {
		return nil, nil, fmt.Errorf("log_file: %w", err)
	}
	l := &lumberjack.Logger{Filename: s.LogFile, MaxSize: s.LogMaxSizeMB, MaxBackups: s.LogBackups}
	if _, err := l.Write(nil); err != nil {
		return nil, nil, fmt.Errorf("log_file: %w", err)
	}
	fmt.Fprintln(stderr, "izdrop: logging to", s.LogFile)
	return l, func() { l.Close() }, nil
}
