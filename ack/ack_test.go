package ack

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type sample struct {
	File     string   `json:"file"`
	Kind     string   `json:"kind"`
	Expected string   `json:"expected"`
	MSA1     []string `json:"msa1"`
	Errs     []struct {
		Location string `json:"location"`
		Severity string `json:"severity"`
		Text     string `json:"text"`
	} `json:"errs"`
}

func TestEverySampleACKIsClassified(t *testing.T) {
	b, err := os.ReadFile("../testdata/hl7-samples/index.json")
	if err != nil {
		t.Fatal(err)
	}
	var idx []sample
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range idx {
		if s.Kind != "ACK" {
			continue
		}
		n++
		t.Run(s.File, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("../testdata/hl7-samples", s.File))
			if err != nil {
				t.Fatal(err)
			}
			a, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if string(a.Outcome) != s.Expected {
				t.Errorf("outcome %s, want %s", a.Outcome, s.Expected)
			}
			// Every MSA is read and classified; the message it names gets
			// the sample's outcome.
			if len(a.MSAs) != len(s.MSA1) {
				t.Fatalf("%d MSAs, want %d", len(a.MSAs), len(s.MSA1))
			}
			for i, code := range s.MSA1 {
				if a.MSAs[i].Code != code || a.MSAs[i].Outcome == "" {
					t.Errorf("MSA %d = %+v, want MSA-1 %s", i+1, a.MSAs[i], code)
				}
			}
			if o, ok := a.For(a.ControlID); !ok || string(o) != s.Expected {
				t.Errorf("For(%q) = %s %v, want %s", a.ControlID, o, ok, s.Expected)
			}
			if len(a.Errors) != len(s.Errs) {
				t.Fatalf("%d ERRs, want %d", len(a.Errors), len(s.Errs))
			}
			for i, want := range s.Errs {
				got := a.Errors[i]
				if got.Location != want.Location || got.Severity != want.Severity || got.Text != want.Text {
					t.Errorf("ERR %d = %+v, want %+v", i+1, got, want)
				}
			}
		})
	}
	if n != 14 {
		t.Fatalf("%d sample ACKs, want 14", n)
	}
}

func TestACKFields(t *testing.T) {
	raw, _ := os.ReadFile("../testdata/hl7-samples/ack_10_cair2_warning.hl7")
	a, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	e := a.Errors[0]
	if a.Code != "AE" || a.ControlID != "1791129" || e.Location != "RXA^1^10^1^13" || e.Code != "0" || e.CodeText != "Message accepted" || e.AppCode != "5" || e.AppText != "Table value not found" {
		t.Errorf("ack = %+v, err = %+v", a, e)
	}
	errs, warns := a.Problems()
	if len(errs) != 0 || len(warns) != 1 {
		t.Errorf("problems: %v / %v", errs, warns)
	}
}

func TestClassificationEdges(t *testing.T) {
	h := "MSH|^~\\&|IIS|IIS|APP|FAC|20260101||ACK^V04^ACK|1|P|2.5.1\r"
	cases := []struct {
		body string
		want Outcome
	}{
		{"MSA|AA|X\r", Accepted},
		{"MSA|CA|X\r", Accepted},
		{"MSA|AA|X\rERR||PID^1^7|101|E||||Birth date required\r", Rejected},
		{"MSA|AE|X\r", AcceptedWithWarnings},
		{"MSA|AE|X\rERR||PID^1^7|101|||||no severity given\r", Rejected},
		{"MSA|AE|X\rERR||RXA^1^5|103|W||||Message rejected because\r", Rejected}, // any case: a rejection is never read as stored
		{"MSA|AE|X\rERR||RXA^1^5|103|W||||MESSAGE REJECTED - bad CVX\r", Rejected},
		{"MSA|ae|X\rERR||RXA^1^5|103|i||||note\r", AcceptedWithWarnings},
		{"MSA|AR|X\r", Rejected},
		{"MSA|CR|X\r", Rejected},
		// A registry that says it rejected the record is believed, whatever
		// MSA-1 says.
		{"MSA|AA|X|Record Rejected\r", Rejected},
		{"MSA|AA|X\rERR|||0^Message accepted^HL70357|I||||Record Rejected: duplicate\r", Rejected},
		{"MSA|AA|X|Patient record was not accepted\r", Rejected},
		{"MSA|AA|X|0 records rejected, 3 added\r", Accepted},
		{"MSA|AA|X|Message accepted: no records rejected\r", Accepted},
		// A batch answer: every MSA counts.
		{"MSA|AA|X\rMSA|AR|X\rERR||MSH^1^11|202|E||||Processing id\r", Rejected},
		{"MSA|AA|X\rMSA|AE|X\rERR||RXA^1^10|101|W||||note\r", AcceptedWithWarnings},
	}
	for _, c := range cases {
		a, err := Parse([]byte(h + c.body))
		if err != nil || a.Outcome != c.want {
			t.Errorf("%q: %v, %v; want %s", c.body, a, err, c.want)
		}
	}
	for _, bad := range []string{h, h + "MSA||X\r", h + "MSA|OK|X\r", "<html>503</html>", ""} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrNotAnACK) {
			t.Errorf("%q: err = %v, want ErrNotAnACK", bad, err)
		}
	}
}

