package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"koerier/activities"
	"koerier/domain"
	"koerier/pipeline"
)

// An unknown reply's workflow waits for the operator: a refused link (and a link
// without a message) ends nothing and shows why; the next link is done and ends it,
// with KoerierStatus set to linked.
func TestUnknownReplyWaitsForALinkThatWorks(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ONBState, mock.Anything, int64(42)).Return(pipeline.ONBOutcome{Number: 42, Open: true}, nil)
	var asked []pipeline.ONBRequest
	env.OnActivity(a.HandleONB, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.ONBRequest) (pipeline.ONBOutcome, error) {
		asked = append(asked, r)
		if r.Message == 5 {
			return pipeline.ONBOutcome{}, temporal.NewNonRetryableApplicationError("message 5 is about another subject", pipeline.ErrTypeRefused, nil)
		}
		return pipeline.ONBOutcome{Number: 42, Message: r.Message, Code: "500", Status: domain.StatusAccepted}, nil
	})
	var states []pipeline.ONBState
	query := func() {
		v, err := env.QueryWorkflow(pipeline.QueryState)
		if err != nil {
			t.Fatal(err)
		}
		var st pipeline.ONBState
		if err := v.Get(&st); err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalLinkONB, pipeline.LinkONBSignal{}) }, time.Minute)
	env.RegisterDelayedCallback(query, 2*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalLinkONB, pipeline.LinkONBSignal{Message: 5, By: "ops"}) }, 3*time.Minute)
	env.RegisterDelayedCallback(query, 4*time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalLinkONB, pipeline.LinkONBSignal{Message: 7, By: "ops"}) }, 5*time.Minute)
	env.ExecuteWorkflow(UnknownReplyWorkflow, pipeline.UnknownReplyInput{Number: 42, Kenmerk: "K-stray"})
	var out pipeline.ONBOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if out.Message != 7 || len(asked) != 2 || asked[0].Message != 5 || asked[1].By != "ops" {
		t.Fatalf("outcome %+v, asked %+v", out, asked)
	}
	if len(states) != 2 || !strings.Contains(states[0].Last, "link refused") || states[0].Status != pipeline.ONBStatusUnknown ||
		!strings.Contains(states[1].Last, "refused: message 5 is about another subject") {
		t.Fatalf("states %+v", states)
	}
	query()
	if last := states[2]; last.Status != pipeline.ONBStatusLinked || !strings.Contains(last.Last, "linked to message 7 by ops; status 500 applied") {
		t.Fatalf("final state %+v", last)
	}
}

// A reply handled before its workflow looked (the command line did it, and this run
// was started by the sweep) ends at once, as resolved, without touching the store.
func TestUnknownReplyHandledAlreadyEndsAtOnce(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ONBState, mock.Anything, int64(42)).Return(pipeline.ONBOutcome{Number: 42}, nil)
	env.ExecuteWorkflow(UnknownReplyWorkflow, pipeline.UnknownReplyInput{Number: 42, Kenmerk: "K-stray"})
	var out pipeline.ONBOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	env.AssertNotCalled(t, "HandleONB", mock.Anything, mock.Anything)
	if out.Open || out.Message != 0 {
		t.Fatalf("outcome %+v", out)
	}
}

// Resolved from the Web UI: the memo is required; with one the reply is resolved.
func TestUnknownReplyResolve(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ONBState, mock.Anything, int64(42)).Return(pipeline.ONBOutcome{Number: 42, Open: true}, nil)
	var asked []pipeline.ONBRequest
	env.OnActivity(a.HandleONB, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.ONBRequest) (pipeline.ONBOutcome, error) {
		asked = append(asked, r)
		return pipeline.ONBOutcome{Number: 42}, nil
	})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalResolveONB, pipeline.ResolveONBSignal{}) }, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalResolveONB, pipeline.ResolveONBSignal{Memo: "noise"}) }, 2*time.Minute)
	env.ExecuteWorkflow(UnknownReplyWorkflow, pipeline.UnknownReplyInput{Number: 42, Kenmerk: "K-stray"})
	var out pipeline.ONBOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0].Memo != "noise" || asked[0].Message != 0 {
		t.Fatalf("asked %+v", asked)
	}
}

// A reply linked on the command line while its workflow was not told ends as linked,
// not resolved: KoerierStatus and the outcome name the message.
func TestUnknownReplyLinkedElsewhereEndsLinked(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ONBState, mock.Anything, int64(42)).Return(pipeline.ONBOutcome{Number: 42, Message: 7}, nil)
	env.ExecuteWorkflow(UnknownReplyWorkflow, pipeline.UnknownReplyInput{Number: 42, Kenmerk: "K-doc"})
	var out pipeline.ONBOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	if out.Message != 7 {
		t.Fatalf("outcome %+v", out)
	}
	v, err := env.QueryWorkflow(pipeline.QueryState)
	if err != nil {
		t.Fatal(err)
	}
	var st pipeline.ONBState
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	if st.Status != pipeline.ONBStatusLinked || !strings.Contains(st.Last, "linked to message 7") {
		t.Fatalf("state %+v", st)
	}
	env.AssertNotCalled(t, "HandleONB", mock.Anything, mock.Anything)
}

// Past the history limit the workflow continues as new only with no signal waiting: a
// link that arrived while a refused one was being tried is done, not lost with the run.
func TestUnknownReplyDoesNotContinueAsNewOverABufferedSignal(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.ONBState, mock.Anything, int64(42)).Return(pipeline.ONBOutcome{Number: 42, Open: true}, nil)
	env.OnActivity(a.HandleONB, mock.Anything, mock.MatchedBy(func(r pipeline.ONBRequest) bool { return r.Message == 5 })).
		Return(pipeline.ONBOutcome{}, temporal.NewNonRetryableApplicationError("message 5 is about another subject", pipeline.ErrTypeRefused, nil)).
		After(2 * time.Minute)
	env.OnActivity(a.HandleONB, mock.Anything, mock.MatchedBy(func(r pipeline.ONBRequest) bool { return r.Message == 7 })).
		Return(pipeline.ONBOutcome{Number: 42, Message: 7, Status: domain.StatusSent}, nil)
	env.SetCurrentHistoryLength(historyLimit + 1)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalLinkONB, pipeline.LinkONBSignal{Message: 5, By: "ops"}) }, time.Minute)
	// While the refused link is being tried: buffered in the channel.
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalLinkONB, pipeline.LinkONBSignal{Message: 7, By: "ops"}) }, 2*time.Minute)
	env.ExecuteWorkflow(UnknownReplyWorkflow, pipeline.UnknownReplyInput{Number: 42, Kenmerk: "K-doc"})
	var out pipeline.ONBOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatalf("the buffered link must be done before continuing as new: %v", err)
	}
	if out.Message != 7 {
		t.Fatalf("outcome %+v", out)
	}
}
