package workflows

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"koerier/domain"
	"koerier/pipeline"
)

// A rejection the environment has not processed (it processes by hand) does not hold up
// a restore: restore-status is carried out at once (store.Restore implies process), and
// the next send delivers the new attempt. Also when the restore came from the command
// line and its signal never arrived: send/receive's send makes the workflow read
// Postgres again instead of waiting for process with a stale status.
func TestDeclarationRestoreBeforeProcess(t *testing.T) {
	for _, signalled := range []bool{true, false} {
		name := map[bool]string{true: "restore signalled", false: "restore signal lost"}[signalled]
		t.Run(name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			w := newWorld(domain.StatusQueued)
			w.setup(env)
			var rejected, restored pipeline.State
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "send-receive-1"}) }, time.Minute)
			env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "311") }, 2*time.Minute)
			env.RegisterDelayedCallback(func() {
				rejected = queryState(t, env)
				if signalled {
					env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"})
					return
				}
				w.mu.Lock() // as `starter restore` leaves Postgres
				w.msg.Attempt++
				w.msg.Status, w.msg.EnvStatus, w.msg.Kenmerk = domain.StatusReadyToResend, domain.StatusReadyToResend, ""
				w.mu.Unlock()
			}, 3*time.Minute)
			env.RegisterDelayedCallback(func() {
				restored = queryState(t, env)
				env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "send-receive-2"})
			}, 4*time.Minute)
			env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, 5*time.Minute)
			env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalProcess, pipeline.OperatorSignal{By: "op"}) }, 6*time.Minute)
			env.ExecuteWorkflow(DeclarationWorkflow, input())
			if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
				t.Fatalf("completed=%v err=%v calls %v", env.IsWorkflowCompleted(), env.GetWorkflowError(), w.calls)
			}
			if rejected.Stage != pipeline.StageProcessing || rejected.Status != domain.StatusRejected {
				t.Errorf("after the rejection: %+v", rejected)
			}
			if signalled && (restored.Status != domain.StatusReadyToResend || !strings.Contains(restored.LastMessage, "restored")) {
				t.Errorf("after restore-status: %+v", restored)
			}
			if w.called("Deliver") != 2 || w.msg.Attempt != 2 || w.msg.Status != domain.StatusAccepted {
				t.Errorf("calls %v, attempt %d, status %s", w.calls, w.msg.Attempt, w.msg.Status)
			}
		})
	}
}

// Process of a message whose environment is gone is refused by the store (rule 9): the
// workflow notes it and waits for an operator instead of failing.
func TestDeclarationProcessRefusedForAGoneEnvironment(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusRejected)
	w.msg.Kenmerk = "K-1"
	w.process = func(w *world) (pipeline.ProcessResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.EnvironmentActive, w.msg.NeedsAction = false, true
		return pipeline.ProcessResult{}, temporal.NewNonRetryableApplicationError("message 1000001 cannot be processed: environment acme was removed",
			pipeline.ErrTypeRefused, nil)
	}
	w.setup(env)
	var after pipeline.State
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalProcess, pipeline.OperatorSignal{By: "op"}) }, time.Minute)
	cancelAt(t, env, 2*time.Minute, &after)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("the workflow must wait until cancelled, got %v", err)
	}
	if after.Stage != pipeline.StageProcessing || !strings.Contains(after.LastMessage, "process refused") || !after.NeedsAction || w.called("Process") != 1 {
		t.Errorf("after a refused process: %+v, calls %v", after, w.calls)
	}
}

// A message that ends while its environment is gone is not left waiting unseen: the
// workflow asks Process once by itself, which refuses and marks it (rule 9).
func TestDeclarationAsksProcessOnceWhenItsEnvironmentIsGone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusAccepted)
	w.msg.Kenmerk, w.msg.AutoProcess, w.msg.EnvironmentActive = "K-1", true, false
	w.process = func(w *world) (pipeline.ProcessResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.NeedsAction = true
		return pipeline.ProcessResult{}, temporal.NewNonRetryableApplicationError("message 1000001 cannot be processed: environment acme was removed",
			pipeline.ErrTypeRefused, nil)
	}
	w.setup(env)
	var after pipeline.State
	cancelAt(t, env, time.Hour, &after)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if n := w.called("Process"); n != 1 {
		t.Errorf("Process called %d times, want once", n)
	}
	if !after.NeedsAction || !strings.Contains(after.LastMessage, "process refused") {
		t.Errorf("state after: %+v", after)
	}
}
