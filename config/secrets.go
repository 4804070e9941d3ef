package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/robfig/cron/v3"
)

// CronParser is the schedule syntax: five fields, descriptors such as
// @daily, and a CRON_TZ= (or TZ=) prefix naming the zone.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func checkCron(spec string) error {
	_, err := CronParser.Parse(spec)
	return err
}

// ErrNoSecret is wrapped when a secret's variable or file is unset or empty.
var ErrNoSecret = errors.New("secret not set")

// Secret reads a secret from the environment variable env or, if env is
// empty, from file (surrounding white space trimmed). The error names the
// variable or file, never a value.
func Secret(env, file string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%w: environment variable %s is empty", ErrNoSecret, env)
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("reading secret file: %w", err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%w: %s is empty", ErrNoSecret, file)
		}
		return v, nil
	}
	return "", fmt.Errorf("%w: no _env or _file given", ErrNoSecret)
}

// EndpointPassword is the password of endpoint name. The embedded sandbox
// falls back to "sandbox" when its variable is unset: it guards nothing.
func (c *Config) EndpointPassword(name string) (string, error) {
	e, ok := c.Endpoints[name]
	if !ok {
		return "", fmt.Errorf("endpoint %q is not defined", name)
	}
	v, err := Secret(e.PasswordEnv, e.PasswordFile)
	if err != nil && name == SandboxEndpoint && e.URL == "" && errors.Is(err, ErrNoSecret) {
		return "sandbox", nil
	}
	if err != nil {
		return "", fmt.Errorf("endpoint %s password: %w", name, err)
	}
	return v, nil
}
