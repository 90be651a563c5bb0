package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/temporal"

	"koerier/bank"
	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// bankStore is what the bank channel needs of Postgres (rule 23 in docs/rules.md).
type bankStore interface {
	BankProfile(ctx context.Context, envID int64) (store.BankProfile, error)
	ApplyBankReport(ctx context.Context, r store.BankReport) (store.BankReportResult, error)
	DueOnChannel(ctx context.Context, envID int64, channel domain.Channel, limit int) ([]int64, error)
}

// bankProfile is the environment's bank profile as package bank takes it.
func (a *Activities) bankProfile(ctx context.Context, envID int64) (bank.Profile, error) {
	p, err := a.Store.BankProfile(ctx, envID)
	if err != nil {
		return bank.Profile{}, err
	}
	return p.Bank(), nil
}

// paymentFileName is the name a payment order is uploaded under: its aanleverkenmerk,
// the same for every try of an attempt, so that a try after an uncertain one finds the
// earlier one's file (and a restore, which the bank channel allows only for a file the
// bank never saw, uploads under a name of its own).
func paymentFileName(aanleverkenmerk string) string { return aanleverkenmerk + ".xml" }

// deliverPayment uploads a payment order to the environment's bank (rule 23). The
// attempt is recorded by BeginDelivery before the bank is spoken to; the file is
// written under a temporary name and renamed when complete, so the bank never reads half
// of it. A try whose rename may have reached the bank is looked up there (upload and
// archive folders) before anything is uploaded again; a half-written file of an
// interrupted try is removed and the upload starts afresh; where the bank shows nothing
// and cannot, an operator decides. Koerier never uploads a MsgId twice on its own.
//
// Final: a profile the bank refuses (its host key changed, the key is not registered)
// makes the order wait and need action once, naming the environment, without retries.
func (a *Activities) deliverPayment(ctx context.Context, plan store.DeliveryPlan, log logrus.FieldLogger) (pipeline.DeliverResult, error) {
	res := pipeline.DeliverResult{Attempt: plan.Attempt}
	name := paymentFileName(plan.Aanleverkenmerk)
	env, err := a.Store.EnvironmentByID(ctx, plan.EnvironmentID)
	if err != nil {
		return res, final(err)
	}
	// Everything before the upload call sends nothing: a way out there closes this try
	// (when it is a fresh one), so the next one uploads afresh rather than looking up a
	// file that never left.
	closeTry := func() error {
		if plan.Uncertain {
			return nil
		}
		return a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt)
	}
	profile, err := a.bankProfile(ctx, plan.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		if derr := closeTry(); derr != nil {
			return res, derr
		}
		return a.channelTrouble(ctx, plan, env.Name, fmt.Sprintf("environment %s has no bank profile: give it one with `starter environments set %s "+
			"--sftp HOST:PORT …` (or --local-bank), then send the payment order again", env.Name, env.Name))
	}
	if err != nil {
		return res, errors.Join(err, closeTry())
	}
	conn, err := bank.Dial(ctx, profile)
	if errors.Is(err, bank.ErrHostKey) || errors.Is(err, bank.ErrAuth) {
		if derr := closeTry(); derr != nil {
			return res, derr
		}
		return a.channelTrouble(ctx, plan, env.Name, fmt.Sprintf("the bank of environment %s (%s) refused the connection: %v. Check with the bank, "+
			"correct the profile (`starter environments set %s …`), then send the message again (`starter send %d`)", env.Name, profile, err,
			env.Name, plan.Number))
	}
	if err != nil {
		return res, errors.Join(fmt.Errorf("message %d: connect to the bank: %w", plan.Number, err), closeTry())
	}
	defer conn.Close()
	if plan.Uncertain {
		return a.lookUpPayment(ctx, plan, conn, name, log)
	}
	atts, err := a.Store.Attachments(ctx, plan.Number)
	if err != nil || len(atts) == 0 {
		if err == nil {
			err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("message %d has no payment file to upload", plan.Number), pipeline.ErrTypeInvalid, nil)
		}
		return res, errors.Join(err, closeTry())
	}
	err = conn.Upload(ctx, name, atts[0].Content)
	switch {
	case err == nil:
		if err := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, plan.Aanleverkenmerk, ""); err != nil {
			return res, final(err)
		}
		log.WithField("file", name).Info("payment order uploaded")
		res.Outcome, res.Kenmerk = pipeline.OutcomeSent, plan.Aanleverkenmerk
		return res, nil
	case errors.Is(err, bank.ErrExists):
		// The file of this very attempt is at the bank already (an earlier try's rename
		// did arrive): that is the delivery, and it is not uploaded again.
		if err := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, plan.Aanleverkenmerk, "found at the bank under its name"); err != nil {
			return res, final(err)
		}
		res.Outcome, res.Kenmerk, res.Recovered = pipeline.OutcomeSent, plan.Aanleverkenmerk, true
		return res, nil
	case errors.Is(err, bank.ErrUncertain):
		return res, fmt.Errorf("message %d: the bank may have the payment file %s but did not say so: %w; Koerier looks it up before "+
			"uploading again", plan.Number, name, err)
	default:
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		return res, fmt.Errorf("message %d: the payment file was not uploaded for now: %w", plan.Number, err)
	}
}

