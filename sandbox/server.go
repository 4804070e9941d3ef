package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/codes"
	"github.com/izdrop/izdrop/hl7"
)

// Paths of the two codecs.
const (
	Path2011 = "/CATRN-WS/IISService"
	Path2014 = "/iisb/2014"
)

// Faults makes the sandbox slow or flaky. Rates are shares of calls, 0 to 1.
type Faults struct {
	Latency     time.Duration // added to every call
	Jitter      time.Duration // plus a random share of this
	Rate503     float64       // answered HTTP 503
	RateUnknown float64       // answered with an UnknownFault
	RateDrop    float64       // processed, then the connection is dropped mid-answer
	// RateMisdirected is the share of submissions answered, unprocessed,
	// with an AA whose MSA-2 names another message: a mixed-up answer.
	RateMisdirected float64
	// FailMatching, when set, answers HTTP FailStatus (default 500) to every
	// submission whose message contains it (a patient id, say): a failure
	// of some messages only, while the registry answers the others.
	FailMatching string
	FailStatus   int
	// ConnectDelay is added once to every new connection, before its first
	// request is read: what a TLS handshake costs over a WAN, on loopback.
	// A client that opens a connection per call pays it every call.
	ConnectDelay time.Duration
}

// Options configure a sandbox.
type Options struct {
	// Addr to listen on (default 127.0.0.1:0: a free loopback port).
	Addr string
	// Credentials the sandbox accepts (default sandbox/sandbox/sandbox).
	Username, Password, FacilityID string
	// TLS, when set, makes the sandbox serve HTTPS with this certificate.
	TLS *tls.Certificate
	// MaxMessageBytes is the largest hl7Message taken (default 256 KiB);
	// larger ones get a MessageTooLargeFault.
	MaxMessageBytes int
	// Faults to start with.
	Faults Faults
	// Seed for the random faults (0: random).
	Seed uint64
	// Codes to validate against (default: the embedded tables).
	Codes *codes.Set
	// OnReceived, when set, is told of every message processed, in the
	// order processed (a resend included), with the sandbox's lock held:
	// for a benchmark that checks order or counts what came, over more
	// messages than Received keeps.
	OnReceived func(Received)
	// Now is the clock ("in the future" checks); default time.Now.
	Now      func() time.Time
	Location *time.Location
	Log      zerolog.Logger
}

// Server is a running sandbox.
type Server struct {
	opt                   Options
	ln                    net.Listener
	http                  *http.Server
	url                   string
	conns                 atomic.Int64 // connections accepted
	inFlight, maxInFlight atomic.Int64
	tlsHS                 atomic.Int64 // TLS handshakes completed
	latency               histogram    // of submissions, from arrival (a new connection's: from its accept) to answer

	mu       sync.Mutex
	faults   Faults
	rnd      *rand.Rand
	doses    map[string]storedDose // facility|ORC-3
	byMSH10  map[string]replay     // facility|MSH-10
	received []Received
	stats    Stats
}

type storedDose struct {
	content string
	cvx     string
}

type replay struct {
	hash [32]byte
	ack  string
}

// Received is one message the sandbox processed (a resend included).
type Received struct {
	Time     time.Time   `json:"time"`
	Codec    string      `json:"codec"`
	MSH10    string      `json:"msh10"`
	Facility string      `json:"facility"`
	Outcome  ack.Outcome `json:"outcome"`
	Resend   bool        `json:"resend,omitempty"`
	Doses    []Dose      `json:"doses"`
	ACK      string      `json:"ack"`
}

// Dose is one vaccination of a received message.
type Dose struct {
	ID     string `json:"vaccination_id"`
	Action string `json:"action"`
	CVX    string `json:"cvx"`
}

