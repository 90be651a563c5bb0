package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/domain"
	"koerier/pipeline"
)

// awaitChunk bounds the numbers one AwaitSendOutcomes call checks.
const awaitChunk = 2000

// SendReceiveWorkflow is one send/receive run: it takes the 30-minute lock (a second
// run fails at once, naming the holder and when the lock is released), sends
// everything due, fetches the statuses of everything in flight and everything put
// ready for pickup in the last 30 days, routes each reply to its message's workflow,
// and releases the lock, also when it fails. It works in pages and continues as new
// before its history grows large, carrying the lock and the counts.
func SendReceiveWorkflow(ctx workflow.Context, in pipeline.SendReceiveInput) (pipeline.SendReceiveCounts, error) {
	r := &sendReceive{in: in}
	r.fillDefaults(ctx)
	if err := workflow.ExecuteActivity(lockOptions(ctx), a.AcquireLock, r.in.Holder).Get(ctx, nil); err != nil {
		return r.in.Counts, err
	}
	defer r.release(ctx)
	if err := r.run(ctx); err != nil {
		r.stopPickup(ctx)
		return r.in.Counts, err
	}
	return r.in.Counts, r.finish(ctx)
}

// sendReceive is one run; in carries it across continue-as-new.
type sendReceive struct {
	in pipeline.SendReceiveInput
	// continuing is set when the run continues as new: the lock goes along.
	continuing bool
	// pagesRenew: each page's activity renews the lock itself (pipeline.*Request.Holder),
	// which saves a RenewLock activity and its workflow task per page, and a pickup runs
	// beside the status pages (pickupF). Histories from before renew the lock with
	// RenewLock after each page and pick up after the last one, and replay so.
	pagesRenew bool
	// pickupF is the pickup running beside the status pages (nil: not running);
	// cancelPickup stops it when the run ends early.
	pickupF      workflow.Future
	cancelPickup workflow.CancelFunc
}

// pickupWait bounds one pickup attempt's wait for Digipoort and the store.
const pickupWait = 20 * time.Minute

// holder is what a page's request carries to renew the lock: empty where the run
// renews it with RenewLock.
func (r *sendReceive) holder() string {
	if r.pagesRenew {
		return r.in.Holder
	}
	return ""
}

func (r *sendReceive) fillDefaults(ctx workflow.Context) {
	if r.in.PageSize <= 0 {
		r.in.PageSize = pipeline.DefaultPageSize
	}
	if r.in.SendWait <= 0 {
		r.in.SendWait = pipeline.DefaultSendWait
	}
	if r.in.Trigger == "" {
		r.in.Trigger = "manual"
	}
	if r.in.Holder == "" {
		r.in.Holder = fmt.Sprintf("send/receive %s (%s)", workflow.GetInfo(ctx).WorkflowExecution.ID, r.in.Trigger)
		r.in.Phase = pipeline.PhaseSend
	}
}

