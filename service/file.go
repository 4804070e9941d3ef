package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/internal/durable"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/transform"
	"github.com/izdrop/izdrop/watcher"
)

// process takes a claimed file as far as it can go: read, deliver every
// message, archive. A file whose messages are not all answered stays in
// work/ (pending) and is taken up again by a later pass. stalled means the
// file stopped part-way for a reason other than the registry (a lock, the
// journal, an I/O error): its patients' later messages were not looked at,
// so no newer file may be processed in this pass.
func (in *inbox) process(ctx context.Context, sc *sched, c watcher.Claimed) (sum Summary, stalled bool) {
	log := in.log.With().Str("file", c.Name).Str("claim", c.ID).Logger()
	unlock, ok, err := watcher.Lock(c.Path)
	if err != nil || !ok {
		if err != nil {
			log.Error().Err(err).Msg("cannot lock the file")
		} else {
			log.Warn().Msg("the file is locked by another process or left work/: newer files wait")
		}
		return Summary{Pending: 1}, true
	}
	defer unlock()
	j := in.s.journal
	f, err := j.GetFile(ctx, c.ID)
	if errors.Is(err, journal.ErrNotFound) {
		f = journal.File{Claim: c.ID, Inbox: in.name, Name: c.Name, WorkPath: c.Path, ClaimedAt: c.At}
		if err = j.AddFile(ctx, f); err == nil {
			f, err = j.GetFile(ctx, c.ID)
		}
	}
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}, true
	}
	switch f.State {
	case journal.Archived:
		log.Warn().Str("archive", f.ArchivePath).Msg("the journal says this file is archived, yet it is in work/: left alone")
		return Summary{}, false
	case journal.Archiving:
		return in.archive(ctx, f, c, f.Error, log), false
	}
	if f.SHA256 == "" {
		sum, size, err := fileHash(c.Path)
		if err == nil {
			err = j.SetFileHash(ctx, c.ID, sum, size)
		}
		if err != nil {
			log.Error().Err(err).Msg("cannot read the claimed file or journal its hash")
			return Summary{Pending: 1}, true
		}
		f.SHA256, f.Size = sum, size
		log.Info().Str("sha256", sum).Int64("size", size).Msg("file taken up")
	}
	if err := j.SetFile(ctx, c.ID, journal.Reading, "", "", ""); err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}, true
	}
	pending, fileErr, err := in.readAndSend(ctx, sc, f, c, log)
	if err != nil {
		log.Error().Err(err).Msg("reading stopped; the file stays in work/ and is taken up again")
		j.SetFile(context.Background(), c.ID, journal.Pending, "", "", "")
		return Summary{Pending: 1}, true
	}
	if pending {
		j.SetFile(context.Background(), c.ID, journal.Pending, "", "", "")
		log.Warn().Msg("some records wait for the registry: the file stays in work/ until they are answered")
		return Summary{Pending: 1}, false
	}
	return in.archive(ctx, f, c, fileErr, log), false
}

