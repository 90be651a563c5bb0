package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/domain"
	"koerier/pipeline"
)

// DeclarationWorkflow carries one outgoing message through
// queue → send → await replies → process → report, and after a failure waits for an
// operator to restore it. Its id is message-<number>.
//
// Report is two things: the log line with the final outcome (doReport), and the
// webhook events store.Process writes for every change of the environment's status,
// posted to the environment's endpoint (startWebhooks). Those posts run beside the
// rest of the workflow — a receiver that is down for days holds up neither a restore
// nor the next process — and the workflow does not complete while any is pending.
//
// Cancel and terminate: a queued message cannot be withdrawn (rule 1 in docs/rules.md), and nothing
// here can withdraw it. Postgres keeps the message where it stands. A cancelled
// workflow writes an F line saying so and ends; a terminated one ends without a word.
// Either way the next send/receive re-creates the workflow of a due message, a new
// reply re-creates the workflow of a message in flight, and `starter process` or
// `starter restore` re-create it for a message waiting for them.
func DeclarationWorkflow(ctx workflow.Context, in pipeline.DeclarationInput) error {
	return runDeclaration(ctx, in, false)
}

// CompactDeclarationWorkflow is DeclarationWorkflow in the compact shape, which every
// new message gets (pipeline.CompactDeclarationWorkflowType): Postgres reads and writes
// as local activities, the delivery and its processing in one activity, the final
// process and report in one call, and no version markers for the changes made before
// it. The same guarantees with fewer history events and Temporal actions: each of those
// calls is idempotent, as every activity is. DeclarationWorkflow stays for the
// workflows started before it, which replay as they ran.
func CompactDeclarationWorkflow(ctx workflow.Context, in pipeline.DeclarationInput) error {
	return runDeclaration(ctx, in, true)
}

func runDeclaration(ctx workflow.Context, in pipeline.DeclarationInput, compact bool) error {
	d := &declaration{in: in, seen: map[int64]bool{}, compact: compact}
	if d.in.NoReplyTimeout <= 0 {
		d.in.NoReplyTimeout = pipeline.DefaultNoReplyTimeout
	}
	if d.in.DeliveryDeadline <= 0 {
		d.in.DeliveryDeadline = pipeline.DefaultDeliveryDeadline
	}
	if err := workflow.SetQueryHandler(ctx, pipeline.QueryState, func() (pipeline.State, error) { return d.state(), nil }); err != nil {
		return err
	}
	d.sendCh = workflow.GetSignalChannel(ctx, pipeline.SignalSend)
	d.sendNowCh = workflow.GetSignalChannel(ctx, pipeline.SignalSendNow)
	d.repliesCh = workflow.GetSignalChannel(ctx, pipeline.SignalReplies)
	d.processCh = workflow.GetSignalChannel(ctx, pipeline.SignalProcess)
	d.webhooksCh = workflow.GetSignalChannel(ctx, pipeline.SignalDeliverWebhooks)
	d.restoreCh = workflow.GetSignalChannel(ctx, pipeline.SignalRestoreStatus)
	d.assignCh = workflow.GetSignalChannel(ctx, pipeline.SignalAssignEnvironment)
	d.resolveCh = workflow.GetSignalChannel(ctx, pipeline.SignalResolveDelivery)
	d.envCh = workflow.GetSignalChannel(ctx, pipeline.SignalEnvironmentChanged)

	err := d.run(ctx)
	if temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled) {
		d.logCancelled(ctx)
	}
	return err
}

type declaration struct {
	in  pipeline.DeclarationInput
	msg pipeline.Message
	// compact: the compact shape (CompactDeclarationWorkflow); fixed by the workflow's
	// type, so by its history.
	compact bool

	stage     string
	last      string
	published string
	// seen holds the event ids of the replies in msg.Replies, so that a reply that
	// arrives by signal and by a reload is listed once.
	seen map[int64]bool

	sendWanted    bool
	processWanted bool
	restoreWanted *pipeline.OperatorSignal
	assignWanted  []pipeline.AssignSignal
	resolveWanted []pipeline.ResolveDeliverySignal
	noReplyDone   bool
	// noReplyAt is when a message in flight without a final reply needs an operator;
	// counted from when this run first saw it in flight.
	noReplyAt time.Time

	// hook is the webhook delivery in flight (nil when none); hookAgain asks for another
	// once it ends, for events written while it ran; hookDone says every event written
	// so far was dealt with (sent, failed, or its endpoint disabled).
	hook      workflow.Future
	hookAgain bool
	hookDone  bool

	// reloadWanted: the environment's settings changed (`starter environments set`).
	reloadWanted bool
	// goneAsked: this run asked Process once for a final message whose environment is
	// gone (goneUnmarked).
	goneAsked bool

	sendCh, sendNowCh, repliesCh, processCh, restoreCh, assignCh, resolveCh, webhooksCh, envCh workflow.ReceiveChannel
}

