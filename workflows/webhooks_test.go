package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"koerier/domain"
	"koerier/pipeline"
)

// receiverDown makes every DeliverWebhooks fail the way a receiver that is down does,
// and records when each try ran (the test environment's clock).
func receiverDown(env *testsuite.TestWorkflowEnvironment, w *world, tries *[]time.Time) {
	w.webhooks = func(w *world) (pipeline.WebhookResult, error) {
		w.mu.Lock()
		*tries = append(*tries, env.Now())
		w.mu.Unlock()
		return pipeline.WebhookResult{}, errors.New("webhook event evt_1000001_1 to http://receiver not taken: answered 503 Service Unavailable")
	}
}

// Rule 13 (docs/rules.md): every process that changes what the environment sees is
// followed by the report stage's webhook delivery, and the workflow completes only
// after the last one.
func TestDeclarationWebhooksAfterEveryProcess(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess = true, true
	w.setup(env)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100") }, time.Minute)
	env.RegisterDelayedCallback(func() { w.replies(env, "500") }, 2*time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	// sent, receipt confirmed, accepted: three processes, three deliveries, and none
	// more at the end (the last one ran after the last change).
	if p, d := w.called("Process"), w.called("DeliverWebhooks"); p != 3 || d != 3 {
		t.Fatalf("%d processes, %d webhook deliveries; want 3 and 3: %v", p, d, w.calls)
	}
	if w.called("FailWebhooks") != 0 {
		t.Errorf("nothing failed, yet FailWebhooks ran: %v", w.calls)
	}
	first := -1
	for i, c := range w.calls {
		if c == "DeliverWebhooks" && first < 0 {
			first = i
		}
	}
	if first < 1 || w.calls[first-1] != "Process" {
		t.Errorf("the first webhook delivery must follow the first process: %v", w.calls)
	}
}

// A receiver that stays down is tried for at least three days (the retry policy:
// 10s doubling up to an hour, for four days), then the events still pending are
// failed with the reason, and the workflow completes.
func TestDeclarationWebhooksRetriedThreeDaysThenFailed(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.EnvStatus, w.msg.AutoProcess = domain.StatusInProgress, true
	var tries []time.Time
	receiverDown(env, w, &tries)
	w.setup(env)
	start := env.Now()
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if len(w.failed) != 1 || !strings.Contains(w.failed[0], "503 Service Unavailable") || !strings.Contains(w.failed[0], "96h") {
		t.Fatalf("FailWebhooks reasons %q; want one naming the last answer and the 96h of retries", w.failed)
	}
	if len(tries) < 2 {
		t.Fatalf("%d tries", len(tries))
	}
	span := tries[len(tries)-1].Sub(tries[0])
	if span < 3*24*time.Hour || span > pipeline.WebhookRetryFor {
		t.Errorf("tried for %s; want at least 3 days and at most %s", span, pipeline.WebhookRetryFor)
	}
	if got := tries[1].Sub(tries[0]); got != pipeline.DefaultWebhookRetryInitial {
		t.Errorf("first wait %s, want %s", got, pipeline.DefaultWebhookRetryInitial)
	}
	for i := 1; i < len(tries); i++ {
		if gap := tries[i].Sub(tries[i-1]); gap > pipeline.WebhookRetryMax {
			t.Fatalf("wait %d was %s, more than %s", i, gap, pipeline.WebhookRetryMax)
		}
	}
	// 10s, 20s, … 2560s, then hourly: about a hundred tries in four days.
	if len(tries) < 90 || len(tries) > 110 {
		t.Errorf("%d tries in %s", len(tries), span)
	}
	if done := env.Now().Sub(start); done < span {
		t.Errorf("completed after %s, before the tries ended", done)
	}
}

// KOERIER_WEBHOOK_RETRY_INITIAL reaches the retry policy through the workflow's input.
func TestDeclarationWebhookRetryInitialFromInput(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.EnvStatus, w.msg.AutoProcess = domain.StatusInProgress, true
	var tries []time.Time
	w.webhooks = func(w *world) (pipeline.WebhookResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		tries = append(tries, env.Now())
		if len(tries) < 4 {
			return pipeline.WebhookResult{}, errors.New("connection refused")
		}
		return pipeline.WebhookResult{Sent: 1}, nil
	}
	w.setup(env)
	in := input()
	in.WebhookRetryInitial = time.Second
	env.ExecuteWorkflow(DeclarationWorkflow, in)
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if len(tries) != 4 {
		t.Fatalf("%d tries, want 4", len(tries))
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := tries[i+1].Sub(tries[i]); got != want {
			t.Errorf("wait %d: %s, want %s", i+1, got, want)
		}
	}
	if w.called("FailWebhooks") != 0 {
		t.Errorf("taken on the fourth try, yet failed: %v", w.calls)
	}
}

// A receiver that is down holds up nothing else: a rejected message is restored and
// sent again while its webhooks are still being retried, and the workflow does not
// complete before they are dealt with.
func TestDeclarationWebhooksDoNotHoldUpRestore(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess = true, true
	var tries []time.Time
	receiverDown(env, w, &tries)
	w.setup(env)
	var restored pipeline.State
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "311") }, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"}) }, time.Hour)
	env.RegisterDelayedCallback(func() { restored = queryState(t, env) }, 90*time.Minute)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, 2*time.Hour)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if restored.Attempt != 2 || restored.Status.IsFailure() {
		t.Fatalf("half an hour after the restore: %+v; the webhook retries must not hold it up", restored)
	}
	if w.called("Deliver") != 2 || w.called("Report") != 2 {
		t.Errorf("calls %v", w.calls)
	}
	// Events kept coming while the first delivery was retried, so the next one
	// tried them all again before any was failed.
	if len(w.failed) != 1 {
		t.Errorf("FailWebhooks reasons %q, want one", w.failed)
	}
	if st := queryState(t, env); st.Stage != pipeline.StageDone {
		t.Errorf("stage %q", st.Stage)
	}
}

