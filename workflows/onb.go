package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/pipeline"
)

// onbRecheck is how often an open unknown reply's workflow asks Postgres whether the
// command line handled the reply while the workflow was not told (its signal failed).
const onbRecheck = 24 * time.Hour

// UnknownReplyWorkflow keeps one unknown reply (ONB) visible in the Web UI until an
// operator links it to a message or resolves it (rule 5 in docs/rules.md): it waits for
// the signal link (LinkONBSignal) or resolve (ResolveONBSignal), does it through the
// HandleONB activity, sets KoerierStatus to linked or resolved, and ends. A refused
// signal (a message about another subject, say) ends nothing: the refusal is in the
// details and the state query, and the workflow waits for the next one. Postgres is
// the record of truth: a reply handled elsewhere ends the workflow at once.
func UnknownReplyWorkflow(ctx workflow.Context, in pipeline.UnknownReplyInput) (pipeline.ONBOutcome, error) {
	st := pipeline.ONBState{Number: in.Number, Kenmerk: in.Kenmerk, Berichtsoort: in.Berichtsoort, Subject: in.Subject,
		Status: pipeline.ONBStatusUnknown}
	if err := workflow.SetQueryHandler(ctx, pipeline.QueryState, func() (pipeline.ONBState, error) { return st, nil }); err != nil {
		return pipeline.ONBOutcome{}, err
	}
	sctx := storeOptions(ctx)
	publish := func() {
		s := fmt.Sprintf("**%s** · unknown reply %d · kenmerk %s", st.Status, in.Number, in.Kenmerk)
		if in.Subject != "" {
			s += " · belanghebbende " + in.Subject
		}
		if st.Status == pipeline.ONBStatusUnknown {
			s += "\n\nsignal `link` with {\"Message\": <number>, \"Memo\": \"…\"} or `resolve` with {\"Memo\": \"…\"}; " +
				"or `starter onb link|resolve`"
		}
		if st.Last != "" {
			s += "\n\n" + st.Last
		}
		workflow.SetCurrentDetails(ctx, s)
	}
	end := func(out pipeline.ONBOutcome) (pipeline.ONBOutcome, error) {
		st.Status = pipeline.ONBStatusResolved
		if out.Message > 0 {
			st.Status = pipeline.ONBStatusLinked
		}
		publish()
		if err := workflow.UpsertTypedSearchAttributes(ctx, pipeline.SAStatus.ValueSet(st.Status)); err != nil {
			return out, err
		}
		return out, nil
	}
	// check reads how the reply stands in Postgres: handled elsewhere, it says whether it
	// was linked (Message) or resolved, and end reports that.
	check := func() (pipeline.ONBOutcome, error) {
		var cur pipeline.ONBOutcome
		if err := workflow.ExecuteActivity(sctx, a.ONBState, in.Number).Get(ctx, &cur); err != nil {
			return pipeline.ONBOutcome{}, err
		}
		return cur, nil
	}
	handled := func(when string, cur pipeline.ONBOutcome) (pipeline.ONBOutcome, error) {
		st.Last = "resolved " + when
		if cur.Message > 0 {
			st.Last = fmt.Sprintf("linked to message %d %s", cur.Message, when)
		}
		return end(pipeline.ONBOutcome{Number: in.Number, Message: cur.Message})
	}
	cur, err := check()
	if err != nil {
		return pipeline.ONBOutcome{}, err
	}
	if !cur.Open {
		return handled("before this workflow looked", cur)
	}
	publish()
	linkCh := workflow.GetSignalChannel(ctx, pipeline.SignalLinkONB)
	resolveCh := workflow.GetSignalChannel(ctx, pipeline.SignalResolveONB)
	for {
		var req *pipeline.ONBRequest
		recheck := false
		tctx, cancel := workflow.WithCancel(ctx)
		sel := workflow.NewSelector(ctx)
		sel.AddReceive(linkCh, func(c workflow.ReceiveChannel, _ bool) {
			var s pipeline.LinkONBSignal
			c.Receive(ctx, &s)
			if s.Message <= 0 {
				st.Last = "link refused: give the number of the outgoing message it answers, {\"Message\": <number>}"
				publish()
				return
			}
			req = &pipeline.ONBRequest{Number: in.Number, Message: s.Message, Memo: s.Memo, By: s.By}
		})
		sel.AddReceive(resolveCh, func(c workflow.ReceiveChannel, _ bool) {
			var s pipeline.ResolveONBSignal
			c.Receive(ctx, &s)
			req = &pipeline.ONBRequest{Number: in.Number, Memo: s.Memo, By: s.By}
		})
		sel.AddFuture(workflow.NewTimer(tctx, onbRecheck), func(workflow.Future) { recheck = true })
		sel.Select(ctx)
		cancel()
		if recheck {
			cur, err := check()
			if err != nil {
				return pipeline.ONBOutcome{}, err
			}
			if !cur.Open {
				return handled("outside this workflow", cur)
			}
		}
		if req != nil {
			if req.Message == 0 && req.Memo == "" {
				st.Last = "resolve refused: give a memo that says what the reply was and why nothing else is done"
				publish()
			} else {
				var out pipeline.ONBOutcome
				err := workflow.ExecuteActivity(sctx, a.HandleONB, *req).Get(ctx, &out)
				var ae *temporal.ApplicationError
				switch {
				case err == nil:
					if out.Message > 0 {
						st.Last = fmt.Sprintf("linked to message %d by %s", out.Message, by(req.By))
						if out.Code != "" {
							st.Last += fmt.Sprintf("; status %s applied, the message is %s", out.Code, out.Status)
						}
					} else {
						st.Last = fmt.Sprintf("resolved by %s: %s", by(req.By), req.Memo)
					}
					return end(out)
				case errors.As(err, &ae) && ae.NonRetryable():
					// The store's word on why not: the operator reads it and signals again.
					st.Last = "refused: " + ae.Error()
					publish()
				default:
					return pipeline.ONBOutcome{}, err
				}
			}
		}
		// Only with no signal waiting: a link or resolve buffered in this run's channels
		// would be lost with it. The loop takes it first, and continues as new after.
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > historyLimit && linkCh.Len() == 0 && resolveCh.Len() == 0 {
			return pipeline.ONBOutcome{}, workflow.NewContinueAsNewError(ctx, UnknownReplyWorkflow, in)
		}
	}
}

func by(who string) string {
	if who == "" {
		return "an operator (Web UI)"
	}
	return who
}