func fileHash(path string) (string, int64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func (in *inbox) readOptions(c watcher.Claimed) transform.Options {
	opt := in.topt
	opt.Now = in.s.opt.Now
	opt.FileDate = c.At.In(in.s.cfg.Location())
	opt.Name = c.Name
	return opt
}

// readAndSend streams the file's messages to the scheduler and waits for
// their fates. fileErr is set when the file cannot be read (any more): the
// messages started before are then finished from the journal and the file
// is filed as failed. err is a reason to try again later (an I/O error).
func (in *inbox) readAndSend(ctx context.Context, sc *sched, f journal.File, c watcher.Claimed, log zerolog.Logger) (pending bool, fileErr string, err error) {
	j := in.s.journal
	counts, err := j.Counts(ctx, f.Claim)
	if err != nil {
		return false, "", err
	}
	resumed := len(counts) > 0
	if resumed && f.SHA256 != "" {
		sum, _, err := fileHash(c.Path)
		if err != nil {
			return false, "", err
		}
		if sum != f.SHA256 {
			return in.finishFromJournal(ctx, sc, f, fmt.Sprintf("the file in work/ is not the one taken up (sha256 %s, was %s)", sum, f.SHA256), log)
		}
	}
	r, err := transform.Open(c.Path, in.readOptions(c))
	var fe *transform.FileError
	if errors.As(err, &fe) && !fe.Transient() {
		if !resumed {
			return false, fe.Error(), nil
		}
		return in.finishFromJournal(ctx, sc, f, fe.Error(), log)
	}
	if err != nil {
		return false, "", err
	}
	defer r.Close()
	if resumed {
		// The file was read before: make sure it reads the same now, so a
		// record is never put into a second message.
		why, err := in.verify(ctx, f, c)
		if err != nil {
			return false, "", err
		}
		if why != "" {
			return in.finishFromJournal(ctx, sc, f, why, log)
		}
	}
	var b batch
	var differs atomic.Bool
	for ctx.Err() == nil && !differs.Load() {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.wait()
			return false, "", err
		}
		key := m.SiteID + "\x00" + m.PatientID
		if m.PatientID == "" {
			key = fmt.Sprintf("%s\x00line %d", c.ID, m.Records[0].Line)
		}
		b.submit(ctx, sc, key, func() bool { return in.deliver(ctx, f, m, &differs) })
	}
	pending = b.wait()
	if differs.Load() {
		// verify catches it at the next pass; meanwhile no newer file may
		// overtake the records not sent.
		return false, "", errors.New("the file reads differently than when its first messages were started")
	}
	if ctx.Err() != nil {
		pending = true
	}
	return pending, "", nil
}

// verify reads a file that was read before and checks that each message
// holds the lines it held when it was started, and that no new message
// holds a line of a started one. It returns why not, if not.
func (in *inbox) verify(ctx context.Context, f journal.File, c watcher.Claimed) (string, error) {
	j := in.s.journal
	sending, err := j.SendingMessages(ctx, f.Claim)
	if err != nil {
		return "", err
	}
	unseen := make(map[int]bool, len(sending))
	for _, m := range sending {
		unseen[m.Seq] = true
	}
	r, err := transform.Open(c.Path, in.readOptions(c))
	if err != nil {
		return "", err
	}
	defer r.Close()
	for {
		m, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		first, last := m.Records[0].Line, m.Records[len(m.Records)-1].Line
		jf, jl, n, err := j.MessageSpan(ctx, f.Claim, m.Seq)
		if err != nil {
			return "", err
		}
		if n > 0 && (jf != first || jl != last || n != len(m.Records)) {
			return fmt.Sprintf("message %d now holds lines %d-%d; when it was sent it held lines %d-%d", m.Seq, first, last, jf, jl), nil
		}
		if n == 0 {
			taken, err := j.LinesIn(ctx, f.Claim, first, last)
			if err != nil {
				return "", err
			}
			if taken > 0 {
				return fmt.Sprintf("lines %d-%d now form message %d, but some were sent in another message", first, last, m.Seq), nil
			}
		}
		delete(unseen, m.Seq)
	}
	for _, m := range sending { // in message order
		if unseen[m.Seq] {
			return fmt.Sprintf("message %d, sent before, is not in the file as it reads now", m.Seq), nil
		}
	}
	return "", nil
}

// finishFromJournal is for a file that cannot be read as it was when its
// first messages were started (it became unreadable, or its profile or
// izdrop changed): the messages started are finished from the journal with
// the bytes first sent, and the file is filed as failed with why.
func (in *inbox) finishFromJournal(ctx context.Context, sc *sched, f journal.File, why string, log zerolog.Logger) (pending bool, fileErr string, err error) {
	msgs, err := in.s.journal.SendingMessages(ctx, f.Claim)
	if err != nil {
		return false, "", err
	}
	log.Error().Str("reason", why).Int("unanswered", len(msgs)).
		Msg("the file no longer reads as when its first messages were sent: those are finished from the journal, the rest is not sent, and the file goes to failed/")
	var b batch
	for _, row := range msgs {
		key := row.Site + "\x00" + row.PatientID
		if row.PatientID == "" {
			key = fmt.Sprintf("%s\x00message %d", f.Claim, row.Seq)
		}
		b.submit(ctx, sc, key, func() bool { return in.send(ctx, f, row, nil) })
	}
	pending = b.wait()
	if ctx.Err() != nil {
		pending = true
	}
	return pending, why, nil
}