// Stats counts what the sandbox saw.
type Stats struct {
	Calls        int64                 `json:"calls"`
	Submits      int64                 `json:"submit_calls"`
	Connectivity int64                 `json:"connectivity_tests"`
	Messages     int64                 `json:"messages"`
	ByOutcome    map[ack.Outcome]int64 `json:"by_outcome"`
	Resends      int64                 `json:"resends"`
	Duplicates   int64                 `json:"duplicates"`
	// ReusedControlIDs counts messages whose MSH-10 came before with other
	// content: a sender's bug (a retry must carry the same bytes).
	ReusedControlIDs int64 `json:"reused_control_ids"`
	Stored           int64 `json:"doses_stored"`
	Deleted          int64 `json:"doses_deleted"`
	Security         int64 `json:"security_faults"`
	TooLarge         int64 `json:"too_large_faults"`
	Unsupported      int64 `json:"unsupported_faults"`
	Injected503      int64 `json:"injected_503"`
	InjectedUF       int64 `json:"injected_unknown_faults"`
	Dropped          int64 `json:"dropped_connections"`
	Misdirected      int64 `json:"misdirected_acks"`
	MaxInFlight      int64 `json:"max_calls_in_flight"`
	Connections      int64 `json:"connections"`
	Handshakes       int64 `json:"tls_handshakes"`
}

// Start listens and serves until Close.
func Start(opt Options) (*Server, error) {
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Username == "" {
		opt.Username = "sandbox"
	}
	if opt.Password == "" {
		opt.Password = "sandbox"
	}
	if opt.FacilityID == "" {
		opt.FacilityID = "sandbox"
	}
	if opt.MaxMessageBytes <= 0 {
		opt.MaxMessageBytes = 256 << 10
	}
	if opt.Codes == nil {
		opt.Codes = codes.Embedded()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Location == nil {
		if loc, err := time.LoadLocation("America/Los_Angeles"); err == nil {
			opt.Location = loc
		} else {
			opt.Location = time.UTC
		}
	}
	seed := opt.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("sandbox: listen: %w", err)
	}
	s := &Server{opt: opt, ln: ln, faults: opt.Faults, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		doses: map[string]storedDose{}, byMSH10: map[string]replay{}, stats: Stats{ByOutcome: map[ack.Outcome]int64{}}}
	mux := http.NewServeMux()
	mux.HandleFunc(Path2011, s.codec(codec2011))
	mux.HandleFunc(Path2014, s.codec(codec2014))
	mux.HandleFunc("/status.json", s.statusJSON)
	mux.HandleFunc("/received.json", s.receivedJSON)
	mux.HandleFunc("/{$}", s.page)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, &connInfo{accepted: time.Now()})
		}}
	ln = &delayListener{Listener: ln, s: s}
	scheme := "http"
	if opt.TLS != nil {
		scheme = "https"
		tc := &tls.Config{Certificates: []tls.Certificate{*opt.TLS}, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(tls.ConnectionState) error { s.tlsHS.Add(1); return nil }}
		ln = tls.NewListener(ln, tc)
	}
	s.url = scheme + "://" + s.ln.Addr().String()
	go s.http.Serve(ln)
	opt.Log.Info().Str("url", s.url).Msg("sandbox registry listening")
	return s, nil
}

// SubmitLatency returns the q-quantile (0.5, 0.99) of the time the
// submissions answered took, from their arrival - a call on a new
// connection from the connection's accept - to their answer: what the
// sender waited, short of the network. Resolution 5%.
func (s *Server) SubmitLatency(q float64) time.Duration { return s.latency.quantile(q) }

// URL is the sandbox's base URL (scheme, host and port).
func (s *Server) URL() string { return s.url }

// URL2011 and URL2014 are the two codecs' endpoint URLs.
func (s *Server) URL2011() string { return s.url + Path2011 }
func (s *Server) URL2014() string { return s.url + Path2014 }

// Close stops the sandbox.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.http.Shutdown(ctx)
}

// SetFaults changes how slow or flaky the sandbox is.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// SetCredentials changes the credentials accepted.
func (s *Server) SetCredentials(user, password, facility string) {
	s.mu.Lock()
	s.opt.Username, s.opt.Password, s.opt.FacilityID = user, password, facility
	s.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByOutcome = map[ack.Outcome]int64{}
	for k, v := range s.stats.ByOutcome {
		st.ByOutcome[k] = v
	}
	st.Connections = s.conns.Load()
	st.MaxInFlight = s.maxInFlight.Load()
	st.Handshakes = s.tlsHS.Load()
	return st
}

