package workflows

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/domain"
	"koerier/pipeline"
)

// world is a fake Postgres for workflow tests: the activities below change it the way
// the real ones change the database.
type world struct {
	mu      sync.Mutex
	msg     pipeline.Message
	deliver func(*world) (pipeline.DeliverResult, error)
	// process answers Process instead of applying the status (nil: applied).
	process func(*world) (pipeline.ProcessResult, error)
	// webhooks answers DeliverWebhooks (nil: every event taken); failed collects the
	// reasons FailWebhooks was given.
	webhooks func(*world) (pipeline.WebhookResult, error)
	failed   []string
	// noEndpoint: the environment registered no webhook endpoint, so processing
	// writes no event.
	noEndpoint bool
	log        []pipeline.LogLine
	calls      []string
	restores   int
}

func newWorld(status domain.Status) *world {
	return &world{msg: pipeline.Message{Number: 1000001, Direction: "out", Environment: "acme", EnvironmentActive: true, Type: "btw",
		Subject: "001000044B37", Period: "2026-10", Declaration: "acme/btw/001000044B37/2026-10", Version: 1, LatestVersion: 1, Attempt: 1,
		Status: status, EnvStatus: domain.StatusQueued}}
}

func (w *world) call(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, name)
}

func (w *world) called(name string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.calls {
		if c == name {
			n++
		}
	}
	return n
}

func (w *world) lines(level domain.Level) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range w.log {
		if l.Level == level {
			out = append(out, l.Description)
		}
	}
	return out
}