// outcomeUnknown is the fate of a record whose message may have reached the
// registry but can be neither confirmed nor sent again.
const outcomeUnknown = "unknown"

var encoders = sync.Pool{New: func() any { return hl7.NewEncoder(hl7.DefaultDelimiters) }}

// deliver gives one message its outcome: skipped if it has one, resent with
// its first MSH-10 and bytes if a send was started, otherwise checked
// against what the registry already holds, journalled and sent. It reports
// whether the message now has a final outcome. differs is set when the
// journal shows the file reads differently than when it was first read.
func (in *inbox) deliver(ctx context.Context, f journal.File, m *transform.Message, differs *atomic.Bool) bool {
	j := in.s.journal
	row, err := j.GetMessage(ctx, f.Claim, m.Seq)
	switch {
	case err == nil && row.State == journal.Done:
		return true
	case err == nil:
		if len(row.Raw) == 0 {
			// Started by an izdrop that did not keep the bytes: encode them
			// again, with the same header and records.
			enc := encoders.Get().(*hl7.Encoder)
			row.Raw = append([]byte(nil), m.Encode(enc, transform.Header{ControlID: row.MSH10, Time: row.MSH7}, pick(m, row.Lines))...)
			encoders.Put(enc)
		}
	case errors.Is(err, journal.ErrNotFound):
		if ctx.Err() != nil || differs.Load() {
			return false
		}
		var ok bool
		if row, ok = in.start(ctx, f, m, differs); !ok {
			return false
		}
		if row.State == journal.Done {
			return true
		}
	default:
		in.log.Error().Err(err).Msg("journal")
		return false
	}
	if ctx.Err() != nil {
		return false
	}
	return in.send(ctx, f, row, m.Records)
}

// send delivers a started message's bytes and commits the answer. recs,
// when known, name the records in the log.
func (in *inbox) send(ctx context.Context, f journal.File, row journal.Message, recs []*transform.Record) bool {
	j := in.s.journal
	log := in.log.With().Str("file", f.Name).Str("msh10", row.MSH10).Logger()
	if len(row.Raw) == 0 {
		// Started by an izdrop that kept no bytes, in a file that no longer
		// reads as it did: it cannot be sent again as it was. Its records
		// get the outcome unknown, for a person to check in the registry,
		// rather than waiting forever.
		log.Error().Int("message", row.Seq).Ints("lines", row.Lines).
			Msg("a message sent before, whose answer was lost, cannot be sent again (its bytes were not kept): its records are marked unknown")
		issue := encodeIssues([]archive.Issue{{Source: "izdrop", Severity: "error", Code: "answer-lost",
			Text: "sent, but the registry's answer was lost, and the message cannot be sent again as it was: check the registry for this record"}})
		outs := make([]journal.Outcome, len(row.Lines))
		for i, line := range row.Lines {
			outs[i] = journal.Outcome{Line: line, Outcome: outcomeUnknown, Problems: issue}
		}
		if err := j.FinishMessage(context.Background(), f.Claim, row.Seq, outcomeUnknown, "", 0, outs); err != nil {
			log.Error().Err(err).Msg("journal")
			return false
		}
		return true
	}
	d, err := in.client.Deliver(in.s.sendCtx, row.MSH10, row.Raw)
	if err != nil {
		j.AddAttempts(context.Background(), f.Claim, row.Seq, d.Attempts)
		log.Warn().Int("attempts", d.Attempts).Str("error", ack.Redact(err.Error())).Msg("message not delivered yet; kept for the next pass")
		return false
	}
	outs := make([]journal.Outcome, len(row.Lines))
	perRecord := attribute(d, len(row.Lines))
	for i, line := range row.Lines {
		outs[i] = journal.Outcome{Line: line, Outcome: string(d.Outcome), Problems: encodeIssues(perRecord[i]), Stored: d.Outcome.Stored()}
	}
	// The answer is committed even when a stop was requested meanwhile: it
	// is the registry's, and forgetting it would mean sending again. A
	// failed commit is tried again before the message is left to be resent.
	for try := 0; ; try++ {
		err := j.FinishMessage(context.Background(), f.Claim, row.Seq, string(d.Outcome), d.Raw(), d.Attempts, outs)
		if err == nil {
			break
		}
		if try == 2 {
			log.Error().Err(err).Msg("journal: the answer could not be recorded; the message will be sent again with its MSH-10")
			return false
		}
		log.Warn().Err(err).Msg("journal: recording the answer failed; trying again")
		time.Sleep(time.Duration(try+1) * 500 * time.Millisecond)
	}
	level := zerolog.DebugLevel
	if d.Outcome == ack.Rejected {
		level = zerolog.WarnLevel
	}
	ev := log.WithLevel(level)
	if !ev.Enabled() {
		return true // nothing is logged at this level: the records are not looked up
	}
	if recs == nil {
		ev.Ints("lines", row.Lines).Str("outcome", string(d.Outcome)).Int("attempts", d.Attempts).Msg("message answered")
		return true
	}
	ev.Discard()
	for _, rec := range pick(&transform.Message{Records: recs}, row.Lines) {
		log.WithLevel(level).Int("line", rec.Line).Str("vaccination_id", rec.VaccinationID).
			Str("outcome", string(d.Outcome)).Int("attempts", d.Attempts).Msg("record answered")
	}
	return true
}

