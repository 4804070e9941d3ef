package main

import (
	"strings"
	"testing"
	"time"

	"github.com/izdrop/izdrop/service"
)

func TestProgressLineAndSummaryTable(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 10, 0, time.UTC)
	p := service.Progress{Inbox: "clinic", File: "big.csv", Size: 1000, Read: 500, Records: 400, Done: 200, Started: now.Add(-10 * time.Second)}
	line := progressLine([]service.Progress{p}, now)
	// Half the bytes read, half of those records answered: a quarter done,
	// 20 records/s, 30 s to go.
	for _, want := range []string{"clinic/big.csv: 200 records done", "(25%)", "20/s", "about 30s left"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	var b strings.Builder
	writeSummary(&b, service.Summary{ByInbox: map[string]service.Summary{
		"clinic": {Done: 2, Failed: 1, Records: map[string]int{"accepted": 8, "invalid": 3}},
	}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "INBOX") || !strings.Contains(lines[1], "clinic") || len(strings.Fields(lines[1])) != 10 {
		t.Errorf("summary:\n%s", b.String())
	}
}
