package testplan

import (
	"errors"
	"testing"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/outbound"
)

func TestJudge(t *testing.T) {
	neg := Case{Name: "missing-pid-3.5", Expect: Expect{Field: "PID-3.5"}}
	pos := Case{Name: "new-patient", Expect: Expect{Stored: true}}
	rej := func(locs ...string) outbound.Delivery {
		a := &ack.ACK{Code: "AE", Outcome: ack.Rejected}
		for _, l := range locs {
			a.Errors = append(a.Errors, ack.ERR{Location: l, Severity: "E", Text: "MESSAGE REJECTED"})
		}
		return outbound.Delivery{ACK: a, Outcome: ack.Rejected}
	}
	for _, tc := range []struct {
		name string
		c    Case
		d    outbound.Delivery
		pass bool
	}{
		{"rejected for the field", neg, rej("PID^1^3^1^5"), true},
		{"rejected for the field, located at the field", neg, rej("PID^1^3"), true},
		{"rejected for another field", neg, rej("RXA^1^9"), false},
		{"rejected without a location", neg, rej(""), true},
		{"a warning elsewhere does not count", neg, func() outbound.Delivery {
			d := rej("RXA^1^9")
			d.ACK.Errors[0].Severity = "W"
			return d
		}(), true},
		{"stored although it should be refused", neg, outbound.Delivery{ACK: &ack.ACK{Code: "AA"}, Outcome: ack.Accepted}, false},
		{"stored", pos, outbound.Delivery{ACK: &ack.ACK{Code: "AA"}, Outcome: ack.Accepted}, true},
		{"stored with warnings", pos, outbound.Delivery{ACK: &ack.ACK{Code: "AE", Errors: []ack.ERR{{Severity: "W"}}}, Outcome: ack.AcceptedWithWarnings}, true},
		{"rejected although it should be stored", pos, rej("RXA^1^5"), false},
		{"too large", pos, outbound.Delivery{Outcome: ack.Rejected, Fault: errors.New("MessageTooLargeFault")}, false},
	} {
		r := Result{Case: tc.c}
		judge(&r, tc.d)
		if r.Passed != tc.pass || r.Why == "" {
			t.Errorf("%s: passed %v (%s), want %v", tc.name, r.Passed, r.Why, tc.pass)
		}
	}
}

func TestSelectAddsWhatACaseRefersTo(t *testing.T) {
	cs, added, err := Select([]string{"delete", "unknown-cvx"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	if len(names) != 3 || names[0] != "multi-vaccine" || names[1] != "delete" || names[2] != "unknown-cvx" || len(added) != 1 {
		t.Errorf("selected %v, added %v", names, added)
	}
	if _, _, err := Select([]string{"nope"}); err == nil {
		t.Error("an unknown case was accepted")
	}
}

func TestAlterSetsOneComponent(t *testing.T) {
	msg := []byte("MSH|^~\\&|izdrop|S1|CAIR IIS|CAIRBA|20261201||VXU^V04^VXU_V04|X1|P|2.5.1\rPID|1||MRN1^^^S1^MR||Doe^Jane\r")
	got := string(setField(setField(msg, "MSH", 11, 1, "T"), "PID", 3, 5, ""))
	want := "MSH|^~\\&|izdrop|S1|CAIR IIS|CAIRBA|20261201||VXU^V04^VXU_V04|X1|T|2.5.1\rPID|1||MRN1^^^S1||Doe^Jane\r"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