// start decides what a message carries - not the invalid records, not those
// the registry already holds with this content - and commits it, with a new
// MSH-10 and the bytes to send, before anything is sent. It returns the
// journal's row: Done when nothing is to be sent.
func (in *inbox) start(ctx context.Context, f journal.File, m *transform.Message, differs *atomic.Bool) (journal.Message, bool) {
	j := in.s.journal
	var send []*transform.Record
	jrecs := make([]journal.Record, 0, len(m.Records))
	for _, rec := range m.Records {
		jr := journal.Record{Line: rec.Line, Site: m.SiteID, PatientID: m.PatientID, VaccinationID: rec.VaccinationID,
			Action: rec.Action, Start: rec.Start, End: rec.End}
		if !rec.Valid() {
			jr.Outcome = string(ack.Invalid)
			jr.Problems = encodeIssues(validationIssues(rec, true))
			in.log.Info().Str("file", f.Name).Int("line", rec.Line).Str("vaccination_id", rec.VaccinationID).
				Str("outcome", "invalid").Str("rules", rules(rec)).Msg("record refused before sending")
		} else {
			jr.ContentHash = rec.ContentHash()
			jr.Problems = encodeIssues(validationIssues(rec, false))
			h, msh10, ok, err := j.Accepted(ctx, m.SiteID, rec.VaccinationID)
			if err != nil {
				in.log.Error().Err(err).Msg("journal")
				return journal.Message{}, false
			}
			if ok && h == jr.ContentHash && rec.VaccinationID != "" {
				jr.Outcome, jr.MSH10 = string(ack.AlreadyAccepted), msh10
				in.log.Info().Str("file", f.Name).Int("line", rec.Line).Str("vaccination_id", rec.VaccinationID).
					Str("outcome", "already_accepted").Str("msh10", msh10).Msg("record already in the registry: not sent again")
			} else {
				send = append(send, rec)
			}
		}
		jrecs = append(jrecs, jr)
	}
	msg := journal.Message{Claim: f.Claim, Seq: m.Seq, State: journal.Done}
	for _, rec := range send {
		msg.Lines = append(msg.Lines, rec.Line)
	}
	for try := 0; ; try++ {
		if len(send) > 0 {
			hdr := transform.Header{ControlID: newControlID(in.s.opt.Now()), Time: in.s.opt.Now().In(in.s.cfg.Location())}
			if try == 0 && m.ControlID != "" {
				hdr.ControlID = m.ControlID // an HL7 input's own MSH-10, unless one was sent with it before
			}
			msg.MSH10, msg.MSH7, msg.State = hdr.ControlID, hdr.Time, journal.Sending
			enc := encoders.Get().(*hl7.Encoder)
			msg.Raw = append(msg.Raw[:0], m.Encode(enc, hdr, send)...)
			encoders.Put(enc)
			for i := range jrecs {
				if jrecs[i].Outcome == "" {
					jrecs[i].MSH10 = hdr.ControlID
				}
			}
		}
		err := j.StartMessage(ctx, msg, jrecs)
		if errors.Is(err, journal.ErrDuplicateControlID) && try < 5 {
			continue
		}
		if errors.Is(err, journal.ErrLinesTaken) {
			differs.Store(true)
			in.log.Error().Str("file", f.Name).Int("message", m.Seq).Int("line", m.Records[0].Line).
				Msg("the file reads differently than when it was first read: nothing more of it is sent")
			return journal.Message{}, false
		}
		if err != nil {
			in.log.Error().Err(err).Msg("journal: the message could not be recorded; not sent")
			return journal.Message{}, false
		}
		break
	}
	// Another process may have started this message first: follow the
	// journal, not this attempt.
	row, err := j.GetMessage(ctx, f.Claim, m.Seq)
	if err != nil {
		in.log.Error().Err(err).Msg("journal")
		return journal.Message{}, false
	}
	return row, true
}