func (d *declaration) state() pipeline.State {
	m := d.msg
	m.Number = d.in.Number // before the first load
	return m.State(d.stage, d.last)
}

func (d *declaration) run(ctx workflow.Context) error {
	if err := d.load(ctx); err != nil {
		return err
	}
	if d.msg.Direction != domain.DirectionOut {
		d.setStage(ctx, pipeline.StageDone, "an incoming message has no workflow of its own")
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.handleResolutions(ctx); err != nil {
			return err
		}
		if err := d.handleAssignments(ctx); err != nil {
			return err
		}
		if err := d.webhooksEnded(ctx); err != nil {
			return err
		}
		if d.processWanted || (d.msg.AutoProcess && d.msg.EnvironmentActive) {
			d.processWanted = false
			if d.msg.EnvStatus != d.msg.Status {
				if err := d.doProcess(ctx); err != nil {
					return err
				}
			}
		} else if d.goneUnmarked(ctx) {
			// The environment disappeared while the message was in flight: nobody will ask
			// to process it, so ask once ourselves — Process refuses, and marks it needs-
			// action with what to do (rule 9), instead of it waiting unseen.
			d.goneAsked = true
			if err := d.doProcess(ctx); err != nil {
				return err
			}
		}
		if !d.pending() && d.historyLarge(ctx) {
			// The same type, so the same shape; d.in.Retry goes along.
			return workflow.NewContinueAsNewError(ctx, workflow.GetInfo(ctx).WorkflowType.Name, d.in)
		}
		st := d.msg.Status
		switch {
		case d.superseded():
			if d.restoreWanted != nil && d.restoreDoNotSendVersion(ctx) {
				sig := *d.restoreWanted
				d.restoreWanted = nil
				if err := d.doRestore(ctx, sig); err != nil {
					return err
				}
				continue
			}
			if done, err := d.finishWebhooks(ctx); err != nil || !done {
				if err != nil {
					return err
				}
				continue
			}
			d.setStage(
				ctx,
				pipeline.StageDone,
				fmt.Sprintf("superseded: version %d of the declaration was queued before this one was sent", d.msg.LatestVersion),
			)
			return nil
		case st.IsDue():
			if !d.sendWanted && !(d.msg.AutoSend && d.msg.EnvironmentActive) {
				d.setStage(ctx, pipeline.StageQueued, "")
				if err := d.wait(ctx, 0); err != nil {
					return err
				}
				continue
			}
			// Auto-send rounds that did not deliver back off; a round that send/receive or
			// an operator asks for goes at once (the schedule paces those).
			if left := d.in.Retry.At.Sub(workflow.Now(ctx)); left > 0 && !d.sendWanted {
				d.setStage(ctx, pipeline.StageQueued, fmt.Sprintf("next delivery round at %s, after %d round(s) that did not deliver; last: %s",
					d.in.Retry.At.UTC().Format(time.RFC3339), d.in.Retry.Failures, d.in.Retry.LastFailure))
				if err := d.wait(ctx, left); err != nil {
					return err
				}
				continue
			}
			d.sendWanted = false
			if err := d.deliver(ctx); err != nil {
				return err
			}
		case st.IsInFlight():
			d.setStage(ctx, pipeline.StageAwaitingReplies, "")
			timeout := time.Duration(0)
			if !d.noReplyDone {
				if d.noReplyAt.IsZero() {
					d.noReplyAt = workflow.Now(ctx).Add(d.replyWindow())
				}
				timeout = max(d.noReplyAt.Sub(workflow.Now(ctx)), time.Millisecond)
			}
			fired, err := d.waitFired(ctx, timeout)
			if err != nil {
				return err
			}
			if fired {
				if err := d.noReply(ctx); err != nil {
					return err
				}
			}
		case st.IsFinal():
			if d.sendWanted && d.restoreBeforeProcess(ctx) {
				// A send for a message this run holds final: Postgres may have moved on (restored
				// by a command whose signal did not arrive). Send/receive waits for the answer.
				if err := d.load(ctx); err != nil {
					return err
				}
				if !d.msg.Status.IsDue() {
					d.sendWanted = false
					d.last = fmt.Sprintf("send ignored: the message is %s, not due (restore it first)", d.msg.Status)
				}
				continue
			}
			if d.msg.EnvStatus != st && d.restoreWanted != nil && d.restoreBeforeProcess(ctx) {
				// Restore does not wait for process: it implies it (store.Restore, rule 3).
				sig := *d.restoreWanted
				d.restoreWanted = nil
				if err := d.doRestore(ctx, sig); err != nil {
					return err
				}
				continue
			}
			if d.msg.EnvStatus != st {
				d.setStage(ctx, pipeline.StageProcessing, "")
				if err := d.wait(ctx, 0); err != nil {
					return err
				}
				continue
			}
			if !d.msg.Reported {
				if err := d.doReport(ctx); err != nil {
					return err
				}
				continue
			}
			if st == domain.StatusAccepted {
				if done, err := d.finishWebhooks(ctx); err != nil || !done {
					if err != nil {
						return err
					}
					continue
				}
				d.setStage(ctx, pipeline.StageDone, "accepted and reported")
				return nil
			}
			if d.restoreWanted != nil {
				sig := *d.restoreWanted
				d.restoreWanted = nil
				if err := d.doRestore(ctx, sig); err != nil {
					return err
				}
				continue
			}
			d.setStage(ctx, pipeline.StageWaitingForRestore, "")
			if err := d.wait(ctx, 0); err != nil {
				return err
			}
		default:
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("message %d has status %q that no stage handles", d.in.Number, st),
				"UnknownStatus",
				nil,
			)
		}
	}
}

