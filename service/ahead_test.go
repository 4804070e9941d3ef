package service_test

import (
	"testing"

	"github.com/izdrop/izdrop/sandbox"
)

// A patient whose message in an earlier file got no answer in this pass is
// held back in the later files of the pass too: the later file's copy of
// the same record is not journalled under a new MSH-10 before the first is
// answered, so the registry gets it once.
func TestABlockedPatientIsNotSentAheadFromALaterFile(t *testing.T) {
	f := newFixture(t, "", sandbox.Faults{FailMatching: "MRN80000"})
	f.drop(t, "a.csv", patients(t, 1))
	f.drop(t, "b.csv", patients(t, 3)) // the same patient and dose, and two others
	if sum := runOnce(t, f); sum.Pending == 0 {
		t.Fatalf("first run: %+v", sum)
	}
	f.sb.SetFaults(sandbox.Faults{})
	sum := runOnce(t, f)
	if sum.Pending != 0 || sum.Records["already_accepted"] != 1 {
		t.Errorf("second run: %+v", sum)
	}
	receivedOnce(t, f.sb)
}