func pick(m *transform.Message, lines []int) []*transform.Record {
	want := make(map[int]bool, len(lines))
	for _, l := range lines {
		want[l] = true
	}
	var out []*transform.Record
	for _, r := range m.Records {
		if want[r.Line] {
			out = append(out, r)
		}
	}
	return out
}

func rules(rec *transform.Record) string {
	var rs []string
	for _, p := range rec.Errors() {
		rs = append(rs, p.Rule)
	}
	return strings.Join(rs, ",")
}

// validationIssues converts a record's problems; errors only when
// withErrors (an invalid record), warnings always.
func validationIssues(rec *transform.Record, withErrors bool) []archive.Issue {
	var out []archive.Issue
	for _, p := range rec.Problems {
		if p.Severity == transform.Error && !withErrors {
			continue
		}
		col := p.Column
		if col == "" {
			col = p.Where // HL7 or FHIR input: the message or resource the value came from
		}
		out = append(out, archive.Issue{Source: "izdrop", Severity: string(p.Severity), Field: p.Field, Column: col, Code: p.Rule, Text: p.Text})
	}
	return out
}

// attribute gives each record of a message the registry's errors and
// warnings about it: an ERR located in the n-th ORC, RXA or RXR group goes to
// the n-th record, any other to all of them.
func attribute(d outbound.Delivery, n int) [][]archive.Issue {
	out := make([][]archive.Issue, n)
	add := func(i int, is archive.Issue) {
		if i >= 0 && i < n {
			out[i] = append(out[i], is)
			return
		}
		for k := range out {
			out[k] = append(out[k], is)
		}
	}
	if d.ACK == nil {
		if d.Fault != nil {
			add(-1, archive.Issue{Source: "registry", Severity: "error", Code: "fault", Text: d.Fault.Error()})
		}
		return out
	}
	for _, e := range d.ACK.Errors {
		sev := "error"
		if e.Severity == "W" || e.Severity == "I" {
			sev = "warning"
		}
		code := e.Code
		if e.AppCode != "" {
			code += "/" + e.AppCode
		}
		is := archive.Issue{Source: "registry", Severity: sev, Field: e.Location, Code: code, Text: e.Text}
		parts := strings.Split(e.Location, "^")
		idx := -1
		if len(parts) > 1 && (parts[0] == "RXA" || parts[0] == "ORC" || parts[0] == "RXR") {
			if k, err := strconv.Atoi(parts[1]); err == nil {
				idx = k - 1
			}
		}
		add(idx, is)
	}
	if d.Outcome == ack.Rejected && len(d.ACK.Errors) == 0 {
		add(-1, archive.Issue{Source: "registry", Severity: "error", Code: "MSA-1 " + d.ACK.Code, Text: "rejected: " + d.ACK.Text})
	}
	return out
}