// setup registers the fake activities on a test environment.
func (w *world) setup(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.LoadMessage, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (pipeline.Message, error) {
		w.call("LoadMessage")
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.msg, nil
	})
	env.OnActivity(a.Deliver, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (pipeline.DeliverResult, error) {
		w.call("Deliver")
		if w.deliver != nil {
			return w.deliver(w)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.Status, w.msg.Kenmerk = domain.StatusSent, "K-1"
		return pipeline.DeliverResult{Outcome: pipeline.OutcomeSent, Kenmerk: "K-1", Attempt: w.msg.Attempt}, nil
	})
	env.OnActivity(a.Process, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (pipeline.ProcessResult, error) {
		w.call("Process")
		if w.process != nil {
			return w.process(w)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		changed := w.msg.EnvStatus != w.msg.Status
		w.msg.EnvStatus = w.msg.Status
		pending := 0
		if changed && !w.noEndpoint {
			pending = 1
		}
		return pipeline.ProcessResult{Status: w.msg.Status, Changed: changed, WebhooksPending: pending}, nil
	})
	// The compact shape's combined calls, as activities.DeliverAndProcess and
	// ProcessAndReport combine the single ones.
	env.OnActivity(a.DeliverAndProcess, mock.Anything, mock.Anything).Return(func(ctx context.Context, n int64) (pipeline.DeliverResult, error) {
		w.call("DeliverAndProcess")
		res, err := w.deliverOnce()
		if err != nil || res.Outcome != pipeline.OutcomeSent {
			return res, err
		}
		w.mu.Lock()
		auto := w.msg.AutoProcess && w.msg.EnvironmentActive
		w.mu.Unlock()
		if auto {
			p := w.processOnce()
			res.Processed = &p
		}
		w.mu.Lock()
		st := w.msg
		w.mu.Unlock()
		res.State = &st
		return res, nil
	})
	env.OnActivity(a.ProcessAndReport, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (pipeline.FinishResult, error) {
		w.call("ProcessAndReport")
		out := pipeline.FinishResult{ProcessResult: w.processOnce()}
		if out.Status.IsFinal() {
			out.Reported = w.reportOnce()
		}
		return out, nil
	})
	env.OnActivity(a.Report, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (domain.Status, error) {
		w.call("Report")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.Reported = true
		level := domain.LevelInfo
		if w.msg.Status != domain.StatusAccepted {
			level = domain.LevelError
		}
		w.log = append(w.log, pipeline.LogLine{Level: level, Description: "report " + string(w.msg.Status)})
		return w.msg.Status, nil
	})
	env.OnActivity(a.Restore, mock.Anything, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64, who string) (pipeline.RestoreResult, error) {
		w.call("Restore")
		w.mu.Lock()
		defer w.mu.Unlock()
		// As store.Restore: do-not-send is cleared where no newer version exists; a
		// superseded message that was never sent is then due as it stands.
		if w.msg.DoNotSend && w.msg.Version >= w.msg.LatestVersion {
			w.msg.DoNotSend = false
			if w.msg.Status.IsDue() {
				w.restores++
				return pipeline.RestoreResult{Attempt: w.msg.Attempt, Status: w.msg.Status, DoNotSendCleared: true}, nil
			}
		}
		if err := domain.MayRestore(domain.Version{Number: w.msg.Number, Version: w.msg.Version, Status: w.msg.Status,
			DoNotSend: w.msg.DoNotSend}, w.msg.LatestVersion); err != nil {
			return pipeline.RestoreResult{}, temporal.NewNonRetryableApplicationError(err.Error(), pipeline.ErrTypeRefused, nil)
		}
		w.restores++
		w.msg.Attempt++
		w.msg.Status, w.msg.EnvStatus, w.msg.Reported, w.msg.Kenmerk = domain.StatusReadyToResend, domain.StatusReadyToResend, false, ""
		return pipeline.RestoreResult{Attempt: w.msg.Attempt}, nil
	})
	env.OnActivity(a.WriteLog, mock.Anything, mock.Anything).Return(func(_ context.Context, l pipeline.LogLine) error {
		w.call("WriteLog")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.log = append(w.log, l)
		return nil
	})
	env.OnActivity(a.LogRefusal, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, n int64, _ int, reason string) error {
			w.call("LogRefusal")
			w.mu.Lock()
			defer w.mu.Unlock()
			w.log = append(w.log, pipeline.LogLine{Level: "F", Description: "not sent: " + reason})
			return nil
		})
	env.OnActivity(a.RecordDeliveryError, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, _ int64, _ int, reason string) error {
			w.call("RecordDeliveryError")
			w.mu.Lock()
			defer w.mu.Unlock()
			w.log = append(w.log, pipeline.LogLine{Level: "F", Description: "delivery error: " + reason})
			return nil
		})
	env.OnActivity(a.MarkNeedsAction, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, _ int64, reason, _ string) error {
			w.call("MarkNeedsAction")
			w.mu.Lock()
			defer w.mu.Unlock()
			w.msg.NeedsAction, w.msg.NeedsActionReason = true, reason
			w.log = append(w.log, pipeline.LogLine{Level: "F", Description: reason})
			return nil
		})
	env.OnActivity(a.DeliverWebhooks, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64) (pipeline.WebhookResult, error) {
		w.call("DeliverWebhooks")
		if w.webhooks != nil {
			return w.webhooks(w)
		}
		return pipeline.WebhookResult{}, nil
	})
	env.OnActivity(a.FailWebhooks, mock.Anything, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64, reason string) (int, error) {
		w.call("FailWebhooks")
		w.mu.Lock()
		defer w.mu.Unlock()
		w.failed = append(w.failed, reason)
		return 1, nil
	})
	env.OnActivity(a.AssignEnvironment, mock.Anything, mock.Anything, mock.Anything).Return(func(_ context.Context, _ int64, sig pipeline.AssignSignal) error {
		w.call("AssignEnvironment")
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.msg.EnvironmentActive {
			return temporal.NewNonRetryableApplicationError("message belongs to environment acme, which still exists", pipeline.ErrTypeRefused, nil)
		}
		w.msg.Environment, w.msg.EnvironmentActive = sig.Environment, true
		return nil
	})
}

