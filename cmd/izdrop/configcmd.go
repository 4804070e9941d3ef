package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
)

func init() {
	commands["config"] = command{"check the configuration and print the effective settings", configCmd}
}

func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		return fail(stderr, usageError{"usage: izdrop config check [-config FILE]"})
	}
	fs := newFlags("config check", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	c.Describe(stdout)
	fmt.Fprintf(stderr, "izdrop: %s is valid\n", *path)
	return exitOK
}

// loadConfig loads and validates a config file; its errors map to exit 2.
func loadConfig(path string) (*config.Config, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return c, nil
}

// codeSet loads the code tables: embedded, or imported ones from the data
// directory.
func codeSet(c *config.Config) (*codes.Set, error) {
	cs, err := codes.Load(codesDir(c))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errConfig, err)
	}
	return cs, nil
}

func codesDir(c *config.Config) string { return filepath.Join(c.Service.DataDir, "codes") }