func encodeIssues(is []archive.Issue) string {
	if len(is) == 0 {
		return ""
	}
	b, _ := json.Marshal(is)
	return string(b)
}

func decodeIssues(s string) []archive.Issue {
	if s == "" {
		return nil
	}
	var is []archive.Issue
	json.Unmarshal([]byte(s), &is)
	return is
}

// archive files a file whose records all have their outcome (or that could
// not be read): reserve the target, record it, write the sidecars, move.
// Each step can be redone after a crash: a file already moved (its work/
// copy gone, its archived copy there) is only finished.
func (in *inbox) archive(ctx context.Context, f journal.File, c watcher.Claimed, fileErr string, log zerolog.Logger) Summary {
	j := in.s.journal
	bg := context.Background() // archiving is finished even when a stop was requested
	counts, err := j.Counts(bg, f.Claim)
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	open, err := j.OpenMessages(bg, f.Claim)
	if err != nil {
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	if open > 0 || counts[""] > 0 {
		// Never file a record whose fate is not known.
		log.Error().Int("unanswered_messages", open).Int("records_without_outcome", counts[""]).
			Msg("not archived: some messages wait for an answer")
		return Summary{Pending: 1}
	}
	result := archive.Done
	if fileErr != "" || counts[string(ack.Rejected)] > 0 || counts[string(ack.Invalid)] > 0 {
		result = archive.Failed
	}
	target := f.ArchivePath
	if f.State != journal.Archiving || target == "" {
		target, err = archive.Reserve(in.cfg.Archive, result, in.s.opt.Now().In(in.s.cfg.Location()), c.Name, f.Claim)
		if err != nil {
			log.Error().Err(err).Msg("cannot reserve an archive name")
			return Summary{Pending: 1}
		}
		if err := j.SetFile(bg, f.Claim, journal.Archiving, string(result), target, fileErr); err != nil {
			log.Error().Err(err).Msg("journal")
			return Summary{Pending: 1}
		}
	} else {
		result = archive.Result(f.Result)
	}
	if f.State == journal.Archiving && exists(c.Path) && exists(target) && f.SHA256 != "" {
		// A move cut short between placing the archived copy (a link or a
		// copy across file systems) and removing the work/ one.
		if sum, _, err := fileHash(target); err == nil && sum == f.SHA256 {
			if err := os.Remove(c.Path); err != nil {
				log.Error().Err(err).Msg("removing the work/ copy of a file already archived failed; retried at the next pass")
				return Summary{Pending: 1}
			}
			durable.SyncDir(filepath.Dir(c.Path))
		}
	}
	switch {
	case exists(c.Path):
		if err := in.writeSidecars(bg, f, c, target, result, fileErr, counts); err != nil {
			log.Error().Err(err).Msg("writing sidecars failed; the file stays in work/ and archiving is retried")
			return Summary{Pending: 1}
		}
		if err := archive.Move(c.Path, target); err != nil {
			log.Error().Err(err).Msg("moving the file to the archive failed; retried at the next pass")
			return Summary{Pending: 1}
		}
	case !exists(target):
		// Taken out of work/ by hand. Waiting would not bring it back: the
		// journal keeps its records' outcomes (izdrop find) and says so.
		why := "the file left work/ outside izdrop before it was archived"
		log.Error().Str("work_path", c.Path).Str("archive", target).Msg(why + "; its records' outcomes are in the journal (izdrop find)")
		if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), "", why); err != nil {
			log.Error().Err(err).Msg("journal")
			return Summary{Pending: 1}
		}
		return Summary{}
	case f.SHA256 != "":
		// Moved before a stop: make sure what is there is this file.
		sum, _, err := fileHash(target)
		if err != nil {
			log.Error().Err(err).Str("archive", target).Msg("cannot read the archived copy; retried at the next pass")
			return Summary{Pending: 1}
		}
		if sum != f.SHA256 {
			why := "the archived copy is not the file taken up (replaced by hand?)"
			log.Error().Str("archive", target).Msg(why)
			if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), target, why); err != nil {
				log.Error().Err(err).Msg("journal")
				return Summary{Pending: 1}
			}
			return Summary{}
		}
	}
	for _, m := range c.Markers {
		_, orig, _, _ := watcher.ParseClaimName(filepath.Base(m))
		to := filepath.Join(filepath.Dir(target), watcher.MarkerRenamed(c.Name, orig, filepath.Base(target)))
		if err := archive.Move(m, to); err != nil {
			log.Warn().Err(err).Str("marker", orig).Msg("marker file not archived; it stays in work/")
		}
	}
	if err := j.SetFile(bg, f.Claim, journal.Archived, string(result), target, ""); err != nil {
		// Filed, but the journal does not know: the next pass finishes it.
		log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	f.State, f.Result, f.ArchivePath = journal.Archived, string(result), target
	if err := in.src.archived(bg, c, f); err != nil {
		// Filed locally; the remote copy is returned at the next pass.
		log.Warn().Err(err).Msg("returning the file to the remote done/failed folder failed; retried at the next pass")
	}
	ev := log.Info()
	if result == archive.Failed {
		ev = log.Warn()
	}
	for _, k := range sortedKeys(counts) {
		ev = ev.Int(k, counts[k])
	}
	ev.Str("result", string(result)).Str("archive", target).Msg("file archived")
	s := Summary{Records: counts}
	if result == archive.Done {
		s.Done = 1
	} else {
		s.Failed = 1
	}
	return s
}

