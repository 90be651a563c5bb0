package activities

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// LoadMessage reads where a message stands. Workflows start from it, so that a
// workflow that was lost, cancelled or terminated continues where the message is.
func (a *Activities) LoadMessage(ctx context.Context, number int64) (pipeline.Message, error) {
	m, err := a.Store.Declaration(ctx, number)
	return m, final(err)
}

// Deliver sends a message to Digipoort with its aanleverkenmerk, at most once per
// attempt. If an earlier try of this attempt may have reached Digipoort (the worker
// died mid-call, the answer timed out), it looks the delivery up instead and adopts
// what it finds; when the look-up cannot tell after UncertainWait, the message needs
// an operator's decision (outcome uncertain). It never delivers again on its own.
//
// Final: the version rules refuse (outcome refused), Digipoort refuses for good
// (outcome send_failed, recorded with an F line). Transient Digipoort and database
// errors are returned for Temporal to retry.
func (a *Activities) Deliver(ctx context.Context, number int64) (pipeline.DeliverResult, error) {
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

func (a *Activities) deliver(ctx context.Context, number int64) (res pipeline.DeliverResult, err error) {
	plan, err := a.Store.BeginDelivery(ctx, number)
	if err != nil {
		return pipeline.DeliverResult{}, final(err)
	}
	defer func() { a.countDelivery(plan, res, err) }()
	res = pipeline.DeliverResult{Attempt: plan.Attempt}
	switch {
	case plan.Refused != "":
		res.Outcome, res.Reason = pipeline.OutcomeRefused, plan.Refused
		return res, nil
	case plan.Kenmerk != "":
		res.Outcome, res.Kenmerk = pipeline.OutcomeSent, plan.Kenmerk
		return res, nil
	case plan.Wait != "":
		res.Outcome, res.Reason = pipeline.OutcomeWaiting, plan.Wait
		n := number
		return res, a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelInfo,
			Description: fmt.Sprintf("message %d not sent yet: %s", number, plan.Wait),
			DedupeKey:   fmt.Sprintf("waiting/%d/%d/%s", number, plan.Attempt, plan.Wait)})
	}
	log := a.log().WithFields(logrus.Fields{"message": number, "attempt": plan.Attempt})
	switch plan.Channel {
	case domain.ChannelEmail:
		return a.deliverMail(ctx, plan, log)
	case domain.ChannelBank:
		return a.deliverPayment(ctx, plan, log)
	}
	if plan.Uncertain {
		found, undecided, err := a.lookUpUncertain(ctx, plan, log)
		switch {
		case err != nil:
			return res, err
		case found != "":
			res.Outcome, res.Kenmerk, res.Recovered = pipeline.OutcomeSent, found, true
		default:
			res.Outcome, res.Reason = pipeline.OutcomeUncertain, undecided
		}
		return res, nil
	}
	atts, err := a.Store.Attachments(ctx, number)
	if err != nil {
		return res, err
	}
	if len(atts) == 0 {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("message %d has no attachment to deliver", number), pipeline.ErrTypeInvalid, nil)
	}
	var p proofs
	resp, err := a.call(p.recording(ctx), plan, atts)
	if kerr := a.keepProofs(ctx, number, plan.Attempt, resp.Kenmerk, &p); kerr != nil {
		a.proofLost(ctx, number, plan.Attempt, kerr)
	}
	if err != nil {
		return a.deliveryFailed(ctx, plan, resp, err, log)
	}
	if err := a.Store.RecordDelivered(ctx, number, plan.Attempt, resp.Kenmerk, ""); err != nil {
		return res, final(err)
	}
	log.WithField("kenmerk", resp.Kenmerk).Info("delivered")
	res.Outcome, res.Kenmerk = pipeline.OutcomeSent, resp.Kenmerk
	return res, nil
}

// clockSkew widens the window in which a process may be the lost delivery: Digipoort's
// clock and the database's need not agree to the second.
const clockSkew = 2 * time.Minute

