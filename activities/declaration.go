package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// MessageState is a message as its workflow needs to see it.
type MessageState struct {
	Number            int64
	Direction         string
	Environment       string
	EnvironmentActive bool
	AutoSend          bool
	AutoProcess       bool
	Type              string
	Subject           string
	Period            string
	Declaration       string
	Version           int
	LatestVersion     int
	Attempt           int
	Status            domain.Status
	EnvStatus         domain.Status
	Reported          bool
	DoNotSend         bool
	NeedsAction       bool
	NeedsActionReason string
	Kenmerk           string
	Replies           []pipeline.Reply
}

// LoadMessage reads where a message stands. Workflows start from it, so that a
// workflow that was lost, cancelled or terminated continues where the message is.
func (a *Activities) LoadMessage(ctx context.Context, number int64) (MessageState, error) {
	m, err := a.Store.Message(ctx, number)
	if err != nil {
		return MessageState{}, final(err)
	}
	st := MessageState{Number: m.Number, Direction: m.Direction, Type: m.Type, Subject: m.Subject, Period: m.Period,
		Version: deref(m.Version), LatestVersion: m.Latest(), Attempt: m.Attempt, Status: m.Status, EnvStatus: m.EnvStatus,
		Reported: m.ReportedStatus != nil && *m.ReportedStatus == string(m.Status), DoNotSend: m.DoNotSend,
		NeedsAction: m.NeedsAction, NeedsActionReason: m.NeedsActionReason, Kenmerk: deref(m.Kenmerk), Declaration: deref(m.DeclarationKey)}
	if m.EnvironmentID != nil {
		env, err := a.Store.EnvironmentByID(ctx, *m.EnvironmentID)
		if err != nil {
			return MessageState{}, final(err)
		}
		st.Environment, st.EnvironmentActive, st.AutoSend, st.AutoProcess = env.Name, env.Active, env.AutoSend, env.AutoProcess
	}
	replies, err := a.Store.Replies(ctx, number)
	if err != nil {
		return MessageState{}, err
	}
	if len(replies) > pipeline.MaxRepliesInState {
		replies = replies[len(replies)-pipeline.MaxRepliesInState:]
	}
	for _, r := range replies {
		st.Replies = append(st.Replies, replyView(r))
	}
	return st, nil
}

func replyView(r store.StoredReply) pipeline.Reply {
	return pipeline.Reply{EventID: r.EventID, Kenmerk: r.Kenmerk, Code: r.Code, Status: r.Status, Time: r.OccurredAt,
		Description: r.Description, ErrorCode: r.ErrorCode, Applied: r.Applied}
}

// Delivery outcomes.
const (
	OutcomeSent       = "sent"
	OutcomeSendFailed = "send_failed"
	OutcomeRefused    = "refused"
)

// DeliverResult says what became of a delivery.
type DeliverResult struct {
	Outcome string
	Kenmerk string
	Attempt int
	Reason  string
	// Recovered is set when the delivery was found at Digipoort after an
	// interrupted try, instead of being delivered again.
	Recovered bool
	// State is where the message stands afterwards, so that the workflow needs no
	// second activity to read it.
	State *MessageState
}

// Deliver sends a message to Digipoort with its number as aanleverkenmerk, at most
// once per attempt. If an earlier try of this attempt may have reached Digipoort
// (the worker died mid-call, the answer timed out), it asks Digipoort first and
// records what it finds; only when Digipoort has had UncertainWait to show the
// delivery and still does not is it delivered again.
//
// Final: the version rules refuse (outcome refused), Digipoort refuses for good
// (outcome send_failed, recorded with an F line). Transient Digipoort and database
// errors are returned for Temporal to retry.
func (a *Activities) Deliver(ctx context.Context, number int64) (DeliverResult, error) {
	defer keepAlive(ctx)()
	res, err := a.deliver(ctx, number)
	if err != nil {
		return res, err
	}
	st, err := a.LoadMessage(ctx, number)
	if err != nil {
		return res, err
	}
	res.State = &st
	return res, nil
}

