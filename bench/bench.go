// Package bench measures izdrop end to end on the machine it runs on
// (`izdrop bench`): it generates a realistic export, starts the sandbox
// registry in-process with a given latency, fault rate and delay per new
// connection, and runs the real pipeline - `izdrop run --once`, as a child
// process, so that its memory and CPU are its own - on a temporary inbox,
// once per concurrency. It reports records a second (transform only, and
// end to end), messages a second against the ideal concurrency/latency,
// the connections opened, the submissions' latency, the pipeline's peak
// memory and CPU, the journal's bytes per record, and the patients whose
// messages reached the registry out of file order (there must be none).
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/sandbox"
	"github.com/izdrop/izdrop/transform"
)

// Options say what to measure.
type Options struct {
	Rows        int     // records in the export (default 2000)
	Invalid     float64 // share of rows a check refuses (default 0.02)
	Concurrency []int   // messages in flight, one run each (default 1, 4, 8, 16)
	// Latency (plus a random share of Jitter) is how long the registry
	// takes to answer; FaultRate the share of calls it answers HTTP 503
	// (izdrop retries them); ConnectDelay what a new connection costs (a
	// TLS handshake over a WAN).
	Latency, Jitter, ConnectDelay time.Duration
	FaultRate                     float64
	Seed                          uint64 // of the export (default 1)
	// Dir is where the export and each run's inbox, archive and journal
	// go; empty: a temporary folder, removed at the end.
	Dir string
	// Command returns the command that runs the pipeline once on config:
	// `izdrop run --once -config FILE`.
	Command func(config string) *exec.Cmd
	// Progress, when set, is told what is going on.
	Progress io.Writer
	// Plain adds, per concurrency, the baseline: a plain keep-alive HTTP
	// client posting the same messages (exports of up to 100,000 rows).
	Plain bool
}