// goneUnmarked reports whether the message ended while its environment is gone and
// this run has not yet had Process mark it (guarded: histories from before replay so).
func (d *declaration) goneUnmarked(ctx workflow.Context) bool {
	return !d.goneAsked && !d.msg.EnvironmentActive && d.msg.Status.IsFinal() && d.msg.EnvStatus != d.msg.Status &&
		d.version(ctx, "process-gone-environment")
}

// superseded reports whether the message is an older version that was never sent and
// must not be (rule 3): the workflow ends, unless an operator restores it.
func (d *declaration) superseded() bool {
	return d.msg.Status.IsDue() && d.msg.DoNotSend && !d.msg.DeliveryOpen
}

// restoreDoNotSendVersion guards restore-status on a superseded message (store.Restore
// clears do-not-send where no newer version exists): histories in which the signal
// was dropped replay unchanged.
func (d *declaration) restoreDoNotSendVersion(ctx workflow.Context) bool {
	return d.version(ctx, "restore-do-not-send")
}

// restoreBeforeProcess guards restore and send on a final message the environment has not
// processed: before it, both waited for process (a restored message hung until then);
// histories recorded so replay unchanged.
func (d *declaration) restoreBeforeProcess(ctx workflow.Context) bool {
	return d.version(ctx, "restore-before-process")
}

// version reports whether a change guarded by workflow.GetVersion(changeID) is on. A
// compact workflow has every change made before its shape existed
// (pipeline.CompactChanges) without a marker event each (every event is paid for); a
// history from before records its markers and replays as it ran, and a change made
// later is guarded in both shapes.
func (d *declaration) version(ctx workflow.Context, changeID string) bool {
	if d.compact && slices.Contains(pipeline.CompactChanges, changeID) {
		return true
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) >= 1
}

// historyLarge reports whether the run should continue as new: too many events, or too
// many bytes (historyBytesLimit). The byte bound is version-guarded although it adds no
// command of its own: a run recorded before it existed may have passed the byte limit and
// gone on scheduling activities, and replaying that with a continue-as-new there would not
// be deterministic. The version is asked only once the bound is passed, so histories that
// never reach it (the recorded ones in testdata) carry no marker.
func (d *declaration) historyLarge(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	if info.GetCurrentHistoryLength() > historyLimit {
		return true
	}
	return info.GetCurrentHistorySize() > historyBytesLimit &&
		d.version(ctx, "history-bytes-limit")
}

// pending reports whether a signal waits to be read; continue-as-new would lose it.
func (d *declaration) pending() bool {
	if d.signalsWaiting() {
		return true
	}
	// A webhook delivery in flight would be abandoned and started again by the next run.
	return d.sendWanted || d.processWanted || d.restoreWanted != nil || len(d.assignWanted) > 0 || len(d.resolveWanted) > 0 || d.hook != nil
}

func (d *declaration) load(ctx workflow.Context) error {
	var m pipeline.Message
	if err := d.store(ctx, a.LoadMessage, d.in.Number).Get(ctx, &m); err != nil {
		return err
	}
	d.take(m)
	return d.publish(ctx)
}

// take adopts where Postgres says the message stands.
func (d *declaration) take(m pipeline.Message) {
	replies := m.Replies
	d.msg, d.msg.Replies, d.seen = m, nil, map[int64]bool{}
	for _, r := range replies {
		d.addReply(r)
	}
}

