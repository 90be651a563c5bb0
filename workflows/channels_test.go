package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"koerier/domain"
	"koerier/pipeline"
)

// An e-invoice has no final reply: once the receiving server took it and no bounce came
// within the bounce window, the workflow records it delivered (MailDelivered) instead
// of marking it needs-action as a Digipoort message without a final reply.
func TestEInvoiceDeliveredAfterTheBounceWindow(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusSent)
	w.msg.Channel, w.msg.Kenmerk, w.msg.AutoProcess = string(domain.ChannelEmail), "<m1@koerier>", true
	w.setup(env)
	var got []pipeline.MailDeliveredRequest
	env.OnActivity(a.MailDelivered, mock.Anything, mock.Anything).Return(func(_ context.Context, req pipeline.MailDeliveredRequest) error {
		w.call("MailDelivered")
		w.mu.Lock()
		defer w.mu.Unlock()
		got = append(got, req)
		w.msg.Status = domain.StatusAccepted
		return nil
	})
	in := input()
	in.NoReplyTimeout, in.BounceWindow = time.Hour, 2*time.Hour
	early := -1
	env.RegisterDelayedCallback(func() { early = w.called("MailDelivered") }, 119*time.Minute)
	env.ExecuteWorkflow(CompactDeclarationWorkflow, in)
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v (calls %v)", env.IsWorkflowCompleted(), env.GetWorkflowError(), w.calls)
	}
	if early != 0 {
		t.Errorf("delivered before the bounce window ended (Digipoort's no-reply timeout used?): %d calls at 119 minutes", early)
	}
	if len(got) != 1 || got[0].Window != 2*time.Hour || got[0].Kenmerk != "<m1@koerier>" || got[0].Number != w.msg.Number {
		t.Errorf("MailDelivered requests: %+v", got)
	}
	if w.called("MarkNeedsAction") != 0 || w.msg.EnvStatus != domain.StatusAccepted || !w.msg.Reported {
		t.Errorf("calls %v, message %+v", w.calls, w.msg)
	}
}

// A payment order without a final status report is marked needs-action with what to do
// about the bank, not with Digipoort's advice.
func TestPaymentOrderNoReplySaysAskTheBank(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusSent)
	w.msg.Channel, w.msg.Kenmerk = string(domain.ChannelBank), "PAY-1"
	w.setup(env)
	in := input()
	in.NoReplyTimeout = 24 * time.Hour
	var after pipeline.State
	env.RegisterDelayedCallback(func() { after = queryState(t, env) }, 25*time.Hour)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 26*time.Hour)
	env.ExecuteWorkflow(CompactDeclarationWorkflow, in)
	if w.called("MarkNeedsAction") != 1 {
		t.Fatalf("needs-action marked %d times (calls %v)", w.called("MarkNeedsAction"), w.calls)
	}
	if !after.NeedsAction || !strings.Contains(after.NeedsActionReason, "no final status report from the bank") ||
		!strings.Contains(after.NeedsActionReason, "starter bank send-receive --env acme") || strings.Contains(after.NeedsActionReason, "digipoort") {
		t.Errorf("needs-action reason: %+v", after)
	}
}
