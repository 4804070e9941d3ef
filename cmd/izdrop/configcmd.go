package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/service"
)

func init() {
	commands["config"] = command{"check the configuration and print the effective settings", configCmd}
}

func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		return fail(stderr, usageError{"usage: izdrop config check [-config FILE] [-connect] [-q]"})
	}
	fs := newFlags("config check", stderr)
	path := fs.String("config", "config.toml", "configuration file")
	connect := fs.Bool("connect", false, "also send each endpoint in use a connectivity test")
	quiet := fs.Bool("q", false, "print only the findings, not the effective settings")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	c, err := loadConfig(*path)
	if err != nil {
		return fail(stderr, err)
	}
	if !*quiet {
		c.Describe(stdout)
		fmt.Fprintln(stdout)
	}
	findings := service.Preflight(context.Background(), c, *connect)
	errs, warns := 0, 0
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
		switch f.Severity {
		case config.SevError:
			errs++
		case config.SevWarning:
			warns++
		}
	}
	if errs > 0 {
		fmt.Fprintf(stderr, "izdrop: %s: %d problem(s) would stop izdrop at run time, %d warning(s)\n", *path, errs, warns)
		return exitUsage
	}
	fmt.Fprintf(stderr, "izdrop: %s is valid (%d warning(s))\n", *path, warns)
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