func (d *declaration) addReply(r pipeline.Reply) {
	if d.seen[r.EventID] {
		return
	}
	d.seen[r.EventID] = true
	d.msg.Replies = append(d.msg.Replies, r)
	if len(d.msg.Replies) > pipeline.MaxRepliesInState {
		d.msg.Replies = d.msg.Replies[len(d.msg.Replies)-pipeline.MaxRepliesInState:]
	}
}

// publish keeps the Web UI current: search attributes (upserted only when they
// change, each upsert is a history event) and the one-line details.
func (d *declaration) publish(ctx workflow.Context) error {
	if d.msg.Direction != domain.DirectionOut {
		return nil
	}
	workflow.SetCurrentDetails(ctx, d.details())
	key := d.msg.AttributesKey()
	if d.published == "" {
		// The attributes the workflow was started with need no upsert.
		d.published = pipeline.CurrentAttributesKey(workflow.GetTypedSearchAttributes(ctx))
	}
	if key == d.published {
		return nil
	}
	d.published = key
	return workflow.UpsertTypedSearchAttributes(ctx, d.msg.AttributeUpdates()...)
}

func (d *declaration) details() string {
	s := fmt.Sprintf("**%s** · %s · stage %s", d.msg.Status, d.msg.Summary(), d.stage)
	if d.msg.Kenmerk != "" {
		s += " · kenmerk " + d.msg.Kenmerk
	}
	if d.msg.NeedsAction {
		s += "\n\nneeds action: " + d.msg.NeedsActionReason
	}
	if d.last != "" {
		s += "\n\n" + d.last
	}
	// The newest F line says why a message failed without the command line; it is as
	// fresh as the last load (every signal and delivery reloads the message).
	if len(d.msg.Errors) > 0 {
		e := d.msg.Errors[0]
		s += fmt.Sprintf("\n\nlatest F line (%s, %s): %s", e.Time.UTC().Format("2006-01-02 15:04:05Z"), e.Step, e.Description)
	}
	return s
}

func (d *declaration) setStage(ctx workflow.Context, stage, last string) {
	if d.stage == stage && (last == "" || last == d.last) {
		return
	}
	d.stage = stage
	if last != "" {
		d.last = last
	}
	workflow.SetCurrentDetails(ctx, d.details())
}

// wait blocks until a signal arrives (or timeout passes, if set) and takes it in.
func (d *declaration) wait(ctx workflow.Context, timeout time.Duration) error {
	_, err := d.waitFired(ctx, timeout)
	return err
}

func (d *declaration) waitFired(ctx workflow.Context, timeout time.Duration) (fired bool, err error) {
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(d.sendCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.SendSignal
		c.Receive(ctx, &s)
		d.sendWanted = true
	})
	sel.AddReceive(d.sendNowCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.OperatorSignal
		c.Receive(ctx, &s)
		if d.msg.Status.IsDue() {
			d.sendWanted = true
		} else {
			d.last = fmt.Sprintf("send-now ignored: the message is %s, not due (restore a failed message first)", d.msg.Status)
		}
	})
	sel.AddReceive(d.repliesCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.RepliesSignal
		c.Receive(ctx, &s)
		d.takeReplies(s)
	})
	sel.AddReceive(d.processCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.OperatorSignal
		c.Receive(ctx, &s)
		d.processWanted = true
	})
	sel.AddReceive(d.webhooksCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.OperatorSignal
		c.Receive(ctx, &s)
		// A delivery in flight takes every pending event already; otherwise post them.
		if d.hook == nil {
			d.startWebhooks(ctx)
		}
	})
	sel.AddReceive(d.restoreCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.OperatorSignal
		c.Receive(ctx, &s)
		d.restoreWanted = &s
	})
	sel.AddReceive(d.resolveCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.ResolveDeliverySignal
		c.Receive(ctx, &s)
		d.resolveWanted = append(d.resolveWanted, s)
	})
	sel.AddReceive(d.assignCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.AssignSignal
		c.Receive(ctx, &s)
		d.assignWanted = append(d.assignWanted, s)
	})
	sel.AddReceive(d.envCh, func(c workflow.ReceiveChannel, _ bool) {
		var s pipeline.OperatorSignal
		c.Receive(ctx, &s)
		d.reloadWanted = true
	})
	sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {})
	if d.hook != nil {
		// Wakes the loop, which takes the result in (webhooksEnded).
		sel.AddFuture(d.hook, func(workflow.Future) {})
	}
	var timerCancel workflow.CancelFunc
	if timeout > 0 {
		tctx, cancel := workflow.WithCancel(ctx)
		timerCancel = cancel
		sel.AddFuture(workflow.NewTimer(tctx, timeout), func(f workflow.Future) {
			if f.Get(tctx, nil) == nil {
				fired = true
			}
		})
	}
	sel.Select(ctx)
	// Take every other signal that is already there, so one wake-up handles a burst.
	for ctx.Err() == nil && sel.HasPending() {
		sel.Select(ctx)
	}
	if timerCancel != nil && !fired {
		timerCancel()
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if d.restoreWanted != nil && !d.msg.Status.IsFailure() {
		// Nothing to restore from this state — unless Postgres says the message was
		// superseded: restore clears do-not-send where no newer version exists (rule 3),
		// and the loop asks the store (doRestore). Otherwise the request is dropped with a
		// word. Postgres is read again in case the command line restored it already.
		was := d.msg.Status
		d.reloadWanted = false
		if err := d.load(ctx); err != nil {
			return false, err
		}
		if !d.superseded() || !d.restoreDoNotSendVersion(ctx) {
			d.last = fmt.Sprintf("restore-status ignored: the message is %s, not failed", was)
			d.restoreWanted = nil
		}
	}
	// Not version-guarded: the handler shipped with the signal (3c2ec5e) and read
	// Postgres without a marker, so a guard here would make every workflow that got the
	// signal then fail to replay (testdata/base-declaration-environment-changed.json).
	if d.reloadWanted {
		if err := d.load(ctx); err != nil {
			return false, err
		}
		d.last = fmt.Sprintf("environment %s changed: auto-send %v, auto-process %v", d.msg.Environment, d.msg.AutoSend, d.msg.AutoProcess)
	}
	d.reloadWanted = false
	return fired, d.publish(ctx)
}