// deliverOnce, processOnce and reportOnce change the world as Deliver, Process and
// Report do, for the compact shape's combined calls.
func (w *world) deliverOnce() (pipeline.DeliverResult, error) {
	if w.deliver != nil {
		return w.deliver(w)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msg.Status, w.msg.Kenmerk = domain.StatusSent, "K-1"
	return pipeline.DeliverResult{Outcome: pipeline.OutcomeSent, Kenmerk: "K-1", Attempt: w.msg.Attempt}, nil
}

func (w *world) processOnce() pipeline.ProcessResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := w.msg.EnvStatus != w.msg.Status
	w.msg.EnvStatus = w.msg.Status
	pending := 0
	if changed && !w.noEndpoint {
		pending = 1
	}
	return pipeline.ProcessResult{Status: w.msg.Status, Changed: changed, WebhooksPending: pending}
}

func (w *world) reportOnce() domain.Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msg.Reported = true
	level := domain.LevelInfo
	if w.msg.Status != domain.StatusAccepted {
		level = domain.LevelError
	}
	w.log = append(w.log, pipeline.LogLine{Level: level, Description: "report " + string(w.msg.Status)})
	return w.msg.Status
}

// replies simulates send/receive: the world's status moves (as Postgres decides) and
// the workflow is signalled.
func (w *world) replies(env *testsuite.TestWorkflowEnvironment, codes ...string) {
	w.mu.Lock()
	var sig pipeline.RepliesSignal
	for i, c := range codes {
		info := domain.InterpretCode(c)
		sig.Replies = append(
			sig.Replies,
			pipeline.Reply{EventID: int64(len(w.calls)*100 + i), Kenmerk: w.msg.Kenmerk, Code: c, Status: info.Status, Applied: true},
		)
		if domain.Higher(info.Status, w.msg.Status) {
			w.msg.Status = info.Status
		}
		w.msg.NeedsAction = w.msg.NeedsAction || info.NeedsAction
	}
	sig.Status, sig.Attempt, sig.NeedsAction = w.msg.Status, w.msg.Attempt, w.msg.NeedsAction
	w.mu.Unlock()
	env.SignalWorkflow(pipeline.SignalReplies, sig)
}

func queryState(t *testing.T, env *testsuite.TestWorkflowEnvironment) pipeline.State {
	t.Helper()
	v, err := env.QueryWorkflow(pipeline.QueryState)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var st pipeline.State
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// cancelAt queries the workflow's state into st at the given time, then cancels the
// workflow: for a test of where a workflow waits.
func cancelAt(t *testing.T, env *testsuite.TestWorkflowEnvironment, at time.Duration, st *pipeline.State) {
	env.RegisterDelayedCallback(func() {
		*st = queryState(t, env)
		env.CancelWorkflow()
	}, at)
}

func input() pipeline.DeclarationInput {
	return pipeline.DeclarationInput{Number: 1000001, NoReplyTimeout: 96 * time.Hour}
}

// The happy path through every stage, for an environment that sends and processes by
// hand: queue → send (on send/receive's word) → await replies → process (on the
// operator's word) → report.
func TestDeclarationStagesManualEnvironment(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.setup(env)
	var states []pipeline.State
	env.RegisterDelayedCallback(func() {
		states = append(states, queryState(t, env))
		env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "send-receive-1"})
	}, time.Minute)
	env.RegisterDelayedCallback(func() {
		states = append(states, queryState(t, env))
		w.replies(env, "105", "100", "110")
	}, 2*time.Minute)
	env.RegisterDelayedCallback(func() {
		states = append(states, queryState(t, env))
		w.replies(env, "200", "301", "405", "400", "500", "105")
	}, 3*time.Minute)
	env.RegisterDelayedCallback(func() {
		states = append(states, queryState(t, env))
		env.SignalWorkflow(pipeline.SignalProcess, pipeline.OperatorSignal{By: "op"})
	}, 4*time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	wantStages := []string{pipeline.StageQueued, pipeline.StageAwaitingReplies, pipeline.StageAwaitingReplies, pipeline.StageProcessing}
	for i, st := range states {
		if st.Stage != wantStages[i] {
			t.Errorf("state %d: stage %q, want %q", i, st.Stage, wantStages[i])
		}
	}
	if states[1].Kenmerk != "K-1" || states[1].Status != domain.StatusSent {
		t.Errorf("after delivery: %+v", states[1])
	}
	if states[2].Status != domain.StatusInProgress || len(states[2].Replies) != 3 {
		t.Errorf("after first replies: %+v", states[2])
	}
	if states[3].Status != domain.StatusAccepted || states[3].EnvStatus == domain.StatusAccepted {
		t.Errorf("accepted but not yet processed: %+v", states[3])
	}
	if w.called("Deliver") != 1 || w.called("Process") != 1 || w.called("Report") != 1 {
		t.Errorf("calls: %v", w.calls)
	}
	if got := w.lines("I"); len(got) != 1 || got[0] != "report accepted" {
		t.Errorf("report line: %v", got)
	}
}

