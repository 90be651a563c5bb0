package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/store"
)

// SendReceiveInput starts a send/receive run; the fields after Trigger carry a run
// across continue-as-new.
type SendReceiveInput struct {
	// Trigger says who started the run: "schedule", or "manual (<who>)".
	Trigger string
	// PageSize is how many messages one activity handles; 0 means 200.
	PageSize int
	// SendWait bounds how long a page waits for its deliveries; 0 means 10 minutes.
	SendWait time.Duration

	Holder     string
	Phase      string
	After      int64
	Dispatched []int64
	SendSince  time.Time
	AwaitUntil time.Time
	Counts     SendReceiveCounts
}

// awaitChunk bounds the numbers one AwaitSendOutcomes call checks.
const awaitChunk = 2000

// SendReceiveCounts is what a run did; `starter send-receive --json` prints it.
type SendReceiveCounts struct {
	Dispatched    int  `json:"dispatched"`
	Sent          int  `json:"sent"`
	Failed        int  `json:"failed"`
	DeliveryError int  `json:"delivery_errors"`
	Refused       int  `json:"refused"`
	StillSending  int  `json:"still_sending"`
	InFlight      int  `json:"in_flight"`
	Replies       int  `json:"replies"`
	Documents     int  `json:"documents"`
	ONB           int  `json:"onb"`
	ReceiveErrors int  `json:"receive_errors"`
	Continued     int  `json:"continued_as_new"`
	Complete      bool `json:"complete"`
}

const (
	phaseSend    = "send"
	phaseAwait   = "await"
	phaseReceive = "receive"
	phasePickup  = "pickup"
)

