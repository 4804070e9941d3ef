package sandbox

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/izdrop/izdrop/ack"
)

func (s *Server) statusJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.Stats())
}

// receivedJSON lists what was received: ids, codes and outcomes only.
func (s *Server) receivedJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	type item struct {
		Received
		ACK    string    `json:"ack"`
		Errors []ack.ERR `json:"errors,omitempty"`
	}
	var out []item
	for _, r := range s.Received() {
		it := item{Received: r}
		if a, err := ack.Parse([]byte(r.ACK)); err == nil {
			it.Errors = a.Errors
		}
		it.ACK = strings.ReplaceAll(r.ACK, "\r", "\n")
		out = append(out, it)
	}
	if out == nil {
		out = []item{}
	}
	json.NewEncoder(w).Encode(out)
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"lines": func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\r", "\n") },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>izdrop sandbox registry</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}pre{margin:0;font-size:.85em}
.accepted{color:#060}.accepted_with_warnings{color:#960}.rejected{color:#a00}</style></head><body>
<h1>izdrop sandbox registry</h1>
<p>A local double of CAIR2. Endpoints: <code>{{.URL}}/CATRN-WS/IISService</code> (2011 codec),
<code>{{.URL}}/iisb/2014</code> (2014); WSDL at <code>?wsdl</code>. JSON: <a href="/status.json">status.json</a>,
<a href="/received.json">received.json</a>.</p>
<h2>Counts</h2>
<table><tr><th>messages</th><td>{{.S.Messages}}</td><th>doses on file</th><td>{{.Stored}}</td></tr>
{{range $k, $v := .S.ByOutcome}}<tr><th class="{{$k}}">{{$k}}</th><td>{{$v}}</td><td colspan="2"></td></tr>{{end}}
<tr><th>resends (same MSH-10)</th><td>{{.S.Resends}}</td><th>duplicates</th><td>{{.S.Duplicates}}</td></tr>
<tr><th>security faults</th><td>{{.S.Security}}</td><th>too large</th><td>{{.S.TooLarge}}</td></tr>
<tr><th>connections</th><td>{{.S.Connections}}</td><th>calls</th><td>{{.S.Calls}}</td></tr></table>
<h2>Last messages</h2>
<table><tr><th>time</th><th>MSH-10</th><th>facility</th><th>doses (ORC-3 / action / CVX)</th><th>outcome</th><th>ACK</th></tr>
{{range .Last}}<tr><td>{{.Time.Format "15:04:05"}}</td><td>{{.MSH10}}{{if .Resend}} (resend){{end}}</td><td>{{.Facility}}</td>
<td>{{range .Doses}}{{.ID}} / {{.Action}} / {{.CVX}}<br>{{end}}</td><td class="{{.Outcome}}">{{.Outcome}}</td><td><pre>{{lines .ACK}}</pre></td></tr>{{end}}
</table></body></html>`))

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	rec := s.Received()
	last := make([]Received, 0, 50)
	for i := len(rec) - 1; i >= 0 && len(last) < 50; i-- {
		last = append(last, rec[i])
	}
	s.mu.Lock()
	stored := len(s.doses)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, map[string]any{"URL": s.url, "S": s.Stats(), "Last": last, "Stored": stored})
}