// A workflow started again for a message that is already done (its earlier run was
// terminated mid-delivery) still delivers what is pending before it completes.
func TestDeclarationWebhooksDeliveredBeforeCompleting(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.EnvStatus, w.msg.Reported = domain.StatusAccepted, true
	w.setup(env)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if w.called("DeliverWebhooks") != 1 || w.called("Process") != 0 {
		t.Errorf("calls %v; want one webhook delivery and no process", w.calls)
	}
}

// A 410 disables the endpoint inside the activity; the workflow fails nothing more
// and completes.
func TestDeclarationWebhookEndpointGone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.EnvStatus, w.msg.AutoProcess = domain.StatusInProgress, true
	w.webhooks = func(*world) (pipeline.WebhookResult, error) { return pipeline.WebhookResult{Disabled: true}, nil }
	w.setup(env)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if w.called("DeliverWebhooks") != 1 || w.called("FailWebhooks") != 0 {
		t.Errorf("calls %v", w.calls)
	}
}

// An environment without an endpoint costs no webhook activity at all: processing
// reports nothing pending, and so the workflow completes without a delivery.
func TestDeclarationNoEndpointNoWebhookActivity(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess, w.noEndpoint = true, true, true
	w.setup(env)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if w.called("Process") == 0 || w.called("DeliverWebhooks") != 0 {
		t.Errorf("calls %v; want processes and no webhook delivery", w.calls)
	}
}

// A reply that arrives while the workflow waits in the reporting stage (its receiver
// down) is taken in, processed and reported — a rejection after acceptance must never
// be hidden behind a webhook delivery that takes days.
func TestLateReplyDuringReportingIsProcessed(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.EnvStatus, w.msg.AutoProcess = domain.StatusInProgress, true
	w.msg.Kenmerk = "K-1"
	w.webhooks = func(*world) (pipeline.WebhookResult, error) {
		return pipeline.WebhookResult{}, errors.New("503 from the receiver")
	}
	w.setup(env)
	env.RegisterDelayedCallback(func() {
		if st := queryState(t, env); st.Stage != pipeline.StageReporting {
			t.Errorf("stage %q at 1h, want reporting", st.Stage)
		}
		w.replies(env, "510")
	}, time.Hour)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if n := w.called("Process"); n < 2 {
		t.Errorf("Process called %d times, want the late rejection processed too", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.msg.Status != domain.StatusRejected || w.msg.EnvStatus != domain.StatusRejected {
		t.Errorf("late reply lost: status %s, the environment sees %s", w.msg.Status, w.msg.EnvStatus)
	}
}

// send/receive's sweep asks a workflow to post events that have been pending too long;
// a workflow waiting for replies posts them at once.
func TestDeliverWebhooksSignalPostsPendingEvents(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusSent)
	w.msg.Kenmerk = "K-1"
	w.setup(env)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(pipeline.SignalDeliverWebhooks, pipeline.OperatorSignal{By: "test sweep"})
	}, time.Minute)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, time.Hour)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if n := w.called("DeliverWebhooks"); n != 1 {
		t.Errorf("DeliverWebhooks called %d times after the sweep's signal, want 1", n)
	}
}