// takeReplies merges a batch of replies. The status comes from Postgres, where the
// highest reply won; a batch sent before a restore cannot undo the restore.
func (d *declaration) takeReplies(s pipeline.RepliesSignal) {
	for _, r := range s.Replies {
		d.addReply(r)
	}
	if s.Attempt == d.msg.Attempt && domain.Higher(s.Status, d.msg.Status) {
		d.msg.Status = s.Status
	}
	if s.Attempt == d.msg.Attempt && s.NeedsAction {
		d.msg.NeedsAction = true
	}
	for _, r := range s.Replies {
		if r.Applied && r.Kenmerk != "" {
			d.msg.Kenmerk = r.Kenmerk
		}
	}
}

func (d *declaration) deliver(ctx workflow.Context) error {
	d.setStage(ctx, pipeline.StageSending, "")
	var res pipeline.DeliverResult
	deliver := a.Deliver
	if d.compact {
		// The delivery and, for an environment that processes by itself, its processing
		// in one activity: the round trip of a Process after it is saved.
		deliver = a.DeliverAndProcess
	}
	err := workflow.ExecuteActivity(deliverOptions(ctx), deliver, d.in.Number).Get(ctx, &res)
	if err != nil {
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Transient trouble that outlasted the retries: the message stays due, the
		// log says so, and the next send/receive tries again.
		reason := pipeline.RootMessage(err)
		if lerr := workflow.ExecuteActivity(storeOptions(ctx), a.RecordDeliveryError, d.in.Number, d.msg.Attempt, reason).Get(ctx, nil); lerr != nil {
			return lerr
		}
		d.last = "delivery could not be completed for now: " + reason
		if err := d.roundFailed(ctx, reason); err != nil {
			return err
		}
		return d.load(ctx)
	}
	switch res.Outcome {
	case pipeline.OutcomeWaiting, pipeline.OutcomeUncertain:
		d.last = "not sent: " + res.Reason
	case pipeline.OutcomeRefused:
		if err := workflow.ExecuteActivity(storeOptions(ctx), a.LogRefusal, d.in.Number, res.Attempt, res.Reason).Get(ctx, nil); err != nil {
			return err
		}
		d.last = "not sent: " + res.Reason
	case pipeline.OutcomeSendFailed:
		d.last = "Digipoort refused the delivery: " + res.Reason
	case pipeline.OutcomeSent:
		d.last = "delivered, kenmerk " + res.Kenmerk
		if res.Recovered {
			d.last += " (found at Digipoort after an interrupted delivery)"
		}
	}
	if res.Processed != nil {
		d.processed(ctx, *res.Processed)
	}
	if res.State != nil {
		d.take(*res.State)
		if err := d.publish(ctx); err != nil {
			return err
		}
	} else if err := d.load(ctx); err != nil {
		return err
	}
	if res.Outcome == pipeline.OutcomeWaiting || res.Outcome == pipeline.OutcomeUncertain {
		return d.roundFailed(ctx, res.Reason)
	}
	d.in.Retry = pipeline.RetryState{}
	return nil
}

