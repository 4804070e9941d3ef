// Sending: what a message carries, journalled before it is sent, and the
// registry's answer, journalled before its records are reported.

package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/izdrop/izdrop/ack"
	"github.com/izdrop/izdrop/archive"
	"github.com/izdrop/izdrop/hl7"
	"github.com/izdrop/izdrop/journal"
	"github.com/izdrop/izdrop/outbound"
	"github.com/izdrop/izdrop/transform"
)

// outcomeUnknown is the fate of a record whose message may have reached the
// registry but can be neither confirmed nor sent again.
const outcomeUnknown = "unknown"

var encoders = sync.Pool{New: func() any { return hl7.NewEncoder(hl7.DefaultDelimiters) }}

// deliver gives one message its outcome: skipped if it has one, resent with
// its first MSH-10 and bytes if a send was started, otherwise checked
// against what the registry already holds, journalled and sent. It calls
// finish, once, with whether the message now has a final outcome (see
// send). differs is set when the journal shows the file reads differently
// than when it was first read.
func (in *inbox) deliver(ctx context.Context, f journal.File, m *transform.Message, differs *atomic.Bool, finish func(final bool)) {
	j := in.s.journal
	row, err := j.GetMessage(ctx, f.Claim, m.Seq)
	switch {
	case err == nil && row.State == journal.Done:
		finish(true)
		return
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
			finish(false)
			return
		}
		var ok bool
		if row, ok = in.start(ctx, f, m, differs); !ok {
			finish(false)
			return
		}
		if row.State == journal.Done {
			finish(true)
			return
		}
	default:
		in.log.Error().Err(err).Msg("journal")
		finish(false)
		return
	}
	if ctx.Err() != nil {
		finish(false)
		return
	}
	in.send(ctx, f, row, m.Records, finish)
}

// send delivers a started message's bytes and commits the answer. recs,
// when known, name the records in the log. It calls finish, once, with
// whether the message now has a final outcome: at once when it has none,
// or, once it has been answered, after the answer is committed - from
// another goroutine, so that the caller's worker is free for another
// patient's message while the commit waits for the disk.
func (in *inbox) send(ctx context.Context, f journal.File, row journal.Message, recs []*transform.Record, finish func(final bool)) {
	if len(row.Raw) == 0 {
		finish(in.unsendable(f, row))
		return
	}
	d, err := in.client.Deliver(in.s.sendCtx, row.MSH10, row.Raw)
	if err != nil {
		why := ack.Redact(err.Error())
		in.ep.noteRefusal(err)
		in.s.journal.AddAttempts(context.Background(), f.Claim, row.Seq, d.Attempts, waitReason(err))
		if !errors.Is(err, outbound.ErrCredentialsRefused) {
			in.noteUndelivered(why)
		}
		in.log.Debug().Str("file", f.Name).Str("msh10", row.MSH10).Int("attempts", d.Attempts).Str("error", why).
			Msg("message not delivered yet; kept for the next pass")
		finish(false)
		return
	}
	go func() { finish(in.answered(f, row, recs, d)) }()
}

// unsendable gives the records of a message that was started by an izdrop
// that kept no bytes, in a file that no longer reads as it did, the outcome
// unknown: it cannot be sent again as it was, and a person is to check the
// registry for them rather than have them wait forever.
func (in *inbox) unsendable(f journal.File, row journal.Message) bool {
	j := in.s.journal
	log := in.log.With().Str("file", f.Name).Str("msh10", row.MSH10).Logger()
	log.Error().Int("message", row.Seq).Ints("lines", row.Lines).
		Msg("a message sent before, whose answer was lost, cannot be sent again (its bytes were not kept): its records are marked unknown")
	issue := encodeIssues([]archive.Issue{{Source: "izdrop", Severity: "error", Code: "answer-lost",
		Text: "sent, but the registry's answer was lost, and the message cannot be sent again as it was: check the registry for this record"}})
	outs := make([]journal.Outcome, len(row.Lines))
	for i, line := range row.Lines {
		outs[i] = journal.Outcome{Line: line, Outcome: outcomeUnknown, Problems: issue}
	}
	if err := j.FinishMessage(context.Background(), "", f.Claim, row.Seq, outcomeUnknown, "", 0, outs); err != nil {
		log.Error().Err(err).Msg("journal")
		return false
	}
	return true
}