// lookUpPayment decides a try whose upload may have reached the bank: its file under
// the final name (in the upload folder, or consumed into the archive) is the delivery,
// adopted; only a half-written one means the bank never read it, which is removed and
// uploaded afresh by the next try; nothing at all is asked again until UncertainWait has
// passed, then an operator decides.
func (a *Activities) lookUpPayment(ctx context.Context, plan store.DeliveryPlan, conn *bank.Conn, name string,
	log logrus.FieldLogger) (pipeline.DeliverResult, error) {
	res := pipeline.DeliverResult{Attempt: plan.Attempt}
	a.metrics().UncertainLookedUp(domain.ChannelBank)
	where, _, err := conn.Find(ctx, name)
	if err != nil {
		return res, fmt.Errorf("message %d: look for the payment file %s at the bank: %w", plan.Number, name, err)
	}
	switch where {
	case bank.InUpload, bank.InArchive:
		log.WithFields(logrus.Fields{"file": name, "where": where}).Info("interrupted upload found at the bank; not uploading again")
		if err := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, plan.Aanleverkenmerk,
			fmt.Sprintf("found at the bank (%s folder)", where)); err != nil {
			return res, final(err)
		}
		res.Outcome, res.Kenmerk, res.Recovered = pipeline.OutcomeSent, plan.Aanleverkenmerk, true
		return res, nil
	case bank.Partial:
		// Only the temporary name: the rename never happened, so the bank cannot have
		// read it. Removed, and this try closed: the next one uploads it whole.
		if err := conn.RemovePartial(ctx, name); err != nil {
			// Gone meanwhile: a try still running elsewhere may have renamed it. The try
			// stays open and the next look finds where it went.
			return res, fmt.Errorf("message %d: remove the half-written payment file %s: %w", plan.Number, name, err)
		}
		if err := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); err != nil {
			return res, err
		}
		return res, fmt.Errorf("message %d: an interrupted upload of %s was found half-written and removed; it is uploaded again", plan.Number, name)
	}
	if plan.OpenFor < a.Config.UncertainWait {
		return res, fmt.Errorf("message %d: an earlier upload of %s may have reached the bank and the bank does not show it yet; Koerier asks "+
			"again until %s have passed since it started, then asks an operator", plan.Number, name, a.Config.UncertainWait)
	}
	undecided := fmt.Sprintf("%s%s%d (file %s, started %s) has no known outcome: the bank shows it neither in its upload nor in its archive "+
		"folder, so it may have been consumed where Koerier cannot see. Koerier does not upload it again on its own (the bank would pay twice, "+
		"or refuse the MsgId as a duplicate). Ask the bank, then decide: `starter delivery adopt %d %s` if it has the file, or "+
		"`starter delivery redeliver %d` if it has not (a status report naming its MsgId also settles it)",
		domain.DeliveryTrouble, store.UndecidedDelivery, plan.Number, name, plan.StartedAt.UTC().Format(time.RFC3339), plan.Number,
		plan.Aanleverkenmerk, plan.Number)
	if err := a.Store.MarkNeedsAction(ctx, plan.Number, undecided, fmt.Sprintf("uncertain-bank/%d/%d", plan.Number, plan.Attempt)); err != nil {
		return res, final(err)
	}
	res.Outcome, res.Reason = pipeline.OutcomeUncertain, undecided
	return res, nil
}

// DispatchBank tells the workflows of an environment's due payment orders to send: the
// environment's own bank send/receive (BankSendReceiveWorkflow).
func (a *Activities) DispatchBank(ctx context.Context, env string) (int, error) {
	return a.dispatchChannel(ctx, env, domain.ChannelBank, "bank send/receive "+env)
}

// reportBatch bounds the reports one ReceiveBank reads; the next run reads the rest.
const reportBatch = 50

