package sandbox_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/sandbox"
)

func newClient(t *testing.T, url string, tune func(*outbound.Endpoint)) *outbound.Client {
	t.Helper()
	ep := outbound.Endpoint{Name: "t", URL: url, Username: "sandbox", Password: "sandbox", FacilityID: "sandbox",
		MaxAttempts: 2, BackoffBase: time.Millisecond, RetryBudget: 5 * time.Second}
	if strings.HasSuffix(url, sandbox.Path2014) {
		ep.Codec = outbound.Codec2014
	}
	if tune != nil {
		tune(&ep)
	}
	c, err := outbound.New(ep, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func startSandbox(t *testing.T, opt sandbox.Options) *sandbox.Server {
	t.Helper()
	s, err := sandbox.Start(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// goldenVXUs reads the messages transform's golden tests hold for an example.
func goldenVXUs(t *testing.T, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../transform/testdata/golden", name+".vxu.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(m)) > 0 {
			out = append(out, m)
		}
	}
	return out
}

func msh10(m []byte) string { return strings.Split(string(m), "|")[9] }

// TestTransformOutputIsAccepted is the cross-check between the two halves:
// every message transform writes for the examples passes the sandbox's
// independent CAIR2 validation, updates and deletes included.
func TestTransformOutputIsAccepted(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c := newClient(t, s.URL2011(), nil)
	for _, ex := range []string{"visit-administered", "historical", "refusal", "locked-record", "guardian", "delimiters", "acme-ehr-export", "mixed-with-errors", "visit-corrections"} {
		for _, m := range goldenVXUs(t, ex) {
			d, err := c.Deliver(context.Background(), msh10(m), m)
			if err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			if d.Outcome != ack.Accepted {
				t.Errorf("%s %s: %s %+v", ex, msh10(m), d.Outcome, d.ACK.Errors)
			}
		}
	}
	if s.HasDose("DEMOORG", "V-2026-0003") {
		t.Error("the delete of V-2026-0003 was not applied")
	}
	if !s.HasDose("DEMOORG", "V-2026-0004") || !s.HasDose("DEMOORG", "D^0007&1") {
		t.Error("doses missing from the store")
	}
}

// TestSampleVXUsGetAnACK: real VXUs written for other registries must each
// get a well-formed, classifiable ACK - never a crash or garbage - and those
// that break CAIR2's rules are refused for the right reason.
func TestSampleVXUsGetAnACK(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c := newClient(t, s.URL2014(), nil)
	files, _ := filepath.Glob("../testdata/hl7-samples/vxu_*.hl7")
	if len(files) != 15 {
		t.Fatalf("%d sample VXUs", len(files))
	}
	// Why CAIR2 refuses some of them: where the first finding points.
	reasons := map[string]string{
		"vxu_02_al_ndc_5rxa.hl7":      "MSH^1^22", // no MSH-22 (and NDC codes)
		"vxu_07_asiis_3rxa.hl7":       "MSH^1^4",  // no sending facility: header, AR
		"vxu_11_mqe_bad_lot_2rxa.hl7": "MSH^1^11", // MSH-11 T
		"vxu_09_tx_affirmation.hl7":   "MSH^1^22",
		"vxu_15_catchservlet.hl7":     "MSH^1^4",
	}
	for _, f := range files {
		name := filepath.Base(f)
		raw, _ := os.ReadFile(f)
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := c.Deliver(context.Background(), m.Segments[0].Get(10, 1), raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch d.Outcome {
		case ack.Accepted, ack.AcceptedWithWarnings:
		case ack.Rejected:
			errs, _ := d.ACK.Problems()
			if len(errs) == 0 || !strings.HasPrefix(errs[0].Text, "MESSAGE REJECTED - ") {
				t.Errorf("%s: rejection without a MESSAGE REJECTED error: %+v", name, d.ACK.Errors)
			}
		default:
			t.Errorf("%s: outcome %q", name, d.Outcome)
		}
		if want, ok := reasons[name]; ok {
			found := false
			for _, e := range d.ACK.Errors {
				found = found || e.Location == want
			}
			if d.Outcome != ack.Rejected || !found {
				t.Errorf("%s: want a rejection at %s, got %s %+v", name, want, d.Outcome, d.ACK.Errors)
			}
		}
		t.Logf("%s: %s (%d ERR)", name, d.Outcome, len(d.ACK.Errors))
	}
}

const okVXU = "MSH|^~\\&|izdrop|ORG|CAIR IIS|CAIRBA|20261125093000-0800||VXU^V04^VXU_V04|{ID}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|SITE1\r" +
	"PID|1||P1^^^ORG^MR||Rivera^Ana^^^^^L||20200501|F\r" +
	"ORC|RE||{VID}^ORG\r" +
	"RXA|0|1|20261001||08^Hep B^CVX|0.5|mL^mL^UCUM||00^New^NIP001||^^^SITE1||||L1||MSD^Merck^MVX|||CP|{ACT}\r" +
	"OBX|1|CE|64994-7^Eligibility^LN|1|V01^Not VFC eligible^HL70064||||||F\r"

func msg(id, vid, act string, edits ...[2]string) []byte {
	m := strings.NewReplacer("{ID}", id, "{VID}", vid, "{ACT}", act).Replace(okVXU)
	for _, e := range edits {
		m = strings.Replace(m, e[0], e[1], 1)
	}
	return []byte(m)
}

func TestValidationRules(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c := newClient(t, s.URL2011(), nil)
	cases := []struct {
		name    string
		edit    [2]string
		outcome ack.Outcome
		loc     string
	}{
		{"valid", [2]string{"", ""}, ack.Accepted, ""},
		{"MSH-11 not P", [2]string{"|P|2.5.1", "|T|2.5.1"}, ack.Rejected, "MSH^1^11"},
		{"version", [2]string{"|2.5.1|", "|2.3.1|"}, ack.Rejected, "MSH^1^12"},
		{"no MSH-22", [2]string{"|SITE1\r", "|\r"}, ack.Rejected, "MSH^1^22"},
		{"no PID-3.5", [2]string{"P1^^^ORG^MR", "P1^^^ORG"}, ack.Rejected, "PID^1^3^1^5"},
		{"digits in a name", [2]string{"Rivera^Ana", "Rivera2^Ana"}, ack.Rejected, "PID^1^5^1^1"},
		{"future birth", [2]string{"20200501", "20991231"}, ack.Rejected, "PID^1^7"},
		{"bad sex", [2]string{"|F\r", "|Q\r"}, ack.Rejected, "PID^1^8"},
		{"admin before birth", [2]string{"|20261001||08", "|20190101||08"}, ack.Rejected, "RXA^1^3"},
		{"NDC in RXA-5", [2]string{"08^Hep B^CVX", "49281-0560-05^Pentacel^NDC"}, ack.Rejected, "RXA^1^5^1^3"},
		{"unknown CVX", [2]string{"08^Hep B^CVX", "9999^x^CVX"}, ack.Rejected, "RXA^1^5"},
		{"pair not a product", [2]string{"MSD^Merck^MVX", "PFR^Pfizer^MVX"}, ack.Rejected, "RXA^1^17"},
		{"no lot", [2]string{"||||L1||", "||||||"}, ack.Rejected, "RXA^1^15"},
		{"no RXA-11.4", [2]string{"^^^SITE1", ""}, ack.Rejected, "RXA^1^11^1^4"},
		{"no VFC", [2]string{"OBX|1|CE|64994-7", "OBX|1|CE|30956-7"}, ack.Rejected, "OBX^1^5"},
		{"segment order", [2]string{"ORC|RE||{VID}^ORG\r", ""}, ack.Rejected, "RXA^3"},
		{"provider without RXA-10.13", [2]string{"||^^^SITE1", "|123^Lee^Al|^^^SITE1"}, ack.AcceptedWithWarnings, "RXA^1^10^1^9"},
	}
	for i, tc := range cases {
		id := fmt.Sprintf("R%02d", i)
		m := msg(id, "VR"+id, "A", [2]string{strings.ReplaceAll(tc.edit[0], "{VID}", "VR"+id), tc.edit[1]})
		d, err := c.Deliver(context.Background(), id, m)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if d.Outcome != tc.outcome {
			t.Errorf("%s: %s %+v", tc.name, d.Outcome, d.ACK.Errors)
			continue
		}
		if tc.loc != "" {
			found := false
			for _, e := range d.ACK.Errors {
				found = found || e.Location == tc.loc
			}
			if !found {
				t.Errorf("%s: no ERR at %s: %+v", tc.name, tc.loc, d.ACK.Errors)
			}
		}
		if tc.outcome == ack.Rejected && d.ACK.Code == "AR" != strings.HasPrefix(tc.loc, "MSH^1^1") {
			t.Errorf("%s: MSA-1 %s", tc.name, d.ACK.Code)
		}
	}
}

func TestUpdatesDeletesDuplicatesAndResends(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c := newClient(t, s.URL2014(), nil)
	send := func(id, vid, act string) *ack.ACK {
		d, err := c.Deliver(context.Background(), id, msg(id, vid, act))
		if err != nil {
			t.Fatal(err)
		}
		return d.ACK
	}
	if a := send("U1", "V9", "U"); a.Outcome != ack.Rejected || !strings.Contains(a.Errors[0].Text, "no vaccination V9 on file") {
		t.Fatalf("update of an unknown dose: %+v", a)
	}
	if a := send("A1", "V9", "A"); a.Outcome != ack.Accepted {
		t.Fatalf("add: %+v", a)
	}
	if a := send("A2", "V9", "A"); a.Outcome != ack.AcceptedWithWarnings || !strings.Contains(a.Errors[0].Text, "duplicate") {
		t.Fatalf("duplicate add: %+v", a)
	}
	first := send("U2", "V9", "U")
	if first.Outcome != ack.Accepted {
		t.Fatalf("update: %+v", first)
	}
	// The same message again (a retry after a lost answer): the first ACK,
	// nothing applied twice.
	again := send("U2", "V9", "U")
	if again.Raw != first.Raw {
		t.Errorf("resend got a new ACK:\n%s\n%s", first.Raw, again.Raw)
	}
	if a := send("D1", "V9", "D"); a.Outcome != ack.Accepted || s.HasDose("ORG", "V9") {
		t.Fatalf("delete: %+v", a)
	}
	if a := send("D2", "V9", "D"); a.Outcome != ack.Rejected {
		t.Fatalf("second delete: %+v", a)
	}
	// A known MSH-10 with other content is no retry: it is processed, and
	// counted as a reused control id.
	if a := send("A1", "V10", "A"); a.Outcome != ack.Accepted || !s.HasDose("ORG", "V10") {
		t.Fatalf("reused MSH-10: %+v", a)
	}
	st := s.Stats()
	if st.Resends != 1 || st.Duplicates != 1 || st.Deleted != 1 || st.Stored != 2 || st.ReusedControlIDs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestWSDLAndPages(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	for path, ops := range map[string][]string{
		sandbox.Path2011: {"submitSingleMessage", "connectivityTest", "urn:cdc:iisb:2011", "SecurityFault"},
		sandbox.Path2014: {"SubmitSingleMessage", "ConnectivityTest", "urn:cdc:iisb:2014", "MessageTooLargeFault"},
	} {
		resp, err := http.Get(s.URL() + path + "?wsdl")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := xml.Unmarshal(b, new(struct{})); err != nil {
			t.Errorf("%s WSDL is not XML: %v", path, err)
		}
		for _, op := range append(ops, s.URL()+path) {
			if !bytes.Contains(b, []byte(op)) {
				t.Errorf("%s WSDL lacks %s", path, op)
			}
		}
	}
	c := newClient(t, s.URL2011(), nil)
	c.Deliver(context.Background(), "P1", msg("P1", "VP1", "A"))
	for _, page := range []string{"/", "/status.json", "/received.json"} {
		resp, err := http.Get(s.URL() + page)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(b, []byte("accepted")) {
			t.Errorf("%s: %d %s", page, resp.StatusCode, b)
		}
		if bytes.Contains(b, []byte("Rivera")) || bytes.Contains(b, []byte("20200501")) {
			t.Errorf("%s shows patient data", page)
		}
	}
}

// selfSigned returns a loopback certificate and its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "izdrop sandbox test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestHTTPSVerifiesAndReusesConnections(t *testing.T) {
	cert, pemBytes := selfSigned(t)
	s := startSandbox(t, sandbox.Options{TLS: &cert})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatal(s.URL())
	}
	// Verification is always on: an unknown CA is refused, and is an
	// endpoint problem (no retrying into a certificate error).
	bad := newClient(t, s.URL2011(), func(ep *outbound.Endpoint) { ep.RetryBudget = 200 * time.Millisecond })
	_, err := bad.Deliver(context.Background(), "H0", msg("H0", "VH0", "A"))
	var te *outbound.TransportError
	if !errors.As(err, &te) || te.Op != "tls" {
		t.Fatalf("unknown CA: %v", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pemBytes, 0o600)
	good := newClient(t, s.URL2011(), func(ep *outbound.Endpoint) { ep.CAFile = caFile; ep.Concurrency = 4 })
	before := s.Stats().Handshakes
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := fmt.Sprintf("H%02d", i+1)
			d, err := good.Deliver(context.Background(), id, msg(id, "V"+id, "A"))
			if err != nil || d.Outcome != ack.Accepted {
				t.Errorf("%s: %v %v", id, d.Outcome, err)
			}
		}(i)
	}
	wg.Wait()
	if hs := s.Stats().Handshakes - before; hs > 5 || hs < 1 {
		t.Errorf("%d TLS handshakes for 40 messages at concurrency 4", hs)
	}
}

// A new connection waits ConnectDelay once; later calls on it, kept
// alive, do not. The submission latency counts the wait of the call that
// opened the connection.
func TestConnectDelayIsPaidOncePerConnection(t *testing.T) {
	const delay = 150 * time.Millisecond
	s := startSandbox(t, sandbox.Options{Faults: sandbox.Faults{ConnectDelay: delay}})
	c := newClient(t, s.URL2011(), func(ep *outbound.Endpoint) { ep.Concurrency = 1 })
	var took []time.Duration
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("CD%d", i)
		start := time.Now()
		if d, err := c.Deliver(context.Background(), id, msg(id, "V"+id, "A")); err != nil || d.Outcome != ack.Accepted {
			t.Fatalf("%s: %v %v", id, d.Outcome, err)
		}
		took = append(took, time.Since(start))
	}
	if took[0] < delay {
		t.Errorf("the first call, on a new connection, took %v", took[0])
	}
	for _, d := range took[1:] {
		if d >= delay {
			t.Errorf("a call on the kept-alive connection took %v: %v", d, took)
		}
	}
	if st := s.Stats(); st.Connections != 1 {
		t.Errorf("%d connections", st.Connections)
	}
	if p99, p50 := s.SubmitLatency(0.99), s.SubmitLatency(0.5); p99 < delay || p50 >= delay {
		t.Errorf("submit latency p50 %v, p99 %v", p50, p99)
	}
}