// release frees the lock, also when the run failed or was cancelled, unless the run
// continues as new and keeps it.
func (r *sendReceive) release(ctx workflow.Context) {
	if r.continuing {
		return
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	_ = workflow.ExecuteActivity(lockOptions(dctx), a.ReleaseLock, r.in.Holder).Get(dctx, nil)
}

// run works through the paged phases, each page renewing the lock, and continues as
// new when the history grows large. A pickup starts with the status pages and runs
// beside them: it needs none of their results (a document and the status it belongs to
// may be stored in either order), and while the pages keep Temporal busy, pickup's own
// calls keep Digipoort and the worker busy. Measured at 1,000 due messages, pickup
// after the pages took 12 of 90 s with the Temporal server idle. A last pickup after the
// pages fetches only what became ready meanwhile.
func (r *sendReceive) run(ctx workflow.Context) error {
	r.pagesRenew = workflow.GetVersion(ctx, "pages-renew-lock-pickup-beside", workflow.DefaultVersion, 1) == 1
	for r.in.Phase != pipeline.PhasePickup {
		if r.pagesRenew && r.in.Phase == pipeline.PhaseReceive && r.pickupF == nil && !r.in.PickedUp {
			r.startPickupBeside(ctx)
		}
		var paged bool
		var err error
		switch r.in.Phase {
		case pipeline.PhaseSend:
			paged, err = r.sendPage(ctx)
		case pipeline.PhaseAwait:
			paged, err = r.awaitChunk(ctx)
		case pipeline.PhaseReceive:
			paged, err = r.receivePage(ctx)
		default:
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("send/receive phase %q is unknown", r.in.Phase), pipeline.ErrTypeInvalid, nil)
		}
		if err != nil {
			return err
		}
		if !paged {
			continue
		}
		if !r.pagesRenew {
			if err := r.renewLock(ctx); err != nil {
				return err
			}
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() >= historyLimit {
			if r.pickupF != nil {
				// The new run cannot take over a running activity: it ends here first, and
				// the lock, which the wait may have worn, goes along renewed.
				if err := r.pickedUpBeside(ctx); err != nil {
					return err
				}
				if err := r.renewLock(ctx); err != nil {
					return err
				}
			}
			r.continuing = true
			r.in.Counts.Continued++
			return workflow.NewContinueAsNewError(ctx, SendReceiveWorkflow, r.in)
		}
	}
	return r.pickup(ctx)
}

// renewLock extends the run's lock by another 30 minutes from now; a run that lost it
// stops.
func (r *sendReceive) renewLock(ctx workflow.Context) error {
	if err := workflow.ExecuteActivity(lockOptions(ctx), a.RenewLock, r.in.Holder).Get(ctx, nil); err != nil {
		return fmt.Errorf("%s: %w", pipeline.LostLock, err)
	}
	return nil
}

// startPickupBeside starts the pickup that runs beside the status pages. It waits for
// its cancellation, so that a run that ends early has it stopped before the lock is
// released.
func (r *sendReceive) startPickupBeside(ctx workflow.Context) {
	cctx, cancel := workflow.WithCancel(ctx)
	cctx = workflow.WithWaitForCancellation(pageOptions(cctx, pickupWait), true)
	r.pickupF, r.cancelPickup = workflow.ExecuteActivity(cctx, a.ReceivePickup), cancel
}

// stopPickup cancels the pickup beside the pages of a run that ends early and waits
// until it has stopped.
func (r *sendReceive) stopPickup(ctx workflow.Context) {
	if r.pickupF == nil {
		return
	}
	r.cancelPickup()
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	_ = r.pickupF.Get(dctx, nil)
	r.pickupF = nil
}

// sendPage tells one page of due messages to deliver.
func (r *sendReceive) sendPage(ctx workflow.Context) (bool, error) {
	if r.in.SendSince.IsZero() {
		r.in.SendSince = workflow.Now(ctx).Add(-time.Minute)
	}
	var page pipeline.DispatchResult
	req := pipeline.DispatchRequest{After: r.in.After, Limit: r.in.PageSize, By: r.in.Holder, Holder: r.holder()}
	if err := workflow.ExecuteActivity(pageOptions(ctx, 0), a.DispatchSends, req).Get(ctx, &page); err != nil {
		return false, fmt.Errorf("send: %w", err)
	}
	r.in.Counts.Dispatched += len(page.Numbers)
	r.in.Dispatched = append(r.in.Dispatched, page.Numbers...)
	r.in.After = page.Next
	if !page.More {
		r.in.Phase, r.in.After = pipeline.PhaseAwait, 0
	}
	return true, nil
}

// awaitChunk counts what became of a chunk of the dispatched messages. Deliveries run
// in the messages' own workflows, all pages at once; the run waits for them together
// (bounded by SendWait) only to count them. What is still being delivered then is
// counted as still sending and goes on by itself.
func (r *sendReceive) awaitChunk(ctx workflow.Context) (bool, error) {
	if r.in.AwaitUntil.IsZero() {
		r.in.AwaitUntil = workflow.Now(ctx).Add(r.in.SendWait)
	}
	if len(r.in.Dispatched) == 0 {
		r.in.Phase = pipeline.PhaseReceive
		return false, nil
	}
	chunk := r.in.Dispatched[:min(len(r.in.Dispatched), awaitChunk)]
	var out pipeline.SendOutcome
	req := pipeline.AwaitRequest{Numbers: chunk, Since: r.in.SendSince, Timeout: max(r.in.AwaitUntil.Sub(workflow.Now(ctx)), 0), Holder: r.holder()}
	if err := workflow.ExecuteActivity(pageOptions(ctx, r.in.SendWait), a.AwaitSendOutcomes, req).Get(ctx, &out); err != nil {
		return false, fmt.Errorf("send: wait for deliveries: %w", err)
	}
	c := &r.in.Counts
	c.Sent += out.Sent
	c.Failed += out.Failed
	c.DeliveryError += out.Errors
	c.Refused += out.Refused
	c.StillSending += len(out.Pending)
	r.in.Dispatched = r.in.Dispatched[len(chunk):]
	return true, nil
}

// receivePage fetches the statuses of one page of deliveries in flight. When
// Digipoort's status service keeps failing it says so and goes on to pickup; the next
// run asks again (nothing is lost, Digipoort keeps the statuses).
func (r *sendReceive) receivePage(ctx workflow.Context) (bool, error) {
	var page pipeline.ReceiveResult
	err := workflow.ExecuteActivity(pageOptions(ctx, 0), a.ReceiveStatuses, pipeline.ReceiveRequest{After: r.in.After, Limit: r.in.PageSize, Holder: r.holder()}).Get(ctx, &page)
	if err != nil {
		if isFinalOrCanceled(ctx, err) {
			return false, fmt.Errorf("receive: %w", err)
		}
		r.in.Counts.ReceiveErrors++
		workflow.GetLogger(ctx).Warn("status page failed", "after", r.in.After, "error", err)
		r.in.Phase = pipeline.PhasePickup
		return false, r.log(ctx, domain.LevelError,
			fmt.Sprintf("send/receive could not fetch statuses of deliveries after message %d: %s", r.in.After, pipeline.RootMessage(err)),
			"the next send/receive asks again; check Digipoort's availability and the certificate")
	}
	c := &r.in.Counts
	c.InFlight += page.Deliveries
	c.Replies += page.Replies
	c.ONB += page.Unknown
	c.ReceiveErrors += page.Errors
	r.in.After = page.Next
	if !page.More {
		r.in.Phase, r.in.After = pipeline.PhasePickup, 0
	}
	return true, nil
}

// pickup waits for the pickup beside the status pages, if one runs, renews the lock
// for what is left (each pickup attempt may take up to pickupWait), and fetches what
// Digipoort put ready for pickup since; then it tells workflows about replies a crashed
// run stored but did not signal.
func (r *sendReceive) pickup(ctx workflow.Context) error {
	if r.pagesRenew {
		if r.pickupF != nil {
			if err := r.pickedUpBeside(ctx); err != nil {
				return err
			}
		}
		if err := r.renewLock(ctx); err != nil {
			return err
		}
	}
	if err := r.lastPickup(ctx); err != nil {
		return err
	}
	return workflow.ExecuteActivity(storeOptions(ctx), a.SignalPendingReplies).Get(ctx, nil)
}

// pickedUpBeside waits for the pickup beside the status pages and counts what it
// stored. Its trouble is not counted: the last pickup after the pages asks for the
// same kenmerken again and counts (and logs) what is still wrong then.
func (r *sendReceive) pickedUpBeside(ctx workflow.Context) error {
	var pick pipeline.PickupResult
	err := r.pickupF.Get(ctx, &pick)
	r.pickupF, r.in.PickedUp = nil, true
	r.in.Counts.Documents += pick.Linked
	r.in.Counts.ONB += pick.Unknown
	if err != nil {
		if isFinalOrCanceled(ctx, err) {
			return fmt.Errorf("pickup: %w", err)
		}
		workflow.GetLogger(ctx).Warn("pickup beside the status pages failed; the last pickup asks again", "error", err)
	}
	return nil
}

// lastPickup fetches what is ready for pickup and counts what it did; trouble that a
// later run mends by looking back 30 days again is an F line, not the run's failure.
func (r *sendReceive) lastPickup(ctx workflow.Context) error {
	var pick pipeline.PickupResult
	err := workflow.ExecuteActivity(pageOptions(ctx, pickupWait), a.ReceivePickup).Get(ctx, &pick)
	r.in.Counts.Documents += pick.Linked
	r.in.Counts.ONB += pick.Unknown
	// A kenmerk Digipoort refused for good is an F line of its own; the run is not
	// complete while one is left behind.
	r.in.Counts.ReceiveErrors += pick.Errors
	if err != nil {
		if isFinalOrCanceled(ctx, err) {
			return fmt.Errorf("pickup: %w", err)
		}
		r.in.Counts.ReceiveErrors++
		return r.log(ctx, domain.LevelError, "send/receive could not fetch the messages ready for pickup: "+pipeline.RootMessage(err),
			"the next send/receive looks back 30 days again, so nothing is missed if Digipoort answers within that time")
	}
	return nil
}

// finish writes the run's summary line: F when anything needs a look.
func (r *sendReceive) finish(ctx workflow.Context) error {
	c := &r.in.Counts
	c.Complete = c.StillSending == 0 && c.ReceiveErrors == 0
	level, what := domain.LevelInfo, ""
	if !c.Complete || c.Failed > 0 || c.DeliveryError > 0 || c.ONB > 0 {
		level = domain.LevelError
		what = "see the F lines of this run for each message; unknown replies wait in `starter messages`; messages still sending are sent by the next run"
	}
	summary := fmt.Sprintf("send/receive (%s): %s", r.in.Trigger, c)
	return r.log(ctx, level, summary, what)
}

// log writes a line about the run, once even when the activity is retried.
func (r *sendReceive) log(ctx workflow.Context, level domain.Level, description, information string) error {
	return workflow.ExecuteActivity(storeOptions(ctx), a.WriteLog, pipeline.LogLine{Step: domain.StepSendReceive, Level: level,
		Description: description, Information: information,
		DedupeKey: fmt.Sprintf("run/%s/%s/%s", workflow.GetInfo(ctx).WorkflowExecution.RunID, level, description)}).Get(ctx, nil)
}

func isFinalOrCanceled(ctx workflow.Context, err error) bool {
	if ctx.Err() != nil || temporal.IsCanceledError(err) {
		return true
	}
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable() && app.Type() != pipeline.ErrTypeDigipoortFinal
}