// lookUpUncertain asks Digipoort whether an interrupted try of this attempt arrived
// (rule 11): which processes of the message's berichtsoort and subject since the try
// began are not Koerier's (domain.ChooseDelivery decides). It returns the kenmerk it
// adopted (and records it); an error (retried) while Digipoort may still not show the
// process; or, once the wait is over and it cannot decide, what it found: the message
// then needs an operator, and nothing is delivered again on its own.
func (a *Activities) lookUpUncertain(ctx context.Context, plan store.DeliveryPlan, log logrus.FieldLogger) (kenmerk, undecided string, err error) {
	a.metrics().UncertainLookedUp(plan.Channel)
	known := func(k string) (bool, error) {
		found, err := a.Store.KnownKenmerken(ctx, []string{k})
		return found[k], err
	}
	found, err := a.Digipoort.DeliveryCandidates(ctx, plan.Berichtsoort, identity(plan), plan.StartedAt.Add(-clockSkew), known)
	if err != nil {
		return "", "", fmt.Errorf("message %d: ask Digipoort whether the interrupted delivery arrived: %w", plan.Number, err)
	}
	cands := make([]domain.DeliveryCandidate, len(found))
	for i, c := range found {
		cands[i] = domain.DeliveryCandidate{Kenmerk: c.Kenmerk, Started: c.Started, Aanleverkenmerk: c.Aanleverkenmerk}
	}
	if k, why, ok := domain.ChooseDelivery(plan.Aanleverkenmerk, cands); ok {
		log.WithField("kenmerk", k).Info("interrupted delivery found at Digipoort; not delivering again")
		return k, "", final(a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, k, why))
	}
	// The wait is measured by the database's clock (plan.OpenFor), like the time the
	// delivery started: a worker whose clock runs ahead must not cut it short.
	if plan.OpenFor < a.Config.UncertainWait {
		// The same words every time: after the retries they become one F line.
		log.WithFields(logrus.Fields{"candidates": len(cands), "open_for": plan.OpenFor.Round(time.Second)}).Info("looking the delivery up again")
		return "", "", fmt.Errorf("message %d: an earlier delivery (aanleverkenmerk %s) may have reached Digipoort and the look-up cannot tell yet; "+
			"Koerier asks again until %s have passed since it started, then asks an operator", plan.Number, plan.Aanleverkenmerk, a.Config.UncertainWait)
	}
	undecided = describeUncertain(plan, cands)
	log.WithField("candidates", len(cands)).Warn("the outcome of an interrupted delivery cannot be decided; an operator decides")
	dedupe := fmt.Sprintf("uncertain/%d/%d/%d", plan.Number, plan.Attempt, len(cands))
	return "", undecided, final(a.Store.MarkNeedsAction(ctx, plan.Number, undecided, dedupe))
}

// describeUncertain is the needs-action reason of an undecided delivery: what was
// found, and the two decisions an operator can make.
func describeUncertain(plan store.DeliveryPlan, cands []domain.DeliveryCandidate) string {
	found := "Digipoort shows no process of it"
	if len(cands) > 0 {
		var list []string
		for _, c := range cands {
			list = append(list, fmt.Sprintf("%s (started %s)", c.Kenmerk, c.Started.UTC().Format(time.RFC3339)))
		}
		found = fmt.Sprintf("Digipoort shows %d processes for %s %s since then that are not Koerier's: %s", len(cands), plan.Berichtsoort,
			plan.Subject, strings.Join(list, ", "))
	}
	return fmt.Sprintf("%s%s%d (aanleverkenmerk %s, started %s) has no known outcome: %s. Koerier does not deliver "+
		"again on its own (that could file the return twice). Decide: `starter delivery adopt %d <kenmerk>` if one of them is this "+
		"delivery, or `starter delivery redeliver %d` if it did not arrive (or send the resolve-delivery signal in the Web UI)",
		domain.DeliveryTrouble, store.UndecidedDelivery, plan.Number, plan.Aanleverkenmerk, plan.StartedAt.UTC().Format(time.RFC3339), found,
		plan.Number, plan.Number)
}

// identity is the belanghebbende the delivery is about, as Digipoort names it: the identity
// type stored with the message at queue time, and the number its stored subject makes for that
// type ("Identity of the belanghebbende" in docs/rules.md), so that a change of settings never
// changes a message in flight, and the look-up of a lost answer asks for what was sent.
func identity(plan store.DeliveryPlan) digipoort.Identity {
	return digipoort.Identity{Nummer: domain.IdentityNumber(plan.IdentityType, plan.Subject), Type: plan.IdentityType}
}

// call makes the delivery itself: the message's first file is the declaration (berichtInhoud),
// the others go as berichtBijlagen. store.Queue accepted more than one file only for a type
// whose process takes attachments ("Further files" in docs/rules.md), so what was queued is
// sent whole.
func (a *Activities) call(ctx context.Context, plan store.DeliveryPlan, files []store.Attachment) (digipoort.DeliverResponse, error) {
	main := files[0]
	req := digipoort.DeliverRequest{
		Berichtsoort: plan.Berichtsoort, Aanleverkenmerk: plan.Aanleverkenmerk, Belanghebbende: identity(plan), Rol: a.Config.Rol,
		MimeType: main.MimeType, Bestandsnaam: main.FileName, Inhoud: main.Content,
	}
	for _, f := range files[1:] {
		req.Bijlagen = append(req.Bijlagen, digipoort.Bijlage{MimeType: f.MimeType, Bestandsnaam: f.FileName, Inhoud: f.Content})
	}
	return a.Digipoort.Deliver(ctx, req)
}