// Received returns every message processed, oldest first.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// HasDose reports whether a dose is on file.
func (s *Server) HasDose(facility, vaccinationID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.doses[facility+"|"+vaccinationID]
	return ok
}

type codecDef struct {
	name, ns, path                      string
	submit, submitResp, submitResult    string
	connect, connectResp, connectResult string
	userF, passF, facF, msgF, echoF     string
	unknownFault                        string
	wsdl                                func(url string) string
}

var codec2011 = codecDef{name: "2011", ns: "urn:cdc:iisb:2011", path: Path2011,
	submit: "submitSingleMessage", submitResp: "submitSingleMessageResponse", submitResult: "return",
	connect: "connectivityTest", connectResp: "connectivityTestResponse", connectResult: "return",
	userF: "username", passF: "password", facF: "facilityID", msgF: "hl7Message", echoF: "echoBack",
	unknownFault: "fault", wsdl: wsdl2011}

var codec2014 = codecDef{name: "2014", ns: "urn:cdc:iisb:2014", path: Path2014,
	submit: "SubmitSingleMessageRequest", submitResp: "SubmitSingleMessageResponse", submitResult: "Hl7Message",
	connect: "ConnectivityTestRequest", connectResp: "ConnectivityTestResponse", connectResult: "EchoBack",
	userF: "Username", passF: "Password", facF: "FacilityID", msgF: "Hl7Message", echoF: "EchoBack",
	unknownFault: "UnknownFault", wsdl: wsdl2014}

// request is the parsed SOAP body.
type request struct {
	op     string            // local name of the body's element
	ns     string            // its namespace
	fields map[string]string // child element texts by local name
}

func parseRequest(body []byte) (request, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var r request
	depth, inBody := 0, false
	var field string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case t.Name.Local == "Body" && t.Name.Space == "http://www.w3.org/2003/05/soap-envelope":
				inBody = true
			case inBody && r.op == "":
				r.op, r.ns, r.fields = t.Name.Local, t.Name.Space, map[string]string{}
			case r.op != "" && field == "":
				field = t.Name.Local
				text.Reset()
			}
		case xml.CharData:
			if field != "" {
				text.Write(t)
			}
		case xml.EndElement:
			depth--
			if field != "" && t.Name.Local == field {
				r.fields[field] = text.String()
				field = ""
			}
		}
	}
	if r.op == "" {
		return r, errors.New("no SOAP 1.2 Body element")
	}
	return r, nil
}

