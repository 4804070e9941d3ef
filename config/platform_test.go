package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/izdrop/izdrop/codes"
)

func TestLogFileAndInboxFolderSettings(t *testing.T) {
	c, err := Parse([]byte("[service]\nlog_file = \"logs/izdrop.log\"\n"+minimal), filepath.Join("cfg", "c.toml"))
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join("cfg", "logs", "izdrop.log"))
	if c.Service.LogFile != abs || c.Service.LogMaxSizeMB != 50 || c.Service.LogBackups != 10 {
		t.Errorf("log settings %q %d %d: want the file beside the config, 50 MB, 10 backups", c.Service.LogFile, c.Service.LogMaxSizeMB, c.Service.LogBackups)
	}
	in := c.Inboxes["a"]
	if m, err := in.FolderMode(); in.InboxMode != "0700" || m != 0o700 || err != nil {
		t.Errorf("default inbox mode %q = %v %v, want 0700", in.InboxMode, m, err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}

	for mode, want := range map[string]os.FileMode{"0770": 0o770, "770": 0o770, "1770": 0o770 | os.ModeSticky, "2750": 0o750 | os.ModeSetgid} {
		in.InboxMode = mode
		if m, err := in.FolderMode(); m != want || err != nil {
			t.Errorf("inbox_mode %q = %v %v, want %v", mode, m, err, want)
		}
	}
	for mode, why := range map[string]string{"0775": "every account", "0777": "every account", "0570": "rwx", "rw": "octal", "10000": "octal", "4770": "setuid"} {
		in.InboxMode = mode
		if _, err := in.FolderMode(); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("inbox_mode %q: %v, want an error saying %q", mode, err, why)
		}
	}
}

func TestInboxFolderSettingsAreRefusedWhereTheyCannotApply(t *testing.T) {
	doc := "[service]\nlog_max_size_mb = -1\n" + minimal + `inbox_mode = "0775"

[inboxes.remote]
kind = "sftp"
host = "h"
user = "u"
key_file = "k"
known_hosts = "kh"
archive = "ra"
path = "/in"
site = "s"
inbox_group = "ehr"
`
	c, err := Parse([]byte(doc), "c.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate(codes.Embedded())
	if err == nil {
		t.Fatal("accepted")
	}
	wants := []string{"c.toml:2: service.log_max_size_mb", "c.toml:15: inboxes.remote.inbox_mode: inbox_mode and inbox_group are for local inboxes"}
	if runtime.GOOS == "windows" {
		wants = append(wants, "c.toml:13: inboxes.a.inbox_mode: inbox_mode and inbox_group do not apply on Windows")
	} else {
		wants = append(wants, `c.toml:13: inboxes.a.inbox_mode: inbox_mode "0775": gives every account`)
	}
	for _, want := range wants {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nwant %q", err, want)
		}
	}
}