func (a *Activities) deliver(ctx context.Context, number int64) (DeliverResult, error) {
	plan, err := a.Store.BeginDelivery(ctx, number)
	if err != nil {
		return DeliverResult{}, final(err)
	}
	res := DeliverResult{Attempt: plan.Attempt}
	log := a.log().WithField("message", number).WithField("attempt", plan.Attempt)
	switch {
	case plan.Refused != "":
		res.Outcome, res.Reason = OutcomeRefused, plan.Refused
		return res, nil
	case plan.Kenmerk != "":
		res.Outcome, res.Kenmerk = OutcomeSent, plan.Kenmerk
		return res, nil
	}
	id := digipoort.Identity{Nummer: plan.Subject, Type: plan.IdentityType}
	if plan.Uncertain {
		known := func(k string) bool {
			ok, err := a.Store.IsKnownKenmerk(ctx, k)
			return err != nil || ok // when in doubt, don't claim someone else's process
		}
		kenmerk, found, err := a.Digipoort.FindDelivery(ctx, plan.Berichtsoort, id, plan.Aanleverkenmerk, known)
		if err != nil {
			return res, fmt.Errorf("message %d: ask Digipoort whether the interrupted delivery arrived: %w", number, err)
		}
		if found {
			log.WithField("kenmerk", kenmerk).Info("interrupted delivery found at Digipoort; not delivering again")
			if err := a.Store.RecordDelivered(ctx, number, plan.Attempt, kenmerk, true); err != nil {
				return res, final(err)
			}
			res.Outcome, res.Kenmerk, res.Recovered = OutcomeSent, kenmerk, true
			return res, nil
		}
		if waited := time.Since(plan.StartedAt); waited < a.uncertainWait() {
			return res, fmt.Errorf("message %d: an earlier delivery (aanleverkenmerk %s) may have reached Digipoort and it does not show it yet; asking again before delivering (waited %s of %s)",
				number, plan.Aanleverkenmerk, waited.Round(time.Second), a.uncertainWait())
		}
		log.Warn("interrupted delivery not found at Digipoort after the wait; delivering")
	}
	atts, err := a.Store.Attachments(ctx, number)
	if err != nil {
		return res, err
	}
	if len(atts) == 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("message %d has no attachment to deliver", number), ErrTypeInvalid, nil)
	}
	main := atts[0]
	resp, err := a.Digipoort.Deliver(ctx, digipoort.DeliverRequest{
		Berichtsoort: plan.Berichtsoort, Aanleverkenmerk: plan.Aanleverkenmerk, Belanghebbende: id, Rol: a.rol(),
		MimeType: main.MimeType, Bestandsnaam: main.FileName, Inhoud: main.Content,
	})
	var de *digipoort.Error
	if err != nil && errors.As(err, &de) && de.Statuscode == "210" && resp.Kenmerk != "" {
		// Delivered, but Digipoort could not authenticate us: the delivery exists (it
		// has a kenmerk) and ends failed with the certificate advice.
		if rerr := a.Store.RecordDelivered(ctx, number, plan.Attempt, resp.Kenmerk, false); rerr != nil {
			return res, final(rerr)
		}
		at := resp.StatusTime
		if at.IsZero() {
			at = resp.Aangeleverd
		}
		if _, rerr := a.Store.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode(resp.Kenmerk, "210", at)}); rerr != nil {
			return res, rerr
		}
		res.Outcome, res.Kenmerk, res.Reason = OutcomeSent, resp.Kenmerk, err.Error()
		return res, nil
	}
	if err != nil && digipoort.IsFinal(err) && digipoort.MayHaveArrived(err) {
		// Not a refusal: the answer could not be trusted. The retry asks Digipoort
		// whether the delivery arrived before anything is delivered again.
		log.WithError(err).Warn("the answer to a delivery could not be trusted; looking it up at Digipoort")
		n := number
		if lerr := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: store.StepSend, Level: store.LevelError,
			Description: fmt.Sprintf("the answer to the delivery of message %d could not be trusted: %v", number, err),
			Information: "Koerier does not deliver again before it has asked Digipoort whether this delivery arrived; the message is not lost",
			DedupeKey:   fmt.Sprintf("untrusted-answer/%d/%d", number, plan.Attempt)}); lerr != nil {
			return res, lerr
		}
		return res, fmt.Errorf("deliver message %d: %w", number, err)
	}
	if err != nil {
		if digipoort.IsFinal(err) {
			log.WithError(err).Warn("Digipoort refused the delivery")
			if rerr := a.Store.RecordSendFailed(ctx, number, plan.Attempt, err.Error()); rerr != nil {
				return res, rerr
			}
			res.Outcome, res.Reason = OutcomeSendFailed, err.Error()
			return res, nil
		}
		return res, fmt.Errorf("deliver message %d: %w", number, err)
	}
	if err := a.Store.RecordDelivered(ctx, number, plan.Attempt, resp.Kenmerk, false); err != nil {
		return res, final(err)
	}
	log.WithField("kenmerk", resp.Kenmerk).Info("delivered")
	res.Outcome, res.Kenmerk = OutcomeSent, resp.Kenmerk
	return res, nil
}

