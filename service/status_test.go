package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/alert"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/service"
	"github.com/izdrop/izdrop/status"
)

// receiver is a webhook that keeps the alerts it gets.
type receiver struct {
	mu     sync.Mutex
	alerts []alert.Alert
	raw    []string
	srv    *httptest.Server
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var a alert.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			t.Errorf("alert is not JSON: %s", b)
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, a)
		r.raw = append(r.raw, string(b))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) kinds() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, a := range r.alerts {
		out[a.Kind]++
	}
	return out
}

// A real run fills the journal with known outcomes; the status figures,
// /metrics and the alerts say exactly that.
func TestStatusMetricsAndAlertsAfterARealRun(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, "", sandbox.Faults{})
	f.cfg.Alerts.Webhook = rcv.srv.URL
	f.cfg.Status.Listen = "127.0.0.1:0"
	f.drop(t, "visit.csv", example(t, "visit-administered.csv"))     // 4 accepted
	f.drop(t, "mixed.csv", example(t, "mixed-with-errors.csv"))      // failed: invalid records
	f.drop(t, "history.csv", example(t, "historical.csv"))           // 4 accepted
	f.drop(t, "binary.csv", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00")) // failed: unreadable
	s := f.service(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	defer func() { cancel(); <-served }()
	waitFor(t, "every file filed", 20*time.Second, func() bool {
		for _, n := range []string{"visit.csv", "mixed.csv", "history.csv", "binary.csv"} {
			if _, ok := f.archived(n); !ok {
				return false
			}
		}
		return true
	})
	// The truth, from the sidecars.
	want := map[string]int{}
	for _, n := range []string{"visit.csv", "mixed.csv", "history.csv", "binary.csv"} {
		p, _ := f.archived(n)
		for k, v := range readSidecar(t, p).Counts {
			want[k] += v
		}
	}
	j, err := journal.Open(filepath.Join(f.cfg.Service.DataDir, "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	waitFor(t, "a heartbeat and the endpoint's state", 10*time.Second, func() bool {
		rep, err := status.Build(context.Background(), f.cfg, j, status.Options{})
		return err == nil && len(rep.Running) == 1 && len(rep.Endpoints) == 1 && rep.Endpoints[0].State == "ok"
	})
	rep, err := status.Build(context.Background(), f.cfg, j, status.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := rep.Inboxes[0]
	if in.Done != 2 || in.Failed != 2 || in.InWork != 0 || in.Waiting != 0 || len(in.Files) != 4 {
		t.Errorf("files: %+v", in)
	}
	for k, n := range want {
		if in.Records[k] != n {
			t.Errorf("records %s = %d, the sidecars say %d (status %v)", k, in.Records[k], n, in.Records)
		}
	}
	if len(in.TopErrors) == 0 || in.TopErrors[0].Count < 1 || in.TopErrors[0].Source != "izdrop" {
		t.Errorf("top errors: %+v", in.TopErrors)
	}
	var text strings.Builder
	status.WriteText(&text, rep)
	if !strings.Contains(text.String(), "2 done, 2 failed") || strings.Contains(text.String(), "Kowalski") {
		t.Errorf("status text:\n%s", text.String())
	}
	fr, ok, err := status.ForFile(context.Background(), j, "mixed.csv")
	mixed, _ := f.archived("mixed.csv")
	if err != nil || !ok || fr.Rejects == "" || len(fr.Records) != len(readSidecar(t, mixed).Records) || fr.File.Result != "failed" {
		t.Errorf("file report: %+v %v %v", fr, ok, err)
	}

	// /metrics says the same.
	base := s.StatusURL()
	metrics := get(t, base+"/metrics")
	for _, w := range []string{`izdrop_files_total{inbox="clinic",result="done"} 2`, `izdrop_files_total{inbox="clinic",result="failed"} 2`,
		`izdrop_breaker_state{endpoint="reg"} 0`, `izdrop_alerts_total{kind="file_failed"} 2`} {
		if !strings.Contains(metrics, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	for k, n := range want {
		if w := `izdrop_records_total{inbox="clinic",outcome="` + k + `"} ` + strconv.Itoa(n); !strings.Contains(metrics, w) {
			t.Errorf("/metrics lacks %q", w)
		}
	}
	if m := regexp.MustCompile(`izdrop_submit_seconds_count\{endpoint="reg"\} (\d+)`).FindStringSubmatch(metrics); m == nil || m[1] == "0" {
		t.Error("no submit latencies in /metrics")
	}
	if got := get(t, base+"/readyz"); !strings.Contains(got, "ready") {
		t.Errorf("/readyz: %s", got)
	}
	// Two failed files: two alerts, with ids and counts, no patient data.
	waitFor(t, "the alerts", 5*time.Second, func() bool { return rcv.kinds()[alert.FileFailed] == 2 })
	rcv.mu.Lock()
	for _, raw := range rcv.raw {
		if strings.Contains(raw, "Kowalski") || strings.Contains(raw, "1990-06-15") || !strings.Contains(raw, `"claim":"`) {
			t.Errorf("alert: %s", raw)
		}
	}
	rcv.mu.Unlock()

	// The page in a real browser: it loads without JavaScript and shows
	// the same counts. (The Windows build's run under Wine has no browser:
	// the page is the same on every platform, and tested on Linux.)
	if runtime.GOOS == "windows" {
		return
	}
	dom := chromium(t, base+"/", filepath.Join(os.Getenv("IZDROP_SCREENSHOT_DIR"), "status.png"))
	for _, w := range []string{`data-figure="done">2<`, `data-figure="failed" class="bad">2<`, `data-records="accepted">` + strconv.Itoa(want["accepted"]) + `<`,
		`data-endpoint-state="reg">ok<`, "mixed.csv"} {
		if !strings.Contains(dom, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
	if strings.Contains(dom, "Kowalski") {
		t.Error("the page names a patient")
	}
	claim := fr.File.Claim
	fileDOM := chromium(t, base+"/file/"+claim, "")
	if !strings.Contains(fileDOM, "rejects.csv") || !strings.Contains(fileDOM, "invalid") {
		t.Errorf("the file page:\n%.3000s", fileDOM)
	}
	if csv := get(t, base+"/file/"+claim+"/rejects.csv"); !strings.Contains(csv, "izdrop_errors") {
		t.Errorf("rejects download: %.300s", csv)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// chromium renders url in headless Chromium and returns its DOM; with
// shot set (a path in an existing folder), it also saves a screenshot.
// Under CI=true a missing Chromium fails the test.
func chromium(t *testing.T, url, shot string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (apt-get install chromium); the status page is tested in it")
		}
		t.Skip("chromium is not installed")
	}
	run := func(extra ...string) []byte {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}, extra...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return out
	}
	dom := string(run("--dump-dom"))
	if shot != "" && filepath.Dir(shot) != "." {
		run("--screenshot="+shot, "--window-size=1100,1400", "--hide-scrollbars")
	}
	return dom
}

// Refused credentials and an open breaker each raise one alert, and a
// file left waiting past the threshold raises one more.
func TestAlertsForTheEndpointAndWaitingFiles(t *testing.T) {
	rcv := newReceiver(t)
	f := newFixture(t, "", sandbox.Faults{Rate503: 1})
	f.cfg.Alerts.Webhook = rcv.srv.URL
	f.cfg.Alerts.WaitingLongerThan.Duration = time.Millisecond
	f.cfg.Status.Listen = "off"
	f.drop(t, "a.csv", patients(t, 6))
	s, err := service.New(f.cfg, service.Options{Log: zerolog.Nop(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.RunOnce(context.Background())
	s.Close()
	k := rcv.kinds()
	if k[alert.BreakerOpen] != 1 || k[alert.FileWaiting] != 1 {
		t.Errorf("alerts after an outage: %v", k)
	}
	f.sb.SetFaults(sandbox.Faults{})
	f.sb.SetCredentials("sandbox", "changed", "sandbox")
	f.cfg.Alerts.WaitingLongerThan.Duration = time.Hour
	f.drop(t, "b.csv", example(t, "historical.csv"))
	// The cool-down of the breaker is over by the next run: it is a new
	// process, with a closed breaker.
	runOnce(t, f)
	if k := rcv.kinds(); k[alert.CredentialsRefused] != 1 {
		t.Errorf("alerts after a refusal: %v", k)
	}
}
