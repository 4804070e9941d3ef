package status

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
)

func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	doc := `[service]
data_dir = "var"
[sites.s]
id = "S1"
region = "CAIRLO"
[inboxes.a]
path = "in"
create = true
site = "s"
endpoint = "sandbox"
` + extra
	c, err := config.Parse([]byte(doc), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(codes.Embedded()); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestThePageAsksForItsPassword(t *testing.T) {
	c := testConfig(t, "")
	j, err := journal.Open(filepath.Join(c.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	srv := httptest.NewServer((&Server{Config: c, Journal: j, Username: "ops", Password: "s3cret"}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("without a password: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	req.SetBasicAuth("ops", "s3cret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("with it: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAnotherHostNameIsRefusedWithoutAuth(t *testing.T) {
	c := testConfig(t, "")
	j, err := journal.Open(filepath.Join(c.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	srv := httptest.NewServer((&Server{Config: c, Journal: j}).Handler())
	defer srv.Close()
	for host, want := range map[string]int{"": http.StatusOK, "evil.example:8932": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestAPageReachableFromOtherMachinesNeedsAPassword(t *testing.T) {
	c, _ := config.Parse([]byte(`[status]
listen = "0.0.0.0:8932"
[sites.s]
id = "S1"
region = "CAIRLO"
[inboxes.a]
path = "in"
site = "s"
endpoint = "sandbox"
`), "c.toml")
	err := c.Validate(codes.Embedded())
	if err == nil || !strings.Contains(err.Error(), "c.toml:2: status.listen") || !strings.Contains(err.Error(), "reachable from other machines") {
		t.Errorf("err = %v", err)
	}
}

func TestChartHasEveryDay(t *testing.T) {
	days := make([]Day, 30)
	for i := range days {
		days[i] = Day{Date: time.Date(2026, 11, 1+i, 0, 0, 0, 0, time.UTC).Format("2006-01-02"), Accepted: i, Rejected: 30 - i}
	}
	svg := string(Chart(days))
	if strings.Count(svg, "data-day=") != 30 || !strings.Contains(svg, `data-accepted="29"`) || !strings.Contains(svg, "max 30 records/day") {
		t.Errorf("chart: %.500s", svg)
	}
}
