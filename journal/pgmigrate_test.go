package journal

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A SQLite journal copied into PostgreSQL reads the same there - files,
// messages with the bytes of those waiting, records, what each registry
// holds, refusals, test plan runs, endpoint states - and the PostgreSQL
// journal carries on from it: the waiting message is answered, new files
// get numbers of their own. A journal not empty is not copied into.
func TestCopyToPostgres(t *testing.T) {
	ctx := context.Background()
	src := sqliteBackend(t).open(t).(*Journal)
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	hash := strings.Repeat("0f", 32)
	for i, c := range []string{"C1", "C2"} {
		src.AddFile(ctx, File{Claim: c, Inbox: "clinic", Name: c + ".csv", WorkPath: "/w/" + c, ClaimedAt: at})
		src.SetFileHash(ctx, c, "abc", 10)
		recs := []Record{
			{Line: 2, Site: "S", PatientID: "P" + c, VaccinationID: "V" + c, Action: "A", ContentHash: hash, Start: 10, End: 20},
			{Line: 3, Site: "S", PatientID: "P" + c, VaccinationID: "W" + c, Action: "A", Outcome: "invalid", Problems: `[{"rule":"lot-missing"}]`},
		}
		m := Message{Claim: c, Seq: 1, MSH10: fmt.Sprint("IZ", i), MSH7: at, Lines: []int{2}, Raw: []byte("MSH|" + c), State: Sending}
		if err := src.StartMessage(ctx, m, recs); err != nil {
			t.Fatal(err)
		}
	}
	sandbox := "MSH|^~\\&|CAIR IIS|CAIR IIS|izdrop 1.0|DEMO01|20261130202318-0800||ACK^V04^ACK|SBX1|P|2.5.1|||NE|NE|||||Z23^CDCPHINVS|CAIR IIS|DEMO01\rMSA|AA|IZ0\r"
	src.FinishMessage(ctx, "R1", "C1", 1, "accepted", sandbox, 2, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}})
	src.AddAttempts(ctx, "C2", 1, 3, "timeout")
	src.SetFile(ctx, "C1", Archived, "failed", "/a/failed/C1.csv", "")
	src.SetRefused(ctx, Refusal{Registry: "R2", Fingerprint: "fp", Reason: "SecurityFault", At: at})
	src.AddTestplanRun(ctx, TestplanRun{Endpoint: "cair", Registry: "R1", Environment: "staging", Site: "DEMO01", At: at, Cases: 12})
	src.SetEndpointState(ctx, EndpointState{Name: "reg", Registry: "R1", State: "ok", Since: at})

	pb := postgresBackend(t)
	dst := pb.open(t).(*PG)
	n, err := CopyToPostgres(ctx, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if n.Files != 2 || n.Messages != 2 || n.Records != 4 || n.Accepted != 1 || n.Registries != 1 {
		t.Errorf("copied %+v", n)
	}
	// What each reads, compared through Store.
	for _, c := range []string{"C1", "C2"} {
		fs, _ := src.GetFile(ctx, c)
		fd, err := dst.GetFile(ctx, c)
		fs.UpdatedAt, fd.UpdatedAt = fs.UpdatedAt.Truncate(time.Microsecond), fd.UpdatedAt.Truncate(time.Microsecond)
		if err != nil || !reflect.DeepEqual(fs, fd) {
			t.Errorf("file %s:\n sqlite   %+v\n postgres %+v %v", c, fs, fd, err)
		}
		ms, _ := src.GetMessage(ctx, c, 1)
		md, err := dst.GetMessage(ctx, c, 1)
		if len(ms.Raw) == 0 && len(md.Raw) == 0 {
			ms.Raw, md.Raw = nil, nil // no bytes, however each says it
		}
		if err != nil || !reflect.DeepEqual(ms, md) {
			t.Errorf("message of %s:\n sqlite   %+v\n postgres %+v %v", c, ms, md, err)
		}
		var rs, rd []Record
		src.Records(ctx, c, func(r Record) error { rs = append(rs, r); return nil })
		dst.Records(ctx, c, func(r Record) error { rd = append(rd, r); return nil })
		if !reflect.DeepEqual(rs, rd) || len(rd) != 2 {
			t.Errorf("records of %s:\n sqlite   %+v\n postgres %+v", c, rs, rd)
		}
	}
	if h, msh10, ok, _ := Accepted(ctx, dst, "R1", "S", "VC1"); !ok || h != hash || msh10 != "IZ0" {
		t.Errorf("accepted %q %q %v", h, msh10, ok)
	}
	if rs, _ := dst.RecordsByMSH10(ctx, "IZ0"); len(rs) != 1 || rs[0].VaccinationID != "VC1" {
		t.Errorf("by MSH-10: %+v", rs)
	}
	if r, ok, _ := dst.Refused(ctx, "R2"); !ok || !r.At.Equal(at) {
		t.Errorf("refusal %+v %v", r, ok)
	}
	if last, _, ok, _, _ := dst.LastTestplanRun(ctx, "staging"); !ok || last.Cases != 12 || !last.At.Equal(at) {
		t.Errorf("test plan run %+v %v", last, ok)
	}
	if st, _ := dst.EndpointStates(ctx); st["reg"].State != "ok" || !st["reg"].Since.Equal(at) {
		t.Errorf("endpoint states %+v", st)
	}
	// PostgreSQL carries on.
	if err := dst.FinishMessage(ctx, "R1", "C2", 1, "accepted", "MSA|AA|IZ1", 1, []Outcome{{Line: 2, Outcome: "accepted", Stored: true}}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := Accepted(ctx, dst, "R1", "S", "VC2"); !ok {
		t.Error("the waiting message's answer was not kept")
	}
	dst.AddFile(ctx, File{Claim: "C3", Inbox: "clinic", Name: "C3.csv", WorkPath: "/w/C3", ClaimedAt: at})
	if err := dst.StartMessage(ctx, Message{Claim: "C3", Seq: 1, MSH10: "IZ3", Lines: []int{2}, State: Sending},
		[]Record{{Line: 2, Site: "S", VaccinationID: "V3"}}); err != nil {
		t.Fatal(err)
	}
	if c, _ := dst.Counts(ctx, "C1"); c["accepted"] != 1 || c["invalid"] != 1 || len(c) != 2 {
		t.Errorf("a new file's rows went to an old one: %v", c)
	}
	if _, err := CopyToPostgres(ctx, src, dst); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("copy into a journal not empty: %v", err)
	}
}