func (s *Server) codec(c codecDef) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodGet {
			if _, ok := req.URL.Query()["wsdl"]; ok {
				w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
				io.WriteString(w, c.wsdl(s.url+c.path))
				return
			}
			http.Error(w, "POST a SOAP 1.2 envelope, or GET ?wsdl", http.StatusMethodNotAllowed)
			return
		}
		if req.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if n := s.inFlight.Add(1); n > s.maxInFlight.Load() {
			s.maxInFlight.Store(n)
		}
		defer s.inFlight.Add(-1)
		arrived := time.Now()
		if ci, ok := req.Context().Value(connKey{}).(*connInfo); ok && !ci.used.Swap(true) {
			arrived = ci.accepted // the connection was opened for this call
		}
		s.mu.Lock()
		s.stats.Calls++
		f := s.faults
		delay := f.Latency
		if f.Jitter > 0 {
			delay += time.Duration(s.rnd.Float64() * float64(f.Jitter))
		}
		roll503, rollUF, rollDrop, rollMis := s.rnd.Float64(), s.rnd.Float64(), s.rnd.Float64(), s.rnd.Float64()
		s.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return
			}
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, int64(s.opt.MaxMessageBytes)*2+64<<10))
		if err != nil {
			return
		}
		r, perr := parseRequest(body)
		if perr == nil && r.op == c.submit {
			s.count(func(st *Stats) { st.Submits++ })
		}
		if perr == nil && r.op == c.submit && f.FailMatching != "" && strings.Contains(r.fields[c.msgF], f.FailMatching) {
			s.count(func(st *Stats) { st.Injected503++ })
			code := f.FailStatus
			if code == 0 {
				code = http.StatusInternalServerError
			}
			http.Error(w, http.StatusText(code), code)
			return
		}
		if roll503 < f.Rate503 {
			s.count(func(st *Stats) { st.Injected503++ })
			http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
			return
		}
		if perr != nil {
			s.fault(w, c, "Sender", c.unknownFault, "0", "Malformed request", perr.Error(), nil)
			return
		}
		if rollUF < f.RateUnknown {
			s.count(func(st *Stats) { st.InjectedUF++ })
			s.fault(w, c, "Receiver", c.unknownFault, "0", "Temporary failure", "the registry could not process the request; try again", nil)
			return
		}
		var answer []byte
		switch {
		case r.ns != c.ns:
			s.count(func(st *Stats) { st.Unsupported++ })
			s.fault(w, c, "Sender", "UnsupportedOperationFault", "0", "Unsupported operation", fmt.Sprintf("%s in namespace %q is not served at %s (this is the %s codec)", r.op, r.ns, c.path, c.name), nil)
			return
		case r.op == c.connect:
			s.count(func(st *Stats) { st.Connectivity++ })
			answer = s.response(c, c.connectResp, c.connectResult, r.fields[c.echoF])
		case r.op == c.submit:
			s.mu.Lock()
			okCreds := r.fields[c.userF] == s.opt.Username && r.fields[c.passF] == s.opt.Password && r.fields[c.facF] == s.opt.FacilityID
			s.mu.Unlock()
			if !okCreds {
				s.count(func(st *Stats) { st.Security++ })
				s.fault(w, c, "Sender", "SecurityFault", "10", "Security", "Invalid Username, Password or FacilityID", nil)
				return
			}
			msg := r.fields[c.msgF]
			if len(msg) > s.opt.MaxMessageBytes || countMSH(msg) > 1 {
				s.count(func(st *Stats) { st.TooLarge++ })
				detail := fmt.Sprintf("the message has %d bytes; the limit is %d", len(msg), s.opt.MaxMessageBytes)
				if countMSH(msg) > 1 {
					detail = "one message (one MSH) per call: batches are not accepted"
				}
				s.fault(w, c, "Sender", "MessageTooLargeFault", "20", "Message too large", detail, []int{len(msg), s.opt.MaxMessageBytes})
				return
			}
			if rollMis < f.RateMisdirected {
				s.count(func(st *Stats) { st.Misdirected++ })
				answer = s.response(c, c.submitResp, c.submitResult, misdirectedACK(s.opt.Now(), msg))
				break
			}
			answer = s.response(c, c.submitResp, c.submitResult, s.process(c.name, []byte(msg)))
		default:
			s.count(func(st *Stats) { st.Unsupported++ })
			s.fault(w, c, "Sender", "UnsupportedOperationFault", "0", "Unsupported operation", fmt.Sprintf("operation %q is not offered", r.op), nil)
			return
		}
		if rollDrop < f.RateDrop {
			s.count(func(st *Stats) { st.Dropped++ })
			dropMidAnswer(w, answer)
			return
		}
		w.Header().Set("Content-Type", "application/soap+xml; charset=UTF-8")
		w.Write(answer)
		if r.op == c.submit {
			s.latency.add(time.Since(arrived))
		}
	}
}

// dropMidAnswer writes the start of the answer and closes the connection:
// the message was processed, its answer is lost.
func dropMidAnswer(w http.ResponseWriter, answer []byte) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		return
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nContent-Length: %d\r\n\r\n", len(answer))
	buf.Write(answer[:len(answer)/2])
	buf.Flush()
	conn.Close()
}