// deliveryFailed decides what a failed call means: delivered but not authenticated
// (210), an answer that cannot be trusted (looked up on the retry), a final refusal,
// or transient trouble (retried).
func (a *Activities) deliveryFailed(
	ctx context.Context, plan store.DeliveryPlan, resp digipoort.DeliverResponse, err error, log logrus.FieldLogger,
) (pipeline.DeliverResult, error) {
	res := pipeline.DeliverResult{Attempt: plan.Attempt}
	var de *digipoort.Error
	switch {
	case errors.As(err, &de) && de.Statuscode == "210" && resp.Kenmerk != "":
		// Delivered, but Digipoort could not authenticate us: the delivery exists (it
		// has a kenmerk) and ends failed with the certificate advice.
		if rerr := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, resp.Kenmerk, ""); rerr != nil {
			return res, final(rerr)
		}
		at := resp.StatusTime
		if at.IsZero() {
			at = resp.Aangeleverd
		}
		if _, rerr := a.Store.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode(resp.Kenmerk, "210", at)}); rerr != nil {
			return res, rerr
		}
		res.Outcome, res.Kenmerk, res.Reason = pipeline.OutcomeSent, resp.Kenmerk, err.Error()
		return res, nil
	case digipoort.IsFinal(err) && digipoort.MayHaveArrived(err):
		// Not a refusal: the answer could not be trusted. The retry asks Digipoort
		// whether the delivery arrived before anything is delivered again.
		log.WithError(err).Warn("the answer to a delivery could not be trusted; looking it up at Digipoort")
		n := plan.Number
		if lerr := a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
			Description: fmt.Sprintf("the answer to the delivery of message %d could not be trusted: %v", plan.Number, err),
			Information: "Koerier does not deliver again before it has asked Digipoort whether this delivery arrived; the message is not lost",
			DedupeKey:   fmt.Sprintf("untrusted-answer/%d/%d", plan.Number, plan.Attempt)}); lerr != nil {
			return res, lerr
		}
		return res, fmt.Errorf("deliver message %d: %w", plan.Number, err)
	case digipoort.IsFinal(err):
		log.WithError(err).Warn("Digipoort refused the delivery")
		if rerr := a.Store.RecordSendFailed(ctx, plan.Number, plan.Attempt, err.Error()); rerr != nil {
			return res, rerr
		}
		res.Outcome, res.Reason = pipeline.OutcomeSendFailed, err.Error()
		return res, nil
	}
	if de != nil && de.Foutcode != "" {
		// Digipoort answered with a fault of its own (overloaded, a technical problem):
		// it did not accept the delivery, so the next try delivers afresh.
		log.WithError(err).Warn("Digipoort did not accept the delivery for now")
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		what := fmt.Sprintf("Digipoort did not accept the delivery of message %d (aanleverkenmerk %s) for now", plan.Number, plan.Aanleverkenmerk)
		if lerr := a.logOnce(ctx, plan, what, err, "nothing reached Digipoort; Koerier delivers it again"); lerr != nil {
			return res, lerr
		}
		return res, fmt.Errorf("deliver message %d: %w", plan.Number, err)
	}
	// Transient: the request may or may not have reached Digipoort (a lost answer, a
	// time-out). That is said at once, once per distinct error, not only when the
	// retries are used up: the retry looks the delivery up before anything is sent.
	log.WithError(err).Warn("the outcome of a delivery is not known; looking it up before delivering again")
	what := fmt.Sprintf("the outcome of the delivery of message %d (aanleverkenmerk %s) is not known", plan.Number, plan.Aanleverkenmerk)
	if lerr := a.logOnce(ctx, plan, what, err, "Koerier asks Digipoort whether this delivery arrived before anything is delivered again"); lerr != nil {
		return res, lerr
	}
	return res, fmt.Errorf("deliver message %d: %w", plan.Number, err)
}

// logOnce writes an F line about a try of a delivery, once per distinct error of the
// attempt: an outage that lasts hours is one line, not one per try.
func (a *Activities) logOnce(ctx context.Context, plan store.DeliveryPlan, what string, err error, information string) error {
	n := plan.Number
	return a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
		Description: fmt.Sprintf("%s: %v", what, err),
		Information: information,
		DedupeKey:   fmt.Sprintf("try/%d/%d/%x", plan.Number, plan.Attempt, sha256.Sum256([]byte(err.Error())))})
}