// finishArchiving finishes the files a stop interrupted after their move
// into the archive: their work/ copy is gone, so no listing of work/ finds
// them; the journal does.
func (in *inbox) finishArchiving(ctx context.Context) Summary {
	var sum Summary
	fs, err := in.s.journal.FilesInState(ctx, in.name, journal.Archiving)
	if err != nil {
		in.log.Error().Err(err).Msg("journal")
		return Summary{Pending: 1}
	}
	for _, f := range fs {
		if exists(f.WorkPath) {
			continue // archived by process, from work/
		}
		if in.cfg.Kind == "sftp" && !exists(f.ArchivePath) {
			continue // the remote copy is downloaded again and archived by process
		}
		markers, _ := filepath.Glob(filepath.Join(filepath.Dir(f.WorkPath), f.Claim+"--*"))
		c := watcher.Claimed{ID: f.Claim, Name: f.Name, Path: f.WorkPath, At: f.ClaimedAt, Markers: markers}
		log := in.log.With().Str("file", f.Name).Str("claim", f.Claim).Logger()
		log.Info().Msg("finishing the archiving of a file moved before a stop")
		sum.add(in.archive(ctx, f, c, f.Error, log))
	}
	return sum
}

func (in *inbox) writeSidecars(ctx context.Context, f journal.File, c watcher.Claimed, target string, result archive.Result, fileErr string, counts map[string]int) error {
	j := in.s.journal
	opt := in.readOptions(c)
	var fileWarnings []archive.Issue
	if fileErr == "" {
		if r, err := transform.Open(c.Path, opt); err == nil {
			for _, p := range r.FileProblems() {
				fileWarnings = append(fileWarnings, archive.Issue{Source: "izdrop", Severity: string(p.Severity), Code: p.Rule, Text: p.Text})
			}
			r.Close()
		}
	}
	anyACK := false
	if err := j.ACKs(ctx, f.Claim, func(string, string) error { anyACK = true; return io.EOF }); err != nil && err != io.EOF {
		return err
	}
	if anyACK {
		if err := archive.WriteAtomic(target+archive.ACKHL7, func(w io.Writer) error {
			return archive.WriteACKHL7(w, func(yield func(string, string) error) error { return j.ACKs(ctx, f.Claim, yield) })
		}); err != nil {
			return err
		}
	}
	head := archive.Head{File: c.Name, Inbox: in.name, SHA256: f.SHA256, Claim: f.Claim, ClaimedAt: f.ClaimedAt,
		ArchivedAt: in.s.opt.Now().UTC(), Result: result, Error: fileErr, Counts: counts, Warnings: fileWarnings}
	if err := archive.WriteAtomic(target+archive.ACKJSON, func(w io.Writer) error {
		return archive.WriteACKJSON(w, head, func(yield func(archive.Record) error) error {
			return j.Records(ctx, f.Claim, func(r journal.Record) error {
				errs, warns := split(decodeIssues(r.Problems))
				return yield(archive.Record{Line: r.Line, PatientID: r.PatientID, VaccinationID: r.VaccinationID, Action: r.Action,
					MSH10: r.MSH10, Outcome: r.Outcome, Errors: errs, Warnings: warns})
			})
		})
	}); err != nil {
		return err
	}
	if fileErr != "" {
		total := 0
		for _, n := range counts {
			total += n
		}
		return archive.WriteAtomic(target+archive.Error, func(w io.Writer) error {
			var err error
			if total == 0 {
				_, err = fmt.Fprintf(w, "izdrop could not read this file, so none of its records was sent.\n\n%s\n\nFix the file (or its profile in config.toml) and drop it into the inbox again.\n", fileErr)
			} else {
				_, err = fmt.Fprintf(w, "izdrop could not finish this file: it no longer reads as it did when it was first taken up "+
					"(the file could not be read, or its profile or izdrop changed meanwhile).\n\n%s\n\n"+
					"%d of its records had been handled before; their outcomes are in %s. The others were not sent.\n\n"+
					"Fix the cause and drop the file into the inbox again: records the registry already holds are not sent twice.\n",
					fileErr, total, filepath.Base(target)+archive.ACKJSON)
			}
			return err
		})
	}
	if counts[string(ack.Rejected)]+counts[string(ack.Invalid)] == 0 {
		return nil
	}
	header, err := transform.HeaderLine(c.Path, opt)
	if err != nil {
		return err
	}
	return archive.WriteAtomic(target+archive.Rejects, func(w io.Writer) error {
		return archive.WriteRejects(w, header, opt.Profile.Delimiter, func(yield func([]byte, string) error) error {
			// Records stream from the journal in line order, which is file
			// order; their bytes are copied from the file as they were.
			type row struct {
				start, end int64
				errs       string
			}
			rows := make(chan row)
			errc := make(chan error, 1)
			go func() {
				defer close(rows)
				errc <- j.Records(ctx, f.Claim, func(r journal.Record) error {
					if r.Outcome != string(ack.Rejected) && r.Outcome != string(ack.Invalid) {
						return nil
					}
					rows <- row{r.Start, r.End, rejectText(r)}
					return nil
				})
			}()
			var cur row
			err := transform.RawRows(c.Path, opt, func() (int64, int64, bool) {
				var ok bool
				cur, ok = <-rows
				return cur.start, cur.end, ok
			}, func(raw []byte) error { return yield(raw, cur.errs) })
			for range rows {
			}
			if err != nil {
				return err
			}
			return <-errc
		})
	})
}

func split(is []archive.Issue) (errs, warns []archive.Issue) {
	for _, i := range is {
		if i.Severity == "error" {
			errs = append(errs, i)
		} else {
			warns = append(warns, i)
		}
	}
	return errs, warns
}

// rejectText is the izdrop_errors column: why the row was not stored.
func rejectText(r journal.Record) string {
	var parts []string
	for _, i := range decodeIssues(r.Problems) {
		if i.Severity != "error" {
			continue
		}
		where := i.Field
		if i.Column != "" {
			where = i.Column + " (" + i.Field + ")"
		}
		src := ""
		if i.Source == "registry" {
			src = "registry: "
		}
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s%s %s: %s", src, where, i.Code, i.Text)))
	}
	if len(parts) == 0 {
		return r.Outcome
	}
	return strings.Join(parts, "; ")
}
