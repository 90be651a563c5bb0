package activities

import (
	"context"
	"errors"
	"fmt"

	"koerier/pipeline"
	"koerier/store"
)

// onbStore is what the unknown replies' activities need of Postgres.
type onbStore interface {
	UnknownRepliesOf(ctx context.Context, numbers []int64) ([]store.ONB, error)
	UnknownRepliesToConfirm(ctx context.Context, limit int) ([]store.ONB, error)
	ConfirmONBWorkflows(ctx context.Context, numbers []int64) error
	LinkONB(ctx context.Context, number, message int64, who, memo string) (store.ONBLinkResult, error)
	ResolveONB(ctx context.Context, number int64, who, memo string) (store.ONBResolveResult, error)
	UnknownReplyFate(ctx context.Context, number int64) (store.ONBFate, error)
}

// openONBSweep bounds the open unknown replies one send/receive run makes sure have a
// workflow; there are normally a handful. Those never confirmed go first, oldest first,
// then those not confirmed for a day (store.UnknownRepliesToConfirm): with more open
// than this, each run reaches the next ones.
const openONBSweep = 100

// startUnknownReplies starts (or leaves running) the workflow of each unknown reply,
// so that it shows in the Web UI under KoerierStatus="unknown" (rule 5).
func (a *Activities) startUnknownReplies(ctx context.Context, numbers []int64) error {
	if len(numbers) == 0 {
		return nil
	}
	onbs, err := a.Store.UnknownRepliesOf(ctx, numbers) // one linked or cleaned up meanwhile is left out
	if err != nil {
		return err
	}
	return a.startONBWorkflows(ctx, onbs)
}

func (a *Activities) startONBWorkflows(ctx context.Context, onbs []store.ONB) error {
	_, err := a.startAndConfirm(ctx, onbs)
	return err
}

// startAndConfirm starts (or finds running) the workflows of onbs, records the ones
// Temporal confirmed, and returns how many starts failed.
func (a *Activities) startAndConfirm(ctx context.Context, onbs []store.ONB) (failed int, err error) {
	errs := a.forEach(ctx, len(onbs), func(i int) error {
		return a.Config.Starter.StartUnknownReply(ctx, ONBInput(onbs[i]))
	})
	var confirmed []int64
	for i, e := range errs {
		if e != nil {
			failed++
			continue
		}
		confirmed = append(confirmed, onbs[i].Number)
	}
	return failed, errors.Join(append(errs, a.Store.ConfirmONBWorkflows(ctx, confirmed))...)
}

// sweepUnknownReplies starts the workflow of every open unknown reply that has none: a
// run that stored one and died before starting its workflow, an ONB stored before
// these workflows existed, or a workflow that was terminated. A running one is left be.
//
// Bounded so that a Temporal that refuses every start costs one round, not a call per
// open reply each run: the starts go in rounds of Config.Parallel, and a round in which
// every start failed ends the sweep (the next run tries again). A reply whose own start
// keeps failing does not stop the others.
func (a *Activities) sweepUnknownReplies(ctx context.Context) error {
	open, err := a.Store.UnknownRepliesToConfirm(ctx, openONBSweep)
	if err != nil {
		return err
	}
	round := max(a.Config.Parallel, 1)
	var errs []error
	for start := 0; start < len(open); start += round {
		batch := open[start:min(start+round, len(open))]
		failed, err := a.startAndConfirm(ctx, batch)
		if err != nil {
			errs = append(errs, err)
		}
		if failed == len(batch) {
			if rest := len(open) - start - len(batch); rest > 0 {
				errs = append(errs, fmt.Errorf("every start of a round failed; the workflows of %d more open unknown replies are started by a "+
					"later run", rest))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// ONBInput is the workflow input of a stored unknown reply.
func ONBInput(o store.ONB) pipeline.UnknownReplyInput {
	return pipeline.UnknownReplyInput{Number: o.Number, Kenmerk: o.PickupKenmerk, Berichtsoort: o.Berichtsoort, Subject: o.Subject}
}

// ONBState says whether an unknown reply is still open, for its workflow to end at
// once when it was handled (by the command line while the workflow was away, say),
// and if so how: linked (Message is the message) or resolved, so that the workflow
// reports the right KoerierStatus. A reply removed meanwhile is not open.
func (a *Activities) ONBState(ctx context.Context, number int64) (pipeline.ONBOutcome, error) {
	fate, err := a.Store.UnknownReplyFate(ctx, number)
	if err != nil {
		return pipeline.ONBOutcome{}, err
	}
	return pipeline.ONBOutcome{Number: number, Open: fate.Open, Message: fate.LinkedTo}, nil
}

// HandleONB links an unknown reply to a message or resolves it (store.LinkONB,
// store.ResolveONB), and tells the message's workflow about a status it applied, as
// send/receive does. Both store operations are no-ops when done already, so the
// command line may do them first and then signal the workflow, and a retry is harmless.
func (a *Activities) HandleONB(ctx context.Context, req pipeline.ONBRequest) (pipeline.ONBOutcome, error) {
	by := req.By
	if by == "" {
		by = "an operator (Web UI)"
	}
	if req.Message <= 0 {
		if _, err := a.Store.ResolveONB(ctx, req.Number, by, req.Memo); err != nil {
			return pipeline.ONBOutcome{}, final(err)
		}
		return pipeline.ONBOutcome{Number: req.Number}, nil
	}
	res, err := a.Store.LinkONB(ctx, req.Number, req.Message, by, req.Memo)
	if err != nil {
		return pipeline.ONBOutcome{}, final(err)
	}
	if err := a.signalReplies(ctx, []int64{req.Message}); err != nil {
		return pipeline.ONBOutcome{}, fmt.Errorf("unknown reply %d is linked to message %d; telling its workflow: %w", req.Number, req.Message, err)
	}
	return pipeline.ONBOutcome{Number: req.Number, Message: res.Message, Code: res.Code, Status: res.Status}, nil
}

// startUnknownRepliesOrLeave starts the workflows of unknown replies just stored. It
// does not fail the activity: the replies are stored and a retry would not see them as
// new; the sweep at the end of the run (SignalPendingReplies) starts what is missing.
func (a *Activities) startUnknownRepliesOrLeave(ctx context.Context, numbers []int64) {
	if err := a.startUnknownReplies(ctx, numbers); err != nil {
		a.log().WithError(err).WithField("unknown_replies", len(numbers)).Warn("workflows of unknown replies not started yet; the end of the run tries again")
	}
}