// An environment whose profile sends and processes automatically needs no one.
func TestDeclarationAutoSendAutoProcess(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess = true, true
	w.setup(env)
	var afterFirst pipeline.State
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100") }, time.Minute)
	env.RegisterDelayedCallback(func() {
		afterFirst = queryState(t, env)
		w.replies(env, "500")
	}, 2*time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if afterFirst.EnvStatus != domain.StatusReceiptConfirmed {
		t.Errorf("auto-process must apply replies as they come: %+v", afterFirst)
	}
	if w.called("Deliver") != 1 || w.called("Report") != 1 || w.msg.EnvStatus != domain.StatusAccepted {
		t.Errorf("calls %v, env status %s", w.calls, w.msg.EnvStatus)
	}
}

// Rule 3 (docs/rules.md): a version that was superseded before it was sent ends without sending.
func TestDeclarationSupersededEndsWithoutSending(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.DoNotSend, w.msg.LatestVersion, w.msg.AutoSend = true, 2, true
	w.setup(env)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	st := queryState(t, env)
	if st.Stage != pipeline.StageDone || !strings.Contains(st.LastMessage, "version 2") || w.called("Deliver") != 0 {
		t.Errorf("state %+v, calls %v", st, w.calls)
	}
}

// A delivery the version rules refuse (a newer version was queued meanwhile) is
// logged with its reason, and the workflow ends as superseded.
func TestDeclarationRefusedDeliveryIsLogged(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend = true
	w.deliver = func(w *world) (pipeline.DeliverResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.DoNotSend, w.msg.LatestVersion = true, 2
		return pipeline.DeliverResult{Outcome: pipeline.OutcomeRefused, Reason: "message 1000001 is version 1, but version 2 exists", Attempt: 1}, nil
	}
	w.setup(env)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if f := w.lines("F"); len(f) != 1 || !strings.Contains(f[0], "version 2 exists") {
		t.Errorf("F lines: %v", f)
	}
}

// After a rejection the workflow reports F and waits for restore; restored, it sends
// again on the next send and ends accepted.
func TestDeclarationRejectedRestoredResentAccepted(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess = true, true
	w.setup(env)
	var waiting pipeline.State
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "311") }, time.Minute)
	env.RegisterDelayedCallback(func() {
		waiting = queryState(t, env)
		env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"})
	}, time.Hour)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "500") }, 2*time.Hour)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if waiting.Stage != pipeline.StageWaitingForRestore || waiting.Status != domain.StatusRejected || !waiting.NeedsAction {
		t.Errorf("after rejection: %+v", waiting)
	}
	if w.called("Deliver") != 2 || w.restores != 1 || w.msg.Attempt != 2 || w.called("Report") != 2 {
		t.Errorf("calls %v attempt %d", w.calls, w.msg.Attempt)
	}
	if f, i := w.lines("F"), w.lines("I"); len(f) != 1 || f[0] != "report rejected" || len(i) != 1 || i[0] != "report accepted" {
		t.Errorf("F %v I %v", f, i)
	}
}