func TestRedact(t *testing.T) {
	raw, _ := os.ReadFile("../testdata/hl7-samples/ack_14_staging_msa3.hl7")
	a, _ := Parse(raw)
	r := Redact(a.Text)
	if strings.Contains(r, "Charisse") || strings.Contains(r, "Bracey") || !strings.Contains(r, "accepted into vaccination staging table") {
		t.Errorf("MSA-3 redacted to %q", r)
	}
	fault := "Invalid message: MSH|^~\\&|X\rPID|1||123^^^A^MR||Doe^Jane||20180101|F\rRXA|0|1|20260101 patient phone (415) 555-0100 born 2018-01-01"
	r = Redact(fault)
	for _, leak := range []string{"Doe", "Jane", "20180101", "555-0100", "2018-01-01"} {
		if strings.Contains(r, leak) {
			t.Errorf("%q leaks %q", r, leak)
		}
	}
	if !strings.Contains(r, "RXA|0|1") || !strings.Contains(r, "[segment removed]") {
		t.Errorf("redacted too much: %q", r)
	}
	if got := Redact("Informational error - No value was entered for RXA-10.13"); got != "Informational error - No value was entered for RXA-10.13" {
		t.Errorf("rule text changed: %q", got)
	}
}

func TestBatchACKIsClassifiedPerMessage(t *testing.T) {
	h := "MSH|^~\\&|IIS|IIS|APP|FAC|20260101||ACK^V04^ACK|1|P|2.5.1\r"
	a, err := Parse([]byte(h + "MSA|AA|M1\rMSA|AE|M2\rERR||RXA^1^5|103|E||||MESSAGE REJECTED - bad CVX\rMSA|AA|M3\r"))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.MSAs) != 3 || len(a.MSAs[1].Errors) != 1 || len(a.MSAs[0].Errors) != 0 {
		t.Fatalf("MSAs %+v", a.MSAs)
	}
	for id, want := range map[string]Outcome{"M1": Accepted, "M2": Rejected, "M3": Accepted} {
		if got, ok := a.For(id); !ok || got != want {
			t.Errorf("For(%s) = %s %v, want %s", id, got, ok, want)
		}
	}
	if _, ok := a.For("M9"); ok {
		t.Error("an ACK naming M1-M3 answers M9")
	}
	if a.Outcome != Rejected {
		t.Errorf("overall %s", a.Outcome)
	}
}

// Where the registry is is not patient data: a connection error keeps it.
func TestRedactKeepsTheEndpoint(t *testing.T) {
	for _, in := range []string{
		`connect: Post "https://cair.example.gov/CATRN-WS/IISService": dial tcp 10.20.30.40:443: connect: connection refused`,
		`read: Post "http://127.0.0.1:8931/CATRN-WS/IISService": EOF`,
		`dial tcp [::1]:8931: connect: connection refused`,
	} {
		got := Redact(in)
		for _, keep := range []string{"cair.example.gov/CATRN-WS/IISService", "10.20.30.40:443", "127.0.0.1:8931", "[::1]:8931"} {
			if strings.Contains(in, keep) && !strings.Contains(got, keep) {
				t.Errorf("Redact(%q) = %q: lost %s", in, got, keep)
			}
		}
	}
	if got := Redact(`Patient "Jane Doe" born 2018-01-01, phone 415 555 0100`); strings.Contains(got, "Jane") || strings.Contains(got, "555") || strings.Contains(got, "2018") {
		t.Errorf("patient data kept: %q", got)
	}
}
