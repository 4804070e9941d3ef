package status

import (
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/config"
	"github.com/izdrop/izdrop/journal"
)

//go:embed templates/page.html
var templates embed.FS

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	// inloc is replaced per server by the service's zone.
	"inloc":    func(t time.Time) time.Time { return t },
	"fmttime":  func(t time.Time, layout string) string { return t.Format(layout) },
	"outcomes": func() []string { return outcomes },
	"counts":   countLine,
	"stateClass": func(s string) string {
		switch s {
		case "ok":
			return "ok"
		case "retrying", "half-open", "unknown":
			return "warn"
		}
		return "bad"
	},
	"outcomeClass": func(o string) string {
		switch o {
		case "accepted", "accepted_with_warnings", "already_accepted":
			return "ok"
		case "pending":
			return "warn"
		}
		return "bad"
	},
	"fileClass": func(f File) string {
		switch {
		case f.Result == string(archive.Done):
			return "ok"
		case f.Result == string(archive.Failed):
			return "bad"
		}
		return "warn"
	},
}).ParseFS(templates, "templates/page.html"))

// Server is the status page: an overview, a page per file, the rejects file
// to download, /metrics, /healthz and /readyz. It is read-only and rendered
// on the server: it needs no JavaScript.
type Server struct {
	Config  *config.Config
	Journal journal.Store
	// Metrics are served at /metrics (nil: no metrics).
	Metrics prometheus.Gatherer
	// Ready says whether the service can do its work now (/readyz): nil
	// when it can, or why not.
	Ready func() error
	// Username and Password, when set, guard every page with basic auth.
	Username, Password string
	Now                func() time.Time
}

// Handler returns the page's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.overview)
	mux.HandleFunc("GET /file/{claim}", s.file)
	mux.HandleFunc("GET /file/{claim}/rejects.csv", s.rejects)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	}
	var h http.Handler = mux
	if s.Username != "" || s.Password != "" {
		h = s.auth(mux)
	}
	return s.hostCheck(secureHeaders(h))
}

// hostCheck refuses requests for a name other than the page's own: a web
// page a person visits could otherwise reach the loopback page through a
// name that resolves to 127.0.0.1 (DNS rebinding) and read what it shows.
// Without auth only loopback names are served; with auth, any.
func (s *Server) hostCheck(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		loopback := host == "localhost" || ip != nil && ip.IsLoopback()
		if !loopback && s.Username == "" && s.Password == "" {
			http.Error(w, "this page answers on its loopback address only", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(s.Username)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(s.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="izdrop", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rep, err := Build(ctx, s.Config, s.Journal, Options{Now: s.now})
	if err != nil {
		http.Error(w, "reading the journal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	days, err := Days(ctx, s.Config, s.Journal, s.now(), 30)
	if err != nil {
		http.Error(w, "reading the journal: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.render(w, "overview", map[string]any{"Title": "status", "At": rep.At, "Report": rep, "Chart": Chart(days)})
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	rep, ok, err := ForFile(r.Context(), s.Journal, r.PathValue("claim"))
	switch {
	case err != nil:
		http.Error(w, "reading the journal: "+err.Error(), http.StatusInternalServerError)
		return
	case !ok:
		http.NotFound(w, r)
		return
	}
	s.render(w, "file", map[string]any{"Title": rep.File.Name, "At": s.now().In(s.Config.Location()), "File": rep})
}

func (s *Server) rejects(w http.ResponseWriter, r *http.Request) {
	f, err := s.Journal.GetFile(r.Context(), r.PathValue("claim"))
	if err != nil || f.ArchivePath == "" {
		http.NotFound(w, r)
		return
	}
	fh, err := os.Open(f.ArchivePath + archive.Rejects)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer fh.Close()
	st, _ := fh.Stat()
	name := strings.ReplaceAll(f.Name, `"`, "") + archive.Rejects
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, name))
	http.ServeContent(w, r, name, st.ModTime(), fh)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.Journal.Heartbeats(ctx, time.Now()); err != nil {
		http.Error(w, "journal: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.Ready != nil {
		if err := s.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	loc := s.Config.Location()
	t := template.Must(page.Clone()).Funcs(template.FuncMap{"inloc": func(t time.Time) time.Time { return t.In(loc) }})
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, "rendering: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, b.String())
}

// Chart draws the days' accepted and rejected records as SVG bars: green
// up for accepted, red for rejected and invalid, one pair per day.
func Chart(days []Day) template.HTML {
	const w, h, pad = 900, 180, 24
	most := 1
	for _, d := range days {
		most = max(most, d.Accepted, d.Rejected)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="records accepted and rejected per day">`, w, h+pad)
	slot := float64(w) / float64(max(len(days), 1))
	for i, d := range days {
		x := float64(i) * slot
		ha := float64(h-10) * float64(d.Accepted) / float64(most)
		hr := float64(h-10) * float64(d.Rejected) / float64(most)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3a8a3a" data-day="%s" data-accepted="%d"><title>%s: %d accepted</title></rect>`,
			x+2, float64(h)-ha, slot/2-3, ha, d.Date, d.Accepted, d.Date, d.Accepted)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#b33" data-rejected="%d"><title>%s: %d rejected or invalid</title></rect>`,
			x+slot/2, float64(h)-hr, slot/2-3, hr, d.Rejected, d.Date, d.Rejected)
		if i%5 == 0 || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#555">%s</text>`, x, h+14, d.Date[5:])
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="11" fill="#555" text-anchor="end">max %d records/day</text></svg>`, w-4, most)
	return template.HTML(b.String())
}