func (o *Options) defaults() {
	if o.Rows <= 0 {
		o.Rows = 2000
	}
	if o.Invalid == 0 {
		o.Invalid = 0.02
	}
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{1, 4, 8, 16}
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Report is what a bench measured.
type Report struct {
	Rows         int           `json:"rows"`
	Export       ExportStats   `json:"export"`
	Latency      time.Duration `json:"latency_ns"`
	Jitter       time.Duration `json:"jitter_ns"`
	ConnectDelay time.Duration `json:"connect_delay_ns"`
	FaultRate    float64       `json:"fault_rate"`
	// TransformRate is records a second read, checked and encoded, nothing
	// sent (this process, one goroutine).
	TransformRate float64 `json:"transform_records_per_s"`
	Runs          []Run   `json:"runs"`
}

// Run is one concurrency's measurement.
type Run struct {
	Concurrency int `json:"concurrency"`
	// Wall is from the pipeline's start to its exit, reading and archiving
	// included; Rate is records a second over it.
	Wall time.Duration `json:"wall_ns"`
	Rate float64       `json:"records_per_s"`
	// Messages the registry processed, and a second while sending (from
	// the first submission's arrival to the last answer); IdealPercent
	// compares that with concurrency/latency (0 with no latency).
	Messages     int64   `json:"messages"`
	MessageRate  float64 `json:"messages_per_s"`
	IdealPercent float64 `json:"ideal_percent,omitempty"`
	// PlainRate is the baseline's messages a second (Options.Plain), and
	// VsPlain MessageRate over it.
	PlainRate   float64 `json:"plain_messages_per_s,omitempty"`
	VsPlain     float64 `json:"vs_plain,omitempty"`
	Calls       int64   `json:"calls"` // submissions, retries included
	Connections int64   `json:"new_connections"`
	// P50 and P99 are the submissions' latency as the registry saw it, a
	// new connection's delay included.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	// PeakRSS (bytes; 0 where the system does not say) and CPU are the
	// pipeline process's own. PeakRSS counts the executable's pages mapped
	// from its file (shared, and dropped under memory pressure: about 20 MiB
	// of izdrop's); PeakAnon, sampled on Linux only, is the process's own
	// memory without them.
	PeakRSS         int64          `json:"peak_rss_bytes"`
	PeakAnon        int64          `json:"peak_anon_bytes,omitempty"`
	CPU             time.Duration  `json:"cpu_ns"`
	JournalBytes    int64          `json:"journal_bytes"`
	JournalPerRec   float64        `json:"journal_bytes_per_record"`
	Outcomes        map[string]int `json:"outcomes"`
	OrderInversions int            `json:"order_inversions"`
	ExitStatus      int            `json:"exit_status"`
}

// memPeak is a process's largest memory seen, in bytes (0: not known).
type memPeak struct{ rss, anon int64 }

// password is the sandbox's, handed to the pipeline in its environment.
const password = "bench-secret"

// Measure generates the export, measures transform alone, then runs the
// pipeline once per concurrency.
func Measure(ctx context.Context, opt Options) (*Report, error) {
	opt.defaults()
	if opt.Command == nil {
		return nil, errors.New("bench: no command to run the pipeline with")
	}
	dir := opt.Dir
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	} else {
		d, err := os.MkdirTemp("", "izdrop-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := &Report{Rows: opt.Rows, Latency: opt.Latency, Jitter: opt.Jitter, ConnectDelay: opt.ConnectDelay, FaultRate: opt.FaultRate}
	export := filepath.Join(dir, "export.csv")
	f, err := os.OpenFile(export, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	rep.Export, err = Export(f, opt.Rows, opt.Invalid, opt.Seed, time.Now())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bench: writing the export: %w", err)
	}
	fmt.Fprintf(opt.Progress, "export: %d records of %d patients (%d administered, %d historical, %d refusals, %d invalid; %d at a second visit)\n",
		rep.Export.Records, rep.Export.Patients, rep.Export.Administered, rep.Export.Historical, rep.Export.Refusals, rep.Export.Invalid, rep.Export.Later)
	var msgs [][]byte // the messages, for the plain client
	keep := opt.Plain && opt.Rows <= maxPlainRows
	if opt.Plain && !keep {
		fmt.Fprintf(opt.Progress, "no plain-client baseline: over %d rows\n", maxPlainRows)
	}
	if rep.TransformRate, msgs, err = transformRate(export, keep); err != nil {
		return nil, err
	}
	fmt.Fprintf(opt.Progress, "transform only: %.0f records/s\n", rep.TransformRate)
	for _, conc := range opt.Concurrency {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		r, err := run(ctx, opt, dir, export, conc)
		if err != nil {
			return rep, fmt.Errorf("bench: concurrency %d: %w", conc, err)
		}
		fmt.Fprintf(opt.Progress, "concurrency %d: %.0f records/s end to end, %.0f messages/s\n", conc, r.Rate, r.MessageRate)
		if msgs != nil {
			if r.PlainRate, err = plainRate(ctx, opt, msgs, conc); err != nil {
				return rep, fmt.Errorf("bench: concurrency %d: %w", conc, err)
			}
			if r.PlainRate > 0 {
				r.VsPlain = r.MessageRate / r.PlainRate
			}
			fmt.Fprintf(opt.Progress, "concurrency %d: the plain client: %.0f messages/s\n", conc, r.PlainRate)
		}
		rep.Runs = append(rep.Runs, *r)
	}
	return rep, nil
}

// configDoc is the pipeline's configuration for one run.
func configDoc(dir, url string, conc int) string {
	return fmt.Sprintf(`# izdrop bench: one run
[service]
data_dir = %q
log_format = "json"
log_level = "warn"
shutdown_grace = "30s"

[sites.bench]
id = "DEMO01"
region = "CAIRBA"
county = "San Francisco"

[endpoints.bench]
environment = "staging"
url = %q
username = "sandbox"
facility_id = "sandbox"
password_env = "IZDROP_BENCH_PASSWORD"
concurrency = %d
retry_budget = "10m"

[inboxes.bench]
path = %q
archive = %q
create = true
site = "bench"
endpoint = "bench"
stable_for = "1s"
`, filepath.Join(dir, "var"), url, conc, filepath.Join(dir, "inbox"), filepath.Join(dir, "archive"))
}

// transformRate reads, checks and encodes the export as the pipeline's
// reader does, sending nothing. With keep, it returns the messages too.
func transformRate(export string, keep bool) (float64, [][]byte, error) {
	c, err := config.Parse([]byte(configDoc(filepath.Dir(export), "http://127.0.0.1:1/x", 1)), filepath.Join(filepath.Dir(export), "config.toml"))
	if err != nil {
		return 0, nil, err
	}
	opt, err := c.TransformOptions("bench", codes.Embedded())
	if err != nil {
		return 0, nil, err
	}
	opt.Name = filepath.Base(export)
	start := time.Now()
	r, err := transform.Open(export, opt)
	if err != nil {
		return 0, nil, err
	}
	defer r.Close()
	enc := hl7.NewEncoder(hl7.DefaultDelimiters)
	n := 0
	var msgs [][]byte
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		n += len(m.Records)
		if send := m.Sendable(); len(send) > 0 {
			b := m.Encode(enc, transform.Header{ControlID: "BENCH" + strconv.Itoa(m.Seq), Time: start}, send)
			if keep {
				msgs = append(msgs, append([]byte(nil), b...))
			}
		}
		for _, rec := range m.Records {
			if rec.Valid() {
				rec.ContentHash()
			}
		}
	}
	return float64(n) / time.Since(start).Seconds(), msgs, nil
}

// span is when a registry processed its first and its last message.
type span struct{ first, last time.Time }

// note counts a message processed now.
func (s *span) note() {
	now := time.Now()
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
}

// rate is n messages a second over the span plus one latency (the first
// message arrived a latency before it was processed); 0 with no span.
func (s *span) rate(n int64, latency time.Duration) float64 {
	window := s.last.Sub(s.first) + latency
	if s.first.IsZero() || window <= 0 {
		return 0
	}
	return float64(n) / window.Seconds()
}

// startSandbox starts a registry double with the bench's faults, telling
// onReceived of every message it processes.
func startSandbox(opt Options, onReceived func(sandbox.Received)) (*sandbox.Server, error) {
	return sandbox.Start(sandbox.Options{Password: password, Seed: opt.Seed,
		Faults:     sandbox.Faults{Latency: opt.Latency, Jitter: opt.Jitter, Rate503: opt.FaultRate, ConnectDelay: opt.ConnectDelay},
		OnReceived: onReceived})
}

// run runs the pipeline once, against a sandbox of its own.
func run(ctx context.Context, opt Options, dir, export string, conc int) (*Run, error) {
	var mu sync.Mutex
	var sent span
	lastDose := map[string]int{} // patient -> the highest dose number received
	inversions := 0
	sb, err := startSandbox(opt, func(r sandbox.Received) {
		mu.Lock()
		defer mu.Unlock()
		sent.note()
		if r.Resend {
			return
		}
		for _, d := range r.Doses {
			p, n, ok := doseOf(d.ID)
			if !ok {
				continue
			}
			if n < lastDose[p] {
				inversions++
			}
			lastDose[p] = max(lastDose[p], n)
		}
	})
	if err != nil {
		return nil, err
	}
	defer sb.Close()
	runDir := filepath.Join(dir, fmt.Sprintf("run-%d", conc))
	os.RemoveAll(runDir)
	inbox := filepath.Join(runDir, "inbox")
	if err := os.MkdirAll(inbox, 0o700); err != nil {
		return nil, err
	}
	in := filepath.Join(inbox, "export.csv")
	if err := os.Link(export, in); err != nil {
		if err := copyFile(export, in); err != nil {
			return nil, err
		}
	}
	// Written long ago: taken at once, not after the stability window.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(in, old, old)
	cfg := filepath.Join(runDir, "config.toml")
	if err := os.WriteFile(cfg, []byte(configDoc(runDir, sb.URL2011(), conc)), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(runDir, "izdrop.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := opt.Command(cfg)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "IZDROP_BENCH_PASSWORD="+password)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	exited := make(chan struct{})
	mem := watchMem(cmd.Process.Pid, exited)
	err = cmd.Wait()
	close(exited)
	stop()
	r := &Run{Concurrency: conc, Wall: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.ExitStatus = exit.ExitCode()
	case err != nil:
		return nil, err
	}
	// 0: every record accepted; 1: some invalid or rejected, as the export
	// has them. Anything else is a failure of the pipeline.
	if r.ExitStatus > 1 {
		return nil, fmt.Errorf("izdrop run --once exited with status %d; its log: %s", r.ExitStatus, tail(filepath.Join(runDir, "izdrop.log")))
	}
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	peak := <-mem
	r.PeakRSS, r.PeakAnon = peak.rss, peak.anon
	if r.PeakRSS == 0 {
		r.PeakRSS = peakRSS(cmd.ProcessState)
	}
	st := sb.Stats()
	r.Messages, r.Calls, r.Connections = st.Messages-st.Resends, st.Submits, st.Connections
	r.P50, r.P99 = sb.SubmitLatency(0.5), sb.SubmitLatency(0.99)
	mu.Lock()
	r.MessageRate = sent.rate(r.Messages, opt.Latency)
	r.OrderInversions = inversions
	mu.Unlock()
	if opt.Latency > 0 {
		r.IdealPercent = 100 * r.MessageRate / (float64(conc) / opt.Latency.Seconds())
	}
	r.Outcomes, err = outcomes(filepath.Join(runDir, "archive"))
	if err != nil {
		return nil, err
	}
	records := 0
	for _, n := range r.Outcomes {
		records += n
	}
	if records != opt.Rows {
		return nil, fmt.Errorf("%d records have an outcome, of %d: %v", records, opt.Rows, r.Outcomes)
	}
	r.Rate = float64(records) / r.Wall.Seconds()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(filepath.Join(runDir, "var", "journal.db"+suffix)); err == nil {
			r.JournalBytes += fi.Size()
		}
	}
	r.JournalPerRec = float64(r.JournalBytes) / float64(records)
	return r, nil
}

// doseOf splits an export's vaccination id, BV<patient>-<n>.
func doseOf(id string) (patient string, n int, ok bool) {
	p, num, found := strings.Cut(id, "-")
	if !found || !strings.HasPrefix(p, "BV") {
		return "", 0, false
	}
	n, err := strconv.Atoi(num)
	return p, n, err == nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// outcomes tallies the records' outcomes in the archive's sidecars.
func outcomes(archive string) (map[string]int, error) {
	files, err := filepath.Glob(filepath.Join(archive, "*", "*", "*.ack.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var head struct {
			Counts map[string]int `json:"counts"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for k, n := range head.Counts {
			out[k] += n
		}
	}
	return out, nil
}

// tail is the end of a log, for an error.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// mib writes a size in bytes for the table: "-" when not known.
func mib(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// WriteTable writes the report as a table, one row per concurrency.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "izdrop bench: %d records (%d administered, %d historical, %d refusals, %d invalid) of %d patients\n",
		r.Export.Records, r.Export.Administered, r.Export.Historical, r.Export.Refusals, r.Export.Invalid, r.Export.Patients)
	fmt.Fprintf(w, "registry: latency %v", r.Latency)
	if r.Jitter > 0 {
		fmt.Fprintf(w, " + up to %v", r.Jitter)
	}
	fmt.Fprintf(w, ", HTTP 503 on %.1f%% of calls, %v per new connection\n", 100*r.FaultRate, r.ConnectDelay)
	fmt.Fprintf(w, "transform only: %.0f records/s\n\n", r.TransformRate)
	fmt.Fprintf(w, "%11s %11s %10s %8s %9s %9s %10s %10s %9s %10s %7s %11s %10s\n",
		"concurrency", "records/s", "msgs/s", "% ideal", "vs plain", "new conns", "p50", "p99", "peak RSS", "peak anon", "CPU s", "journal B/r", "inversions")
	for _, run := range r.Runs {
		ideal := "-"
		if run.IdealPercent > 0 {
			ideal = fmt.Sprintf("%.1f", run.IdealPercent)
		}
		vs := "-"
		if run.VsPlain > 0 {
			vs = fmt.Sprintf("%.3fx", run.VsPlain)
		}
		rss, anon := mib(run.PeakRSS), mib(run.PeakAnon)
		fmt.Fprintf(w, "%11d %11.0f %10.0f %8s %9s %9d %10s %10s %9s %10s %7.2f %11.0f %10d\n",
			run.Concurrency, run.Rate, run.MessageRate, ideal, vs, run.Connections, round(run.P50), round(run.P99), rss, anon,
			run.CPU.Seconds(), run.JournalPerRec, run.OrderInversions)
	}
}

func round(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	digits := max(0, 2-int(math.Floor(math.Log10(float64(d)/float64(time.Millisecond)))))
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', min(digits, 3), 64) + " ms"
}