// RecordDeliveryError notes that delivery could not be completed for now; the message
// stays due. Idempotent: it only updates the attempt's last error and logs.
func (a *Activities) RecordDeliveryError(ctx context.Context, number int64, attempt int, reason string) error {
	return final(a.Store.RecordDeliveryError(ctx, number, attempt, reason))
}

// LogRefusal writes the F line for a delivery the version rules refused.
func (a *Activities) LogRefusal(ctx context.Context, number int64, attempt int, reason string) error {
	n := number
	return final(a.Store.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
		Description: fmt.Sprintf("message %d not sent: %s", number, reason),
		DedupeKey:   fmt.Sprintf("refused/%d/%d/%s", number, attempt, reason)}))
}

// Process applies the message's replies to its environment's view.
func (a *Activities) Process(ctx context.Context, number int64) (pipeline.ProcessResult, error) {
	res, err := a.Store.Process(ctx, number)
	if err != nil {
		return res, final(err)
	}
	// Counted rather than taken from res.Changed: a retried Process that wrote its
	// event on the first try changes nothing the second time, and the event still waits.
	c, err := a.Store.WebhookCountsOf(ctx, number)
	res.WebhooksPending = c.Pending
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
func (a *Activities) Restore(ctx context.Context, number int64, who string) (pipeline.RestoreResult, error) {
	res, err := a.Store.Restore(ctx, number, who)
	return res, final(err)
}

// AssignEnvironment moves a message of a removed environment (rule 9 in docs/rules.md).
func (a *Activities) AssignEnvironment(ctx context.Context, number int64, sig pipeline.AssignSignal) error {
	return final(a.Store.AssignEnvironment(ctx, number, sig.Environment, sig.Resolve, sig.By))
}

// WriteLog writes a line of the communication log for a workflow.
func (a *Activities) WriteLog(ctx context.Context, l pipeline.LogLine) error {
	e := store.LogEntry{Step: l.Step, Level: l.Level, Description: l.Description, Information: l.Information, DedupeKey: l.DedupeKey}
	if l.Message != 0 {
		e.MessageNumber = &l.Message
	}
	return final(a.Store.WriteLog(ctx, e))
}

// ResolveDelivery carries out an operator's decision about a delivery whose outcome is
// not known (adopt a kenmerk, or deliver again). A decision that does not apply (no
// such delivery, a kenmerk that is another delivery's) is final and says why.
func (a *Activities) ResolveDelivery(ctx context.Context, number int64, attempt int, sig pipeline.ResolveDeliverySignal) error {
	return final(a.Store.ResolveDelivery(ctx, number, attempt, sig.Adopt, sig.DeliverAgain, sig.By))
}

// DeliverAndProcess is Deliver followed, for a message whose environment processes by
// itself, by Process (the compact shape, workflows.CompactDeclarationWorkflow): the environment sees
// the delivery without a second activity. Both are idempotent, and so is the pair: a
// retry finds the attempt delivered (nothing is sent again) and the view processed.
// Final errors are Deliver's; a process refused because the environment is gone leaves
// the message as Deliver left it (Process marked it needs-action).
func (a *Activities) DeliverAndProcess(ctx context.Context, number int64) (pipeline.DeliverResult, error) {
	defer keepAlive(ctx)()
	res, err := a.Deliver(ctx, number)
	if err != nil || res.State == nil {
		return res, err
	}
	m := res.State
	if !m.AutoProcess || !m.EnvironmentActive || m.EnvStatus == m.Status {
		return res, nil
	}
	// Once delivered, the delivery's answer stands whatever processing does: a process
	// that fails here is left to the workflow (it processes an unprocessed message
	// itself), never reported as a failed delivery.
	processed, err := a.Process(ctx, number)
	if err != nil {
		a.log().WithFields(logrus.Fields{"message": number}).WithError(err).Info("processing with the delivery failed; the workflow processes it")
		return res, nil
	}
	if st, err := a.LoadMessage(ctx, number); err == nil {
		res.State = &st
	}
	res.Processed = &processed
	return res, nil
}

// ProcessAndReport processes a final message and writes its report (the compact shape's
// one call for the end of a declaration). Idempotent as Process and Report are.
func (a *Activities) ProcessAndReport(ctx context.Context, number int64) (pipeline.FinishResult, error) {
	var out pipeline.FinishResult
	res, err := a.Process(ctx, number)
	if err != nil {
		return out, err
	}
	out.ProcessResult = res
	if !res.Status.IsFinal() {
		return out, nil
	}
	out.Reported, err = a.Report(ctx, number)
	return out, err
}