// Restore on an old version is refused with the reason, and nothing is resent.
func TestDeclarationRestoreOfOldVersionRefused(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusRejected)
	w.msg.EnvStatus, w.msg.Reported, w.msg.LatestVersion = domain.StatusRejected, true, 2
	w.setup(env)
	var after pipeline.State
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "op"}) }, time.Minute)
	cancelAt(t, env, time.Hour, &after)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if !strings.Contains(after.LastMessage, "restore refused") || !strings.Contains(after.LastMessage, "version 2 exists") ||
		after.Stage != pipeline.StageWaitingForRestore {
		t.Errorf("state: %+v", after)
	}
	if f := w.lines("F"); len(f) < 1 || !strings.Contains(f[0], "version 2 exists") {
		t.Errorf("F lines: %v", f)
	}
	if w.called("Deliver") != 0 {
		t.Error("an old version was resent")
	}
}

// A stuck message is never silent: no final reply within the timeout → F line and
// needs-action, once; the workflow keeps waiting.
func TestDeclarationNoReplyTimeout(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusSent)
	w.msg.Kenmerk, w.msg.AutoProcess = "K-1", true
	w.setup(env)
	in := input()
	in.NoReplyTimeout = 24 * time.Hour
	var before, after pipeline.State
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100") }, time.Hour)
	env.RegisterDelayedCallback(func() { before = queryState(t, env) }, 23*time.Hour)
	env.RegisterDelayedCallback(func() { after = queryState(t, env) }, 25*time.Hour)
	env.RegisterDelayedCallback(func() { w.replies(env, "500") }, 100*time.Hour)
	env.ExecuteWorkflow(DeclarationWorkflow, in)
	if env.GetWorkflowError() != nil {
		t.Fatal(env.GetWorkflowError())
	}
	if before.NeedsAction || !after.NeedsAction || !strings.Contains(after.NeedsActionReason, "no final reply") {
		t.Errorf("before %+v after %+v", before, after)
	}
	if w.called("MarkNeedsAction") != 1 {
		t.Errorf("needs-action marked %d times", w.called("MarkNeedsAction"))
	}
}

// A batch of replies sent before a restore must not undo the restore.
func TestDeclarationStaleRepliesIgnoredAfterRestore(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusReadyToResend)
	w.msg.Attempt = 2
	w.setup(env)
	var st pipeline.State
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(pipeline.SignalReplies, pipeline.RepliesSignal{Attempt: 1, Status: domain.StatusRejected,
			Replies: []pipeline.Reply{{EventID: 9, Kenmerk: "K-old", Code: "311", Status: domain.StatusRejected}}})
	}, time.Minute)
	cancelAt(t, env, time.Hour, &st)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if st.Status != domain.StatusReadyToResend || st.Stage != pipeline.StageQueued || len(st.Replies) != 1 {
		t.Errorf("state: %+v", st)
	}
}

// Cancel does not withdraw: the workflow says so in the log and ends; the message
// stays where it is.
func TestDeclarationCancelIsLoggedNotWithdrawn(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.setup(env)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, time.Minute)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if err := env.GetWorkflowError(); err == nil || !temporal.IsCanceledError(errors.Unwrap(err)) && !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("want cancelled, got %v", err)
	}
	f := w.lines("F")
	if len(f) != 1 || !strings.Contains(f[0], "not withdrawn") {
		t.Errorf("F lines: %v", f)
	}
	if w.msg.Status != domain.StatusQueued || w.called("Deliver") != 0 {
		t.Error("cancel changed the message")
	}
}