// SendReceiveWorkflow is one send/receive run: it takes the 30-minute lock (a second
// run fails at once, naming the holder and when the lock is released), sends
// everything due, fetches the statuses of everything in flight and everything put
// ready for pickup in the last 30 days, routes each reply to its message's workflow,
// and releases the lock, also when it fails. It works in pages and continues as new
// before its history grows large, carrying the lock and the counts.
func SendReceiveWorkflow(ctx workflow.Context, in SendReceiveInput) (SendReceiveCounts, error) {
	if in.PageSize <= 0 {
		in.PageSize = 200
	}
	if in.SendWait <= 0 {
		in.SendWait = 10 * time.Minute
	}
	if in.Trigger == "" {
		in.Trigger = "manual"
	}
	info := workflow.GetInfo(ctx)
	if in.Holder == "" {
		in.Holder = fmt.Sprintf("send/receive %s (%s)", info.WorkflowExecution.ID, in.Trigger)
		in.Phase = phaseSend
	}
	if err := workflow.ExecuteActivity(lockOptions(ctx), a.AcquireLock, in.Holder).Get(ctx, nil); err != nil {
		return in.Counts, err
	}
	continuing := false
	defer func() {
		if continuing {
			return
		}
		// Release even when the run failed or was cancelled.
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		_ = workflow.ExecuteActivity(lockOptions(dctx), a.ReleaseLock, in.Holder).Get(dctx, nil)
	}()
	logger := workflow.GetLogger(ctx)

	for in.Phase == phaseSend {
		if in.SendSince.IsZero() {
			in.SendSince = workflow.Now(ctx).Add(-time.Minute)
		}
		var page activities.DispatchResult
		if err := workflow.ExecuteActivity(pageOptions(ctx, 0), a.DispatchSends, activities.DispatchRequest{After: in.After, Limit: in.PageSize, By: in.Holder}).Get(ctx, &page); err != nil {
			return in.Counts, fmt.Errorf("send: %w", err)
		}
		in.Counts.Dispatched += len(page.Numbers)
		in.Dispatched = append(in.Dispatched, page.Numbers...)
		in.After = page.Next
		if !page.More {
			in.Phase, in.After = phaseAwait, 0
		}
		if err := renew(ctx, in.Holder); err != nil {
			return in.Counts, err
		}
		if cont, err := maybeContinue(ctx, &in, &continuing); cont {
			return in.Counts, err
		}
	}

	// Deliveries run in the messages' own workflows, all pages at once; the run waits
	// for them together (bounded by SendWait) only to count them. What is still being
	// delivered then is counted as still sending and goes on by itself.
	for in.Phase == phaseAwait {
		if in.AwaitUntil.IsZero() {
			in.AwaitUntil = workflow.Now(ctx).Add(in.SendWait)
		}
		if len(in.Dispatched) == 0 {
			in.Phase = phaseReceive
			break
		}
		chunk := in.Dispatched[:min(len(in.Dispatched), awaitChunk)]
		var out store.SendOutcome
		req := activities.AwaitRequest{Numbers: chunk, Since: in.SendSince, Timeout: max(in.AwaitUntil.Sub(workflow.Now(ctx)), 0)}
		if err := workflow.ExecuteActivity(pageOptions(ctx, in.SendWait), a.AwaitSendOutcomes, req).Get(ctx, &out); err != nil {
			return in.Counts, fmt.Errorf("send: wait for deliveries: %w", err)
		}
		in.Counts.Sent += out.Sent
		in.Counts.Failed += out.Failed
		in.Counts.DeliveryError += out.Errors
		in.Counts.Refused += out.Refused
		in.Counts.StillSending += len(out.Pending)
		in.Dispatched = in.Dispatched[len(chunk):]
		if err := renew(ctx, in.Holder); err != nil {
			return in.Counts, err
		}
		if cont, err := maybeContinue(ctx, &in, &continuing); cont {
			return in.Counts, err
		}
	}

	for in.Phase == phaseReceive {
		var page activities.ReceiveResult
		err := workflow.ExecuteActivity(pageOptions(ctx, 0), a.ReceiveStatuses, activities.ReceiveRequest{After: in.After, Limit: in.PageSize}).Get(ctx, &page)
		if err != nil {
			if isFinalOrCanceled(ctx, err) {
				return in.Counts, fmt.Errorf("receive: %w", err)
			}
			// Digipoort's status service keeps failing: log it, go on to pickup; the
			// next run asks again (nothing is lost, statuses are kept at Digipoort).
			in.Counts.ReceiveErrors++
			logger.Warn("status page failed", "after", in.After, "error", err)
			if lerr := writeRunLog(ctx, "F", fmt.Sprintf("send/receive could not fetch statuses of deliveries after message %d: %s", in.After, rootMessage(err)),
				"the next send/receive asks again; check Digipoort's availability and the certificate"); lerr != nil {
				return in.Counts, lerr
			}
			in.Phase = phasePickup
			break
		}
		in.Counts.InFlight += page.Deliveries
		in.Counts.Replies += page.Replies
		in.Counts.ONB += page.Unknown
		in.Counts.ReceiveErrors += page.Errors
		in.After = page.Next
		if !page.More {
			in.Phase, in.After = phasePickup, 0
		}
		if err := renew(ctx, in.Holder); err != nil {
			return in.Counts, err
		}
		if cont, err := maybeContinue(ctx, &in, &continuing); cont {
			return in.Counts, err
		}
	}

	if in.Phase == phasePickup {
		var pick activities.PickupResult
		err := workflow.ExecuteActivity(pageOptions(ctx, 20*time.Minute), a.ReceivePickup).Get(ctx, &pick)
		in.Counts.Documents += pick.Linked
		in.Counts.ONB += pick.Unknown
		if err != nil {
			if isFinalOrCanceled(ctx, err) {
				return in.Counts, fmt.Errorf("pickup: %w", err)
			}
			in.Counts.ReceiveErrors++
			if lerr := writeRunLog(ctx, "F", "send/receive could not fetch the messages ready for pickup: "+rootMessage(err),
				"the next send/receive looks back 30 days again, so nothing is missed if Digipoort answers within that time"); lerr != nil {
				return in.Counts, lerr
			}
		}
		if err := workflow.ExecuteActivity(storeOptions(ctx), a.SignalPendingReplies).Get(ctx, nil); err != nil {
			return in.Counts, err
		}
	}

	in.Counts.Complete = in.Counts.StillSending == 0 && in.Counts.ReceiveErrors == 0
	level := "I"
	if !in.Counts.Complete || in.Counts.Failed > 0 || in.Counts.DeliveryError > 0 || in.Counts.ONB > 0 {
		level = "F"
	}
	c := in.Counts
	summary := fmt.Sprintf("send/receive (%s): sent %d, send failed %d, delivery errors %d, still sending %d, statuses %d for %d deliveries, reply documents %d, unknown replies %d, receive errors %d",
		in.Trigger, c.Sent, c.Failed, c.DeliveryError, c.StillSending, c.Replies, c.InFlight, c.Documents, c.ONB, c.ReceiveErrors)
	what := ""
	if level == "F" {
		what = "see the F lines of this run for each message; unknown replies wait in `starter messages`; messages still sending are sent by the next run"
	}
	if err := writeRunLog(ctx, level, summary, what); err != nil {
		return in.Counts, err
	}
	return in.Counts, nil
}

func renew(ctx workflow.Context, holder string) error {
	if err := workflow.ExecuteActivity(lockOptions(ctx), a.RenewLock, holder).Get(ctx, nil); err != nil {
		return fmt.Errorf("send/receive lost its lock (the worker was away for more than 30 minutes and another run took over): %w", err)
	}
	return nil
}

func maybeContinue(ctx workflow.Context, in *SendReceiveInput, continuing *bool) (bool, error) {
	if workflow.GetInfo(ctx).GetCurrentHistoryLength() < historyLimit {
		return false, nil
	}
	*continuing = true
	in.Counts.Continued++
	return true, workflow.NewContinueAsNewError(ctx, SendReceiveWorkflow, *in)
}

func writeRunLog(ctx workflow.Context, level, description, information string) error {
	return workflow.ExecuteActivity(storeOptions(ctx), a.WriteLog, activities.LogLine{Step: store.StepSendReceive, Level: level,
		Description: description, Information: information,
		DedupeKey: fmt.Sprintf("run/%s/%s/%s", workflow.GetInfo(ctx).WorkflowExecution.RunID, level, description)}).Get(ctx, nil)
}

func isFinalOrCanceled(ctx workflow.Context, err error) bool {
	if ctx.Err() != nil || temporal.IsCanceledError(err) {
		return true
	}
	var app *temporal.ApplicationError
	return errors.As(err, &app) && app.NonRetryable() && app.Type() != activities.ErrTypeDigipoortFinal
}