// ReceiveBank fetches an environment's status reports from its bank (rule 23): each
// pain.002 is linked by its OrgnlMsgId to the environment's payment order and applied
// (highest status wins; rejected transactions keep their reasons), or kept as an
// unknown reply; it is stored before it is moved to the processed folder, so a crash in
// between fetches it again and stores nothing twice.
//
// Final: the bank refuses the profile (host key, key): one F line a day, the run fails
// with the environment's name, no retries.
func (a *Activities) ReceiveBank(ctx context.Context, env string) (pipeline.BankReceiveResult, error) {
	defer keepAlive(ctx)()
	res := pipeline.BankReceiveResult{Environment: env}
	e, err := a.Store.Environment(ctx, env)
	if err != nil {
		return res, final(err)
	}
	p, err := a.bankProfile(ctx, e.ID)
	if err != nil {
		return res, final(err)
	}
	conn, err := bank.Dial(ctx, p)
	if errors.Is(err, bank.ErrHostKey) || errors.Is(err, bank.ErrAuth) {
		return res, a.profileRefused(ctx, e, fmt.Sprintf("the bank of environment %s (%s) refused the connection: %v. Check with the bank and "+
			"correct the profile with `starter environments set %s …`; no status report is fetched until then", env, p, err, env))
	}
	if err != nil {
		return res, fmt.Errorf("environment %s: connect to the bank: %w", env, err)
	}
	defer conn.Close()
	reports, err := conn.Reports(ctx, reportBatch)
	if err != nil {
		return res, fmt.Errorf("environment %s: fetch the bank's status reports: %w", env, err)
	}
	var failed error
	for _, r := range reports {
		// A bank need not write its reports under a temporary name: one changed in the
		// last moments may still be being written, and is read by the next run.
		if time.Since(r.ModTime) < reportSettle || len(r.Content) == 0 {
			continue // an empty file may be one the bank has only just created
		}
		res.Reports++
		out, err := a.applyReport(ctx, e, r)
		if err != nil {
			failed = fmt.Errorf("environment %s: report %s: %w", env, r.Name, err)
			break
		}
		switch {
		case out.AlreadySeen:
			res.Seen++
		case out.Unknown != 0:
			res.Unknown++
			res.Numbers = append(res.Numbers, out.Unknown)
		default:
			res.Linked++
		}
		if out.Message != 0 {
			res.Numbers = append(res.Numbers, out.Message)
		}
		if err := conn.MoveProcessed(ctx, r.Name); err != nil {
			failed = fmt.Errorf("environment %s: move report %s to the processed folder: %w", env, r.Name, err)
			break
		}
		res.Moved++
	}
	res.More = failed == nil && len(reports) == reportBatch
	unknown, err := a.Store.UnknownRepliesOf(ctx, res.Numbers)
	if err != nil {
		return res, errors.Join(failed, err)
	}
	return res, errors.Join(failed, a.signalReplies(ctx, res.Numbers), a.startONBWorkflows(ctx, unknown))
}

// reportSettle is how long a report file must be unchanged before it is read.
const reportSettle = 2 * time.Second

// applyReport stores one report. A report that cannot be stored as it is (empty, a value
// the database refuses) is kept as an unknown reply with the reason, so that one bad file
// never stops the environment's reports; only trouble a retry can mend is returned.
func (a *Activities) applyReport(ctx context.Context, e store.Environment, r bank.Report) (store.BankReportResult, error) {
	in := store.BankReport{EnvironmentID: e.ID, Name: r.Name, Content: r.Content}
	var err error
	if in.Report, err = domain.ReadStatusReport(r.Content); err != nil {
		in.Unreadable = err.Error()
	}
	out, err := a.Store.ApplyBankReport(ctx, in)
	if err == nil || !permanentStoreError(err) {
		return out, err
	}
	in.Report, in.Unreadable = domain.StatusReport{}, fmt.Sprintf("the report could not be stored as it came: %v", err)
	if len(in.Content) == 0 {
		in.Content = []byte(fmt.Sprintf("(the bank's file %s was empty)", r.Name))
	}
	return a.Store.ApplyBankReport(ctx, in)
}

// profileRefused writes the F line of a channel whose server refused the environment's
// profile (once a day) and returns the final error that fails the run.
func (a *Activities) profileRefused(ctx context.Context, e store.Environment, reason string) error {
	id := e.ID
	if err := a.Store.WriteLog(ctx, store.LogEntry{EnvironmentID: &id, Step: domain.StepReceive, Level: domain.LevelError, Description: reason,
		DedupeKey: fmt.Sprintf("profile-refused/%s/%s", e.Name, time.Now().UTC().Format(time.DateOnly))}); err != nil {
		return err
	}
	return temporal.NewNonRetryableApplicationError(reason, pipeline.ErrTypeInvalid, nil)
}