// Delivery trouble that outlasts the retries leaves the message due, logged.
func TestDeclarationTransientDeliveryFailureStaysQueued(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend = false
	attempts := 0
	w.deliver = func(w *world) (pipeline.DeliverResult, error) {
		attempts++
		return pipeline.DeliverResult{}, errors.New("digipoort aanleveren (transient): Digipoort is overloaded")
	}
	w.setup(env)
	var st pipeline.State
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "run"}) }, time.Minute)
	cancelAt(t, env, 2*time.Hour, &st)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if attempts != 8 {
		t.Errorf("delivery tried %d times, want the 8 of the retry policy", attempts)
	}
	if st.Stage != pipeline.StageQueued || !strings.Contains(st.LastMessage, "could not be completed") {
		t.Errorf("state %+v", st)
	}
	if w.called("RecordDeliveryError") != 1 {
		t.Errorf("calls %v", w.calls)
	}
}

// A final Digipoort refusal (send failed) waits for restore like a rejection.
func TestDeclarationSendFailedWaitsForRestore(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend, w.msg.AutoProcess = true, true
	w.deliver = func(w *world) (pipeline.DeliverResult, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.msg.Status = domain.StatusSendFailed
		return pipeline.DeliverResult{Outcome: pipeline.OutcomeSendFailed, Reason: "ALS100"}, nil
	}
	w.setup(env)
	var st pipeline.State
	cancelAt(t, env, time.Hour, &st)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if st.Stage != pipeline.StageWaitingForRestore || st.Status != domain.StatusSendFailed || w.called("Report") != 1 {
		t.Errorf("state %+v calls %v", st, w.calls)
	}
}

// assign-environment is refused on a message whose environment still exists, with an
// F line; for a removed environment it moves the message.
func TestDeclarationAssignEnvironment(t *testing.T) {
	for _, active := range []bool{true, false} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		w := newWorld(domain.StatusQueued)
		w.msg.EnvironmentActive = active
		w.setup(env)
		var st pipeline.State
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(pipeline.SignalAssignEnvironment, pipeline.AssignSignal{Environment: "beta"})
		}, time.Minute)
		cancelAt(t, env, time.Hour, &st)
		env.ExecuteWorkflow(DeclarationWorkflow, input())
		if active && (!strings.Contains(st.LastMessage, "refused") || len(w.lines("F")) < 1) {
			t.Errorf("active environment: %+v", st)
		}
		if !active && st.Environment != "beta" {
			t.Errorf("removed environment: %+v", st)
		}
	}
}

// A reload from Postgres (here: a restore-status that does not apply) keeps every
// reply in the state, also those the workflow had already seen.
func TestDeclarationReloadKeepsReplies(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusInProgress)
	w.msg.Kenmerk = "K-1"
	w.msg.Replies = []pipeline.Reply{{EventID: 1, Kenmerk: "K-1", Code: "105", Status: domain.StatusSent, Applied: true},
		{EventID: 2, Kenmerk: "K-1", Code: "100", Status: domain.StatusReceiptConfirmed, Applied: true}}
	w.setup(env)
	var before, after pipeline.State
	env.RegisterDelayedCallback(func() {
		before = queryState(t, env)
		env.SignalWorkflow(pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: "test"})
	}, time.Minute)
	cancelAt(t, env, time.Hour, &after)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	if w.called("LoadMessage") != 2 {
		t.Fatalf("LoadMessage called %d times, want a reload", w.called("LoadMessage"))
	}
	if len(before.Replies) != 2 || len(after.Replies) != 2 || !strings.Contains(after.LastMessage, "restore-status ignored") {
		t.Errorf("before %d replies, after %d (%q); want 2 and 2", len(before.Replies), len(after.Replies), after.LastMessage)
	}
}