// roundFailed backs off before the next delivery round (pipeline.RetryBackoff), and
// once the message has kept failing for DeliveryDeadline marks it needs-action: a
// filing deadline may pass while Koerier keeps trying.
func (d *declaration) roundFailed(ctx workflow.Context, reason string) error {
	now := workflow.Now(ctx)
	r := &d.in.Retry
	r.Failures, r.LastFailure = r.Failures+1, reason
	r.At = now.Add(pipeline.RetryBackoff(r.Failures))
	if r.FailingSince.IsZero() {
		r.FailingSince = now
	}
	// A more specific delivery trouble (a look-up that gave up) keeps its reason: it
	// says what to decide.
	trouble := d.msg.NeedsAction && strings.HasPrefix(d.msg.NeedsActionReason, domain.DeliveryTrouble)
	if r.DeadlineDone || trouble || now.Sub(r.FailingSince) < d.in.DeliveryDeadline {
		return nil
	}
	r.DeadlineDone = true
	why := fmt.Sprintf(domain.DeliveryTrouble+"message %d could not be delivered for %s (%d rounds; last: %s). The filing deadline of this %s may pass: "+
		"see why in its log (`starter log --message %d`): Digipoort unavailable, or another delivery of the same subject it waits for; "+
		"Koerier keeps trying every %s, `starter send %d` tries now",
		d.in.Number, now.Sub(r.FailingSince).Round(time.Minute), r.Failures, reason, d.msg.Type, d.in.Number, pipeline.RetryBackoffMax, d.in.Number)
	dedupe := fmt.Sprintf("delivery-deadline/%d/%d", d.in.Number, d.msg.Attempt)
	if err := workflow.ExecuteActivity(storeOptions(ctx), a.MarkNeedsAction, d.in.Number, why, dedupe).Get(ctx, nil); err != nil {
		return err
	}
	d.msg.NeedsAction, d.msg.NeedsActionReason = true, why
	return nil
}

// replyWindow is how long a delivered message waits for its final reply: Digipoort's
// no-reply timeout, or for an e-invoice the bounce window (e-mail has no final reply).
func (d *declaration) replyWindow() time.Duration {
	if d.msg.Channel == string(domain.ChannelEmail) {
		if d.in.BounceWindow > 0 {
			return d.in.BounceWindow
		}
		return pipeline.DefaultBounceWindow
	}
	return d.in.NoReplyTimeout
}

func (d *declaration) noReply(ctx workflow.Context) error {
	d.noReplyDone = true
	if d.msg.Channel == string(domain.ChannelEmail) {
		// No bounce within the window: the receiving server took it and kept it, which is
		// all e-mail can say (rule 12). Only e-invoices reach this, which no history from
		// before them holds, so it needs no version guard.
		req := pipeline.MailDeliveredRequest{Number: d.in.Number, Kenmerk: d.msg.Kenmerk, At: workflow.Now(ctx), Window: d.replyWindow()}
		if err := workflow.ExecuteActivity(storeOptions(ctx), a.MailDelivered, req).Get(ctx, nil); err != nil {
			return err
		}
		return d.load(ctx)
	}
	reason := fmt.Sprintf("no final reply from Digipoort for message %d (kenmerk %s) within %s: check it with `starter digipoort status --kenmerk %s`",
		d.in.Number, d.msg.Kenmerk, d.in.NoReplyTimeout, d.msg.Kenmerk)
	if d.msg.Channel == string(domain.ChannelBank) {
		reason = fmt.Sprintf("no final status report from the bank for payment order %d (file %s.xml) within %s: ask the bank, and check that "+
			"environment %s's bank send/receive runs (`starter bank send-receive --env %s`)", d.in.Number, d.msg.Kenmerk, d.in.NoReplyTimeout,
			d.msg.Environment, d.msg.Environment)
	}
	dedupe := fmt.Sprintf("no-reply/%d/%d", d.in.Number, d.msg.Attempt)
	if err := workflow.ExecuteActivity(storeOptions(ctx), a.MarkNeedsAction, d.in.Number, reason, dedupe).Get(ctx, nil); err != nil {
		return err
	}
	d.msg.NeedsAction, d.msg.NeedsActionReason = true, reason
	return d.publish(ctx)
}