func (a *Activities) rol() string {
	if a.Config.Rol != "" {
		return a.Config.Rol
	}
	return "Bedrijf"
}

func (a *Activities) uncertainWait() time.Duration {
	if a.Config.UncertainWait > 0 {
		return a.Config.UncertainWait
	}
	return 10 * time.Minute
}

// RecordDeliveryError notes that delivery could not be completed for now; the message
// stays due. Idempotent: it only updates the attempt's last error and logs.
func (a *Activities) RecordDeliveryError(ctx context.Context, number int64, attempt int, reason string) error {
	return final(a.Store.RecordDeliveryError(ctx, number, attempt, reason))
}

// LogRefusal writes the F line for a delivery the version rules refused.
func (a *Activities) LogRefusal(ctx context.Context, number int64, attempt int, reason string) error {
	n := number
	return final(a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: store.StepSend, Level: store.LevelError,
		Description: fmt.Sprintf("message %d not sent: %s", number, reason),
		DedupeKey:   fmt.Sprintf("refused/%d/%d/%s", number, attempt, reason)}))
}

// Process applies the message's replies to its environment's view.
func (a *Activities) Process(ctx context.Context, number int64) (store.ProcessResult, error) {
	res, err := a.Store.Process(ctx, number)
	return res, final(err)
}

// Report tells the environment the final outcome: an I line for accepted, an F line
// with the reason and what to do for a failure. Idempotent.
func (a *Activities) Report(ctx context.Context, number int64) (domain.Status, error) {
	st, err := a.Store.Report(ctx, number)
	return st, final(err)
}

// MarkNeedsAction flags a message for an operator with an F line.
func (a *Activities) MarkNeedsAction(ctx context.Context, number int64, reason, dedupe string) error {
	return final(a.Store.MarkNeedsAction(ctx, number, reason, dedupe))
}

// Restore puts a failed message back to ready-to-resend. A refusal (old version, not
// failed) is final and says why.
func (a *Activities) Restore(ctx context.Context, number int64, who string) (store.RestoreResult, error) {
	res, err := a.Store.Restore(ctx, number, who)
	return res, final(err)
}

// AssignEnvironment moves a message of a removed environment (rule 9).
func (a *Activities) AssignEnvironment(ctx context.Context, number int64, sig pipeline.AssignSignal) error {
	return final(a.Store.AssignEnvironment(ctx, number, sig.Environment, sig.Resolve, sig.By))
}

// LogLine is a line a workflow writes to the communication log.
type LogLine struct {
	Message     int64
	Step        string
	Level       string
	Description string
	Information string
	// DedupeKey keeps a retried write single.
	DedupeKey string
}

// WriteLog writes a line of the communication log for a workflow.
func (a *Activities) WriteLog(ctx context.Context, l LogLine) error {
	e := store.LogEntry{Step: l.Step, Level: l.Level, Description: l.Description, Information: l.Information, DedupeKey: l.DedupeKey}
	if l.Message != 0 {
		e.MessageNumber = &l.Message
	}
	return final(a.Store.WriteLog(ctx, e))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