// An auto-send message against an overloaded Digipoort backs off between rounds
// (doubling up to an hour) instead of hammering it, and after the delivery deadline
// it needs an operator with a line that says the filing deadline may pass. An
// operator's send-now does not wait out the back-off.
func TestDeclarationDeliveryRoundsBackOff(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend = true
	var rounds []time.Time
	w.deliver = func(w *world) (pipeline.DeliverResult, error) {
		rounds = append(rounds, env.Now())
		return pipeline.DeliverResult{}, errors.New("digipoort aanleveren (transient): Digipoort is overloaded")
	}
	w.setup(env)
	in := input()
	in.DeliveryDeadline = 2 * time.Hour
	var st pipeline.State
	before := 0
	env.RegisterDelayedCallback(func() {
		before = len(rounds)
		env.SignalWorkflow(pipeline.SignalSendNow, pipeline.OperatorSignal{By: "operator"})
	}, 5*time.Hour+time.Minute)
	cancelAt(t, env, 5*time.Hour+10*time.Minute, &st)
	env.ExecuteWorkflow(DeclarationWorkflow, in)

	// 8 tries per round (the activity's retry policy).
	n := len(rounds) / 8
	if n < 6 || n > 12 {
		t.Fatalf("%d delivery rounds in 5 hours; with back-off (1m, 2m, 4m … 1h) want 6 to 12", n)
	}
	var gaps []time.Duration
	for i := 8; i < len(rounds); i += 8 {
		gaps = append(gaps, rounds[i].Sub(rounds[i-1]))
	}
	for i := 1; i < len(gaps) && gaps[i-1] < 50*time.Minute; i++ {
		if gaps[i] < gaps[i-1] {
			t.Errorf("the pause between rounds shrank: %v", gaps)
			break
		}
	}
	if (len(rounds)-before)/8 != 1 {
		t.Errorf("send-now started %d rounds at once, want one without waiting", (len(rounds)-before)/8)
	}
	if w.called("MarkNeedsAction") != 1 || !strings.Contains(st.NeedsActionReason, "filing deadline") || !st.NeedsAction {
		t.Errorf("needs action %v (%q), MarkNeedsAction called %d times", st.NeedsAction, st.NeedsActionReason, w.called("MarkNeedsAction"))
	}
}

// A delivery the look-up cannot decide is not delivered again by the workflow: it
// waits for an operator's resolve-delivery, and "deliver again" delivers at once.
func TestDeclarationUncertainDeliveryWaitsForAnOperator(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoSend = true
	decided := false
	w.deliver = func(w *world) (pipeline.DeliverResult, error) {
		if !decided {
			return pipeline.DeliverResult{Outcome: pipeline.OutcomeUncertain, Reason: "Digipoort shows no process of it", Attempt: 1}, nil
		}
		w.msg.Status, w.msg.Kenmerk = domain.StatusSent, "K-1"
		return pipeline.DeliverResult{Outcome: pipeline.OutcomeSent, Kenmerk: "K-1", Attempt: 1}, nil
	}
	w.setup(env)
	var resolved []pipeline.ResolveDeliverySignal
	env.OnActivity(a.ResolveDelivery, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(func(_ context.Context, _ int64, _ int, sig pipeline.ResolveDeliverySignal) error {
			resolved = append(resolved, sig)
			decided = true
			return nil
		})
	var waiting, after pipeline.State
	deliveriesBefore := 0
	env.RegisterDelayedCallback(func() {
		waiting = queryState(t, env)
		deliveriesBefore = w.called("Deliver")
		env.SignalWorkflow(pipeline.SignalResolveDelivery, pipeline.ResolveDeliverySignal{DeliverAgain: true, By: "ops"})
	}, 3*time.Hour)
	cancelAt(t, env, 3*time.Hour+time.Minute, &after)
	env.ExecuteWorkflow(DeclarationWorkflow, input())

	// Auto-send looks again on its back-off schedule, never more.
	if deliveriesBefore < 2 || deliveriesBefore > 10 || !strings.Contains(waiting.LastMessage, "shows no process") {
		t.Errorf("before the decision: %d delivery rounds, state %+v", deliveriesBefore, waiting)
	}
	if len(resolved) != 1 || !resolved[0].DeliverAgain || after.Status != domain.StatusSent || w.called("Deliver") != deliveriesBefore+1 {
		t.Errorf("after the decision: resolved %+v, state %+v, deliveries %d", resolved, after, w.called("Deliver"))
	}
}

// Few events but many bytes (large LoadMessage results): the run continues as new on the
// byte bound too, before Temporal's size limits.
func TestDeclarationContinuesAsNewOnHistoryBytes(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.setup(env)
	env.SetCurrentHistoryLength(10)
	env.SetCurrentHistorySize(historyBytesLimit + 1)
	env.ExecuteWorkflow(DeclarationWorkflow, input())
	var cont *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &cont) {
		t.Fatalf("want continue-as-new over %d bytes, got %v", historyBytesLimit, err)
	}
	if w.called("Deliver") != 0 {
		t.Errorf("calls: %v", w.calls)
	}
}