func (d *declaration) doProcess(ctx workflow.Context) error {
	var res pipeline.ProcessResult
	var err error
	if d.compact && d.msg.Status.IsFinal() && !d.msg.Reported {
		// The final outcome is processed and reported in one short store call.
		var fin pipeline.FinishResult
		err = d.store(ctx, a.ProcessAndReport, d.in.Number).Get(ctx, &fin)
		res = fin.ProcessResult
		if err == nil {
			d.msg.Reported = fin.Reported == d.msg.Status && res.Status == d.msg.Status
		}
	} else {
		err = d.store(ctx, a.Process, d.in.Number).Get(ctx, &res)
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == pipeline.ErrTypeRefused {
		// Its environment is gone (rule 9): the store marked it needs-action and says why.
		d.last = "process refused: " + pipeline.RootMessage(err)
		return d.load(ctx)
	}
	if err != nil {
		return err
	}
	d.processed(ctx, res)
	d.msg.EnvStatus = res.Status
	if res.Status != d.msg.Status {
		// Postgres moved on meanwhile (a reply we have not been told about yet).
		return d.load(ctx)
	}
	return nil
}

// processed starts posting the webhook events a process wrote.
func (d *declaration) processed(ctx workflow.Context, res pipeline.ProcessResult) {
	switch {
	case res.WebhooksPending > 0:
		d.startWebhooks(ctx)
	case d.hook == nil:
		// Nothing waits to be posted (also nothing a lost earlier run left behind).
		d.hookDone = true
	}
}

// store runs a short Postgres activity: a local activity in the compact shape (a marker
// event instead of an activity's three and a workflow task's three), a regular one in
// histories from before.
func (d *declaration) store(ctx workflow.Context, activity any, args ...any) workflow.Future {
	if d.compact {
		return workflow.ExecuteLocalActivity(localStoreOptions(ctx), activity, args...)
	}
	return workflow.ExecuteActivity(storeOptions(ctx), activity, args...)
}

func (d *declaration) doReport(ctx workflow.Context) error {
	var st domain.Status
	if err := d.store(ctx, a.Report, d.in.Number).Get(ctx, &st); err != nil {
		return err
	}
	d.msg.Reported = st == d.msg.Status
	if !d.msg.Reported {
		return d.load(ctx)
	}
	return nil
}

// webhooksVersion guards the report stage's webhooks: the histories of workflows that
// ran without them (e2e/testdata, workflows in flight at an upgrade) replay unchanged.
func (d *declaration) webhooksVersion(ctx workflow.Context) bool {
	return d.version(ctx, "webhooks")
}

// startWebhooks posts the message's pending webhook events (activities.DeliverWebhooks)
// beside the rest of the workflow; a delivery already in flight is followed by another.
func (d *declaration) startWebhooks(ctx workflow.Context) {
	if !d.webhooksVersion(ctx) {
		return
	}
	d.hookDone = false
	if d.hook != nil {
		d.hookAgain = true
		return
	}
	d.hook = workflow.ExecuteActivity(webhookOptions(ctx, d.in.WebhookRetryInitial), a.DeliverWebhooks, d.in.Number)
}

// webhooksEnded takes in a finished webhook delivery. One that ran out of retries
// (pipeline.WebhookRetryFor) fails the events still pending, each with an F line —
// unless events were written meanwhile: then the next delivery tries them all again.
func (d *declaration) webhooksEnded(ctx workflow.Context) error {
	if d.hook == nil || !d.hook.IsReady() {
		return nil
	}
	var res pipeline.WebhookResult
	err := d.hook.Get(ctx, &res)
	d.hook = nil
	if err != nil && (temporal.IsCanceledError(err) || ctx.Err() != nil) {
		return err
	}
	switch {
	case d.hookAgain:
		d.hookAgain = false
		d.startWebhooks(ctx)
		return nil
	case err != nil:
		reason := fmt.Sprintf("webhook not taken by the environment's receiver in %s of retries: %s; the receiver must answer 2xx",
			pipeline.WebhookRetryFor, pipeline.RootMessage(err))
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			// Not the receiver's doing: say what it was, not that time ran out.
			reason = "webhook could not be delivered: " + pipeline.RootMessage(err)
		}
		if ferr := workflow.ExecuteActivity(storeOptions(ctx), a.FailWebhooks, d.in.Number, reason).Get(ctx, nil); ferr != nil {
			return ferr
		}
		d.last = reason
	case res.Disabled:
		d.last = "webhooks: the environment's receiver answered 410 Gone; its endpoint is disabled"
	}
	d.hookDone = true
	return nil
}

// finishWebhooks runs before the workflow completes and reports whether it may: the
// delivery in flight has ended, and one ran after the last change, so that no event —
// also one a lost earlier run left pending — stays behind. Until then it waits in the
// reporting stage for the delivery *or a signal*, and the caller goes round its loop
// again: a late reply (a rejection after acceptance), a process or an assignment that
// arrives while a receiver is down for days is handled, not dropped.
func (d *declaration) finishWebhooks(ctx workflow.Context) (bool, error) {
	if !d.webhooksVersion(ctx) {
		return true, nil
	}
	if d.hook == nil && !d.hookDone {
		d.startWebhooks(ctx)
	}
	if d.hookDone && !d.signalsWaiting() {
		return true, nil
	}
	d.setStage(ctx, pipeline.StageReporting, "")
	return false, d.wait(ctx, 0)
}

