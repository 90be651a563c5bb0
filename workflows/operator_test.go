package workflows

import (
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"koerier/domain"
	"koerier/pipeline"
)

// restore-status on a message Postgres has marked do-not-send: refused with the store's
// reason (an F line) while a newer version exists, and the workflow ends as superseded;
// without a newer version the flag is cleared and the message is sent on the next word.
func TestDeclarationRestoreDoNotSend(t *testing.T) {
	t.Run("newer version", func(t *testing.T) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		w := newWorld(domain.StatusQueued)
		w.setup(env)
		env.RegisterDelayedCallback(func() {
			w.mu.Lock()
			w.msg.DoNotSend, w.msg.LatestVersion = true, 2 // version 2 queued meanwhile
			w.mu.Unlock()
			env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"})
		}, time.Minute)
		env.ExecuteWorkflow(DeclarationWorkflow, input())
		if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
			t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
		}
		if f := w.lines("F"); w.called("Restore") != 1 || len(f) != 1 || !strings.Contains(f[0], "refused") || !strings.Contains(f[0], "version 2 exists") {
			t.Errorf("calls %v, F lines %v", w.calls, f)
		}
		if st := queryState(t, env); st.Stage != pipeline.StageDone || w.called("Deliver") != 0 {
			t.Errorf("state %+v, calls %v", st, w.calls)
		}
	})
	t.Run("no newer version", func(t *testing.T) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		w := newWorld(domain.StatusQueued)
		w.msg.AutoProcess = true
		w.setup(env)
		var restored pipeline.State
		env.RegisterDelayedCallback(func() {
			w.mu.Lock()
			w.msg.DoNotSend = true // its newer version was cleaned up: version 1 is the latest
			w.mu.Unlock()
			env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"})
		}, time.Minute)
		env.RegisterDelayedCallback(func() {
			restored = queryState(t, env)
			env.SignalWorkflow(pipeline.SignalSendNow, pipeline.OperatorSignal{By: "op"})
		}, 2*time.Minute)
		env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, 3*time.Minute)
		env.ExecuteWorkflow(DeclarationWorkflow, input())
		if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
			t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
		}
		if restored.Stage != pipeline.StageQueued || restored.DoNotSend || !strings.Contains(restored.LastMessage, "do-not-send cleared") {
			t.Errorf("after restore: %+v", restored)
		}
		if w.restores != 1 || w.called("Deliver") != 1 || w.msg.Status != domain.StatusAccepted {
			t.Errorf("calls %v, status %s", w.calls, w.msg.Status)
		}
	})
}

// `starter environments set` signals environment-changed: a workflow that waits with
// the old settings reads them again, and an environment switched to auto-send and
// auto-process needs no one for a message queued before the switch.
func TestDeclarationEnvironmentChanged(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.setup(env)
	var before pipeline.State
	env.RegisterDelayedCallback(func() {
		before = queryState(t, env)
		w.mu.Lock()
		w.msg.AutoSend, w.msg.AutoProcess = true, true
		w.mu.Unlock()
		env.SignalWorkflow(pipeline.SignalEnvironmentChanged, pipeline.OperatorSignal{By: "op"})
	}, time.Minute)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, 2*time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v (calls %v)", env.IsWorkflowCompleted(), env.GetWorkflowError(), w.calls)
	}
	if before.Stage != pipeline.StageQueued {
		t.Errorf("before the change: %+v", before)
	}
	if w.called("Deliver") != 1 || w.called("Process") < 1 || w.msg.EnvStatus != domain.StatusAccepted {
		t.Errorf("calls %v, env status %s", w.calls, w.msg.EnvStatus)
	}
}