// Runs recorded before the byte bound may have passed it and gone on: replaying them must
// not continue as new where they did not (the bound is version-guarded).
func TestDeclarationByteBoundReplaysOldHistories(t *testing.T) {
	old := historyBytesLimit
	historyBytesLimit = 1000 // every recorded declaration history passes this
	t.Cleanup(func() { historyBytesLimit = old })
	files, err := filepath.Glob(filepath.Join("testdata", "declaration-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("recorded histories missing (%v)", err)
	}
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(DeclarationWorkflow, workflow.RegisterOptions{Name: pipeline.DeclarationWorkflowType})
	for _, f := range files {
		if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
			t.Errorf("replay %s over a lowered byte bound: %v", f, err)
		}
	}
}

// The compact shape (CompactDeclarationWorkflow) takes the same stages with fewer calls:
// for an environment that processes by itself the delivery is processed in the same
// activity, and the final process and report are one call; the outcome is the same.
func TestCompactDeclarationAutoProcess(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.msg.AutoProcess = true
	w.setup(env)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "send-receive-1"}) }, time.Minute)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "100", "200", "301", "405", "400", "500") }, 2*time.Minute)
	env.ExecuteWorkflow(CompactDeclarationWorkflow, input())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if w.called("DeliverAndProcess") != 1 || w.called("ProcessAndReport") != 1 || w.called("Deliver") != 0 || w.called("Process") != 0 ||
		w.called("Report") != 0 {
		t.Errorf("calls: %v", w.calls)
	}
	if w.msg.EnvStatus != domain.StatusAccepted || !w.msg.Reported {
		t.Errorf("the environment's view: %+v", w.msg)
	}
	if got := w.lines("I"); len(got) != 1 || got[0] != "report accepted" {
		t.Errorf("report line: %v", got)
	}
	if w.called("DeliverWebhooks") == 0 {
		t.Error("the webhook events the processing wrote were not posted")
	}
}

// In an environment that processes by hand the compact shape waits for process as the
// classic one does, then processes and reports in one call.
func TestCompactDeclarationManualEnvironment(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	w := newWorld(domain.StatusQueued)
	w.setup(env)
	var waiting pipeline.State
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(pipeline.SignalSend, pipeline.SendSignal{By: "send-receive-1"}) }, time.Minute)
	env.RegisterDelayedCallback(func() { w.replies(env, "105", "500") }, 2*time.Minute)
	env.RegisterDelayedCallback(func() {
		waiting = queryState(t, env)
		env.SignalWorkflow(pipeline.SignalProcess, pipeline.OperatorSignal{By: "op"})
	}, 3*time.Minute)
	env.ExecuteWorkflow(CompactDeclarationWorkflow, input())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if waiting.Stage != pipeline.StageProcessing || waiting.EnvStatus == domain.StatusAccepted {
		t.Errorf("before process: %+v", waiting)
	}
	if w.called("DeliverAndProcess") != 1 || w.called("ProcessAndReport") != 1 || w.called("Process") != 0 {
		t.Errorf("calls: %v", w.calls)
	}
	if !w.msg.Reported || w.msg.EnvStatus != domain.StatusAccepted {
		t.Errorf("after process: %+v", w.msg)
	}
}