func countMSH(msg string) int {
	n := 0
	for _, line := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.HasPrefix(line, "MSH") {
			n++
		}
	}
	return n
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Server) response(c codecDef, elem, result, text string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><` + elem + ` xmlns="` + c.ns + `"><` + result + `>`)
	xml.EscapeText(&b, []byte(text))
	b.WriteString(`</` + result + `></` + elem + `></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// fault answers with a SOAP 1.2 fault whose detail is the named CDC fault.
func (s *Server) fault(w http.ResponseWriter, c codecDef, who, name, code, reason, detail string, sizes []int) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault>`)
	b.WriteString(`<soap:Code><soap:Value>soap:` + who + `</soap:Value></soap:Code>`)
	b.WriteString(`<soap:Reason><soap:Text xml:lang="en">`)
	xml.EscapeText(&b, []byte(reason))
	b.WriteString(`</soap:Text></soap:Reason><soap:Detail><` + name + ` xmlns="` + c.ns + `"><Code>` + code + `</Code><Reason>`)
	xml.EscapeText(&b, []byte(reason))
	b.WriteString(`</Reason><Detail>`)
	xml.EscapeText(&b, []byte(detail))
	b.WriteString(`</Detail>`)
	if sizes != nil {
		fmt.Fprintf(&b, `<Size>%d</Size><MaxSize>%d</MaxSize>`, sizes[0], sizes[1])
	}
	b.WriteString(`</` + name + `></soap:Detail></soap:Fault></soap:Body></soap:Envelope>`)
	w.Header().Set("Content-Type", "application/soap+xml; charset=UTF-8")
	status := http.StatusInternalServerError
	if who == "Sender" {
		status = http.StatusBadRequest
	}
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// process validates a VXU, applies it to the store and returns the ACK.
func (s *Server) process(codec string, raw []byte) string {
	now := s.opt.Now().In(s.opt.Location)
	m, err := hl7.Parse(raw)
	if err != nil || m.Segments[0].ID != "MSH" {
		a := buildACK(now, nil, "AR", []finding{{loc: "MSH^1", code: "100", severity: "E", app: "4", text: "the message could not be read as HL7: " + errString(err)}})
		s.record(Received{Time: now, Codec: codec, Outcome: ack.Rejected, ACK: a})
		return a
	}
	msh := m.Segments[0]
	facility, msh10 := msh.Get(4, 1), msh.Get(10, 1)
	hash := sha256.Sum256(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rp, ok := s.byMSH10[facility+"|"+msh10]; ok && msh10 != "" {
		if rp.hash == hash {
			// A retry of a message already processed: same answer, no change.
			s.stats.Resends++
			s.keep(Received{Time: now, Codec: codec, MSH10: msh10, Facility: facility, Outcome: outcomeOf(rp.ack), Resend: true, ACK: rp.ack})
			s.stats.Messages++
			return rp.ack
		}
		s.stats.ReusedControlIDs++ // processed as a new message, as a registry would
	}
	c := &checker{cs: s.opt.Codes, now: now, loc: s.opt.Location, m: m}
	c.check()
	header, rejected := false, false
	for _, f := range c.findings {
		header = header || f.header
		rejected = rejected || f.severity == "E"
	}
	// Updates and deletes must name a dose on file; adds of one already on
	// file are duplicates. Checked before anything is stored: a message is
	// applied whole or not at all.
	if !rejected {
		for _, d := range c.doses {
			key := facility + "|" + d.id
			stored, exists := s.doses[key]
			switch {
			case (d.action == "U" || d.action == "D") && !exists:
				c.reject(fmt.Sprintf("RXA^%d^21", d.seq), "103", "3", "no vaccination %s on file for %s to %s", d.id, facility, map[string]string{"U": "update", "D": "delete"}[d.action])
				rejected = true
			case d.action == "A" && exists && stored.content == d.content:
				c.add("W", fmt.Sprintf("ORC^%d^3", d.seq), "0", "3", "Vaccination %s is already on file (duplicate) - not stored again", d.id)
				s.stats.Duplicates++
			case d.action == "A" && exists:
				c.add("W", fmt.Sprintf("ORC^%d^3", d.seq), "0", "3", "Vaccination %s was already on file - replaced", d.id)
			}
		}
	}
	code := "AA"
	switch {
	case header:
		code = "AR"
	case rejected:
		code = "AE"
	case len(c.findings) > 0:
		code = "AE"
	}
	a := buildACK(now, m, code, c.findings)
	out := outcomeOf(a)
	if out.Stored() {
		for _, d := range c.doses {
			key := facility + "|" + d.id
			switch d.action {
			case "D":
				delete(s.doses, key)
				s.stats.Deleted++
			default:
				if _, had := s.doses[key]; !had {
					s.stats.Stored++
				}
				s.doses[key] = storedDose{content: d.content, cvx: d.cvx}
			}
		}
	}
	s.byMSH10[facility+"|"+msh10] = replay{hash: hash, ack: a}
	var ds []Dose
	for _, d := range c.doses {
		ds = append(ds, Dose{ID: d.id, Action: d.action, CVX: d.cvx})
	}
	s.stats.Messages++
	s.stats.ByOutcome[out]++
	s.keep(Received{Time: now, Codec: codec, MSH10: msh10, Facility: facility, Outcome: out, Doses: ds, ACK: a})
	return a
}

func (s *Server) record(r Received) {
	s.mu.Lock()
	s.stats.Messages++
	s.stats.ByOutcome[r.Outcome]++
	s.keep(r)
	s.mu.Unlock()
}

// keep adds a message to those received (the newest 10 000 are kept) and
// tells Options.OnReceived. s.mu is held.
func (s *Server) keep(r Received) {
	s.received = append(s.received, r)
	if len(s.received) > 10000 {
		s.received = s.received[len(s.received)-10000:]
	}
	if s.opt.OnReceived != nil {
		s.opt.OnReceived(r)
	}
}

func outcomeOf(a string) ack.Outcome {
	p, err := ack.Parse([]byte(a))
	if err != nil {
		return ack.Rejected
	}
	return p.Outcome
}

func errString(err error) string {
	if err == nil {
		return "no MSH segment"
	}
	return err.Error()
}

var ackSeq atomic.Int64

// misdirectedACK is an AA for another message than msg: its MSA-2 is not
// msg's MSH-10.
func misdirectedACK(now time.Time, msg string) string {
	m, err := hl7.Parse([]byte(msg))
	if err != nil || len(m.Segments) == 0 || len(m.Segments[0].Fields) < 10 {
		return buildACK(now, nil, "AA", nil)
	}
	other := m.Segments[0].Get(10, 1) + "X"
	m.Segments[0].Fields[9] = hl7.Field{hl7.Rep{hl7.Comp{other}}}
	return buildACK(now, m, "AA", nil)
}

// buildACK writes an ACK^V04 in CAIR2's style.
func buildACK(now time.Time, m *hl7.Message, code string, fs []finding) string {
	e := hl7.NewEncoder(hl7.DefaultDelimiters)
	var app, fac, ctrl string
	if m != nil {
		msh := m.Segments[0]
		app, fac, ctrl = msh.Get(3, 1), msh.Get(4, 1), msh.Get(10, 1)
	}
	e.Segment("MSH")
	e.F("CAIR IIS")
	e.F("CAIR IIS")
	e.F(app)
	e.F(fac)
	e.Field()
	e.Time(now)
	e.Field()
	e.F("ACK", "V04", "ACK")
	e.F(fmt.Sprintf("SBX%d.%d", now.Unix(), ackSeq.Add(1)))
	e.F("P")
	e.F("2.5.1")
	e.At(15)
	e.Value("NE")
	e.F("NE")
	e.At(21)
	e.Comps("Z23", "CDCPHINVS")
	e.F("CAIR IIS")
	e.F(fac)
	e.Segment("MSA")
	e.F(code)
	e.F(ctrl)
	rejectedSaid := false
	for _, f := range fs {
		text := f.text
		switch {
		case f.severity == "E" && !rejectedSaid:
			text = "MESSAGE REJECTED - " + text
			rejectedSaid = true
		case f.severity == "W" || f.severity == "I":
			text = "Informational error - " + text
		}
		e.Segment("ERR")
		e.Field()
		e.Field()
		e.Comps(strings.Split(f.loc, "^")...)
		e.F(f.code, text357[f.code], "HL70357")
		e.F(f.severity)
		e.F(f.app, text533[f.app], "HL70533")
		e.At(8)
		e.Value(text)
	}
	return string(e.Bytes())
}