// signalsWaiting reports whether a signal waits in a channel: the workflow must read it
// before it completes.
func (d *declaration) signalsWaiting() bool {
	for _, c := range []workflow.ReceiveChannel{d.sendCh, d.sendNowCh, d.repliesCh, d.processCh, d.restoreCh, d.assignCh, d.resolveCh, d.webhooksCh,
		d.envCh} {
		if c.Len() > 0 {
			return true
		}
	}
	return false
}

func (d *declaration) doRestore(ctx workflow.Context, sig pipeline.OperatorSignal) error {
	var res pipeline.RestoreResult
	err := workflow.ExecuteActivity(storeOptions(ctx), a.Restore, d.in.Number, sig.By).Get(ctx, &res)
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == pipeline.ErrTypeRefused {
		reason := pipeline.RootMessage(err)
		d.last = "restore refused: " + reason
		return workflow.ExecuteActivity(storeOptions(ctx), a.WriteLog, pipeline.LogLine{Message: d.in.Number, Step: domain.StepRestore,
			Level:       domain.LevelError,
			Description: "restore of message " + fmt.Sprint(d.in.Number) + " refused: " + reason}).
			Get(ctx, nil)
	}
	if err != nil {
		return err
	}
	d.noReplyDone, d.noReplyAt = false, time.Time{}
	d.last = fmt.Sprintf("restored: ready to resend after error (attempt %d)", res.Attempt)
	if res.DoNotSendCleared {
		d.last = fmt.Sprintf("restored: do-not-send cleared, %s and due (attempt %d)", res.Status, res.Attempt)
	}
	// A restore sets the environment's status too.
	d.startWebhooks(ctx)
	return d.load(ctx)
}

// handleResolutions carries out operators' decisions about a delivery whose outcome
// is not known; after "deliver again" the message is delivered at once.
func (d *declaration) handleResolutions(ctx workflow.Context) error {
	for len(d.resolveWanted) > 0 {
		sig := d.resolveWanted[0]
		d.resolveWanted = d.resolveWanted[1:]
		err := workflow.ExecuteActivity(storeOptions(ctx), a.ResolveDelivery, d.in.Number, d.msg.Attempt, sig).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			reason := pipeline.RootMessage(err)
			d.last = "resolve-delivery refused: " + reason
			if lerr := workflow.ExecuteActivity(storeOptions(ctx), a.WriteLog, pipeline.LogLine{Message: d.in.Number, Step: domain.StepSend,
				Level: domain.LevelError, Description: fmt.Sprintf("resolve-delivery for message %d refused: %s", d.in.Number, reason)}).Get(ctx, nil); lerr != nil {
				return lerr
			}
			continue
		}
		if err != nil {
			return err
		}
		d.in.Retry = pipeline.RetryState{}
		if sig.DeliverAgain {
			d.sendWanted = true
			d.last = "delivered again as " + sig.By + " decided"
		} else {
			d.last = fmt.Sprintf("kenmerk %s adopted as %s decided", sig.Adopt, sig.By)
		}
		if err := d.load(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *declaration) handleAssignments(ctx workflow.Context) error {
	for len(d.assignWanted) > 0 {
		sig := d.assignWanted[0]
		d.assignWanted = d.assignWanted[1:]
		err := workflow.ExecuteActivity(storeOptions(ctx), a.AssignEnvironment, d.in.Number, sig).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() {
			reason := pipeline.RootMessage(err)
			d.last = "assign-environment refused: " + reason
			if lerr := workflow.ExecuteActivity(storeOptions(ctx), a.WriteLog, pipeline.LogLine{Message: d.in.Number,
				Step: domain.StepEnvironment, Level: domain.LevelError,
				Description: "assign-environment for message " + fmt.Sprint(d.in.Number) + " refused: " + reason}).Get(ctx, nil); lerr != nil {
				return lerr
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := d.load(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (d *declaration) logCancelled(ctx workflow.Context) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	line := pipeline.LogLine{Message: d.in.Number, Step: domain.StepWorkflow, Level: domain.LevelError,
		Description: fmt.Sprintf(
			"workflow of message %d was cancelled while the message was %s; the message is not withdrawn (a queued message cannot be)",
			d.in.Number,
			d.msg.Status,
		),
		Information: "Postgres keeps it; the next send/receive, a new reply, `starter process` or `starter restore` start its workflow again"}
	_ = workflow.ExecuteActivity(storeOptions(dctx), a.WriteLog, line).Get(dctx, nil)
}