// answered commits a delivered message's answer and logs it. It reports
// whether the answer is committed (the message's outcome is final).
func (in *inbox) answered(f journal.File, row journal.Message, recs []*transform.Record, d outbound.Delivery) bool {
	j := in.s.journal
	log := in.log.With().Str("file", f.Name).Str("msh10", row.MSH10).Logger()
	outs := make([]journal.Outcome, len(row.Lines))
	perRecord := attribute(d, len(row.Lines))
	for i, line := range row.Lines {
		outs[i] = journal.Outcome{Line: line, Outcome: string(d.Outcome), Problems: encodeIssues(perRecord[i]), Stored: d.Outcome.Stored()}
	}
	// The answer is committed even when a stop was requested meanwhile: it
	// is the registry's, and forgetting it would mean sending again. A
	// failed commit is tried again before the message is left to be resent.
	for try := 0; ; try++ {
		err := j.FinishMessage(context.Background(), in.ep.registry, f.Claim, row.Seq, string(d.Outcome), d.Raw(), d.Attempts, outs)
		if try == 0 && d.Attempts > 1 {
			in.s.metrics.retries.WithLabelValues(in.ep.name).Add(float64(d.Attempts - 1))
		}
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
	p, ok := in.prepare(ctx, f, m)
	if !ok {
		return journal.Message{}, false
	}
	for try := 0; ; try++ {
		if try > 0 {
			p.newControlID(in, false)
		}
		err := j.StartMessage(ctx, p.msg, p.recs)
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
			if !errors.Is(err, journal.ErrLockLost) { // the pass stops: said once
				in.log.Error().Err(err).Msg("journal: the message could not be recorded; not sent")
			}
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

// started is a message made ready to journal: its row, its records, and
// the transform message it comes from.
type started struct {
	file string // its name, for the log
	m    *transform.Message
	msg  journal.Message
	recs []journal.Record
	send []*transform.Record // the records it carries
}

// prepare decides what a message carries - not the invalid records, not
// those the registry already holds with this content - and encodes it
// under a new MSH-10 (an HL7 input's own, if it has one). Nothing is
// journalled yet.
func (in *inbox) prepare(ctx context.Context, f journal.File, m *transform.Message) (*started, bool) {
	p := &started{file: f.Name, m: m, recs: make([]journal.Record, 0, len(m.Records))}
	held, err := in.accepted(ctx, m)
	if err != nil {
		in.log.Error().Err(err).Msg("journal")
		return nil, false
	}
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
			if a, ok := held[rec.VaccinationID]; ok && a.Hash == jr.ContentHash && rec.VaccinationID != "" {
				jr.Outcome, jr.MSH10 = string(ack.AlreadyAccepted), a.MSH10
				in.log.Info().Str("file", f.Name).Int("line", rec.Line).Str("vaccination_id", rec.VaccinationID).
					Str("outcome", "already_accepted").Str("msh10", a.MSH10).Str("endpoint", in.ep.name).Msg("record already in this registry: not sent again")
			} else {
				p.send = append(p.send, rec)
			}
		}
		p.recs = append(p.recs, jr)
	}
	p.msg = journal.Message{Claim: f.Claim, Seq: m.Seq, State: journal.Done}
	for _, rec := range p.send {
		p.msg.Lines = append(p.msg.Lines, rec.Line)
	}
	if len(p.send) > 0 {
		p.newControlID(in, true)
	}
	return p, true
}

// accepted looks up, in one query, what the endpoint's registry holds for
// the vaccination ids of a message's valid records.
func (in *inbox) accepted(ctx context.Context, m *transform.Message) (map[string]journal.Acceptance, error) {
	ids := make([]string, 0, len(m.Records))
	for _, rec := range m.Records {
		if rec.Valid() && rec.VaccinationID != "" {
			ids = append(ids, rec.VaccinationID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return in.s.journal.AcceptedAll(ctx, in.ep.registry, m.SiteID, ids)
}

// newControlID gives the message a new MSH-10 (first, an HL7 input's own,
// unless one was sent with it before) and encodes it under it. A message
// over the endpoint's size cap is never sent: its records are refused.
func (p *started) newControlID(in *inbox, first bool) {
	if len(p.send) == 0 {
		return
	}
	m := p.m
	hdr := transform.Header{ControlID: newControlID(in.s.opt.Now()), Time: in.s.opt.Now().In(in.s.loc)}
	if first && m.ControlID != "" {
		hdr.ControlID = m.ControlID // an HL7 input's own MSH-10, unless one was sent with it before
	}
	p.msg.MSH10, p.msg.MSH7, p.msg.State = hdr.ControlID, hdr.Time, journal.Sending
	enc := encoders.Get().(*hl7.Encoder)
	p.msg.Raw = append(p.msg.Raw[:0], m.Encode(enc, hdr, p.send)...)
	encoders.Put(enc)
	if limit := in.maxMessageBytes(); len(p.msg.Raw) > limit {
		// Never sent: the registry would answer with a fault (or
		// choke), and nothing about it would get better by retrying.
		issue := encodeIssues([]archive.Issue{{Source: "izdrop", Severity: "error", Code: "message-too-large",
			Text: fmt.Sprintf("the message for these records would be %d bytes; the limit is %d (max_message_bytes)", len(p.msg.Raw), limit)}})
		for i := range p.recs {
			if p.recs[i].Outcome == "" {
				p.recs[i].Outcome, p.recs[i].Problems = string(ack.Invalid), issue
			}
		}
		in.log.Warn().Str("file", p.file).Int("message", m.Seq).Int("line", m.Records[0].Line).Int("bytes", len(p.msg.Raw)).
			Msg("message too large: its records are refused, not sent")
		p.send, p.msg.Raw, p.msg.Lines, p.msg.MSH10, p.msg.State = nil, nil, nil, "", journal.Done
	}
	for i := range p.recs {
		if p.recs[i].Outcome == "" {
			p.recs[i].MSH10 = hdr.ControlID
		}
	}
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

// waitReason says, for the journal and the waiting note, why a message has
// no answer yet. It never holds patient data: transport and registry
// errors are redacted.
func waitReason(err error) string {
	switch {
	case errors.Is(err, outbound.ErrCredentialsRefused):
		return "registry refused our credentials (SecurityFault): fix the password or settings, then run `izdrop ping -auth`"
	case errors.Is(err, outbound.ErrBreakerOpen):
		return "the registry is unreachable (circuit breaker open): " + ack.Redact(err.Error())
	}
	return ack.Redact(err.Error())
}

// maxMessageBytes is the endpoint's cap on one message.
func (in *inbox) maxMessageBytes() int {
	if e, ok := in.s.cfg.Endpoints[in.cfg.Endpoint]; ok && e.MaxMessageBytes > 0 {
		return e.MaxMessageBytes
	}
	return 64 << 10
}
