package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/domain"
	"koerier/pipeline"
)

// fakeLock behaves like the locks table: one holder, expiring after 30 minutes on a
// clock the test controls.
type fakeLock struct {
	mu       sync.Mutex
	now      time.Time
	holder   string
	expires  time.Time
	released []string
}

func (l *fakeLock) acquire(holder string) (pipeline.Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.holder != "" && l.holder != holder && l.now.Before(l.expires) {
		msg := fmt.Sprintf("send-receive is already running: %s holds the lock; it is released by itself at %s", l.holder, l.expires)
		return pipeline.Lock{}, temporal.NewNonRetryableApplicationError(msg, pipeline.ErrTypeLockHeld, nil)
	}
	l.holder, l.expires = holder, l.now.Add(domain.LockDuration)
	return pipeline.Lock{Holder: holder, ExpiresAt: l.expires}, nil
}

func (l *fakeLock) release(holder string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = append(l.released, holder)
	if l.holder == holder {
		l.holder = ""
		return true, nil
	}
	return false, nil
}

type srFake struct {
	lock        *fakeLock
	due         []int64
	inflight    []int64
	receiveFail bool
	pickupFail  bool
	mu          sync.Mutex
	log         []pipeline.LogLine
	dispatched  []int64
}

func (f *srFake) setup(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.AcquireLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (pipeline.Lock, error) { return f.lock.acquire(h) })
	env.OnActivity(a.RenewLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (pipeline.Lock, error) { return f.lock.acquire(h) })
	env.OnActivity(a.ReleaseLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (bool, error) { return f.lock.release(h) })
	env.OnActivity(a.DispatchSends, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.DispatchRequest) (pipeline.DispatchResult, error) {
		var page []int64
		for _, n := range f.due {
			if n > r.After && len(page) < r.Limit {
				page = append(page, n)
			}
		}
		f.mu.Lock()
		f.dispatched = append(f.dispatched, page...)
		f.mu.Unlock()
		res := pipeline.DispatchResult{Numbers: page, Next: r.After, More: len(page) == r.Limit}
		if len(page) > 0 {
			res.Next = page[len(page)-1]
		}
		return res, nil
	})
	env.OnActivity(a.AwaitSendOutcomes, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.AwaitRequest) (pipeline.SendOutcome, error) {
		out := pipeline.SendOutcome{}
		for _, n := range r.Numbers {
			if n%10 == 7 {
				out.Failed++
			} else {
				out.Sent++
			}
		}
		return out, nil
	})
	env.OnActivity(a.ReceiveStatuses, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.ReceiveRequest) (pipeline.ReceiveResult, error) {
		if f.receiveFail {
			return pipeline.ReceiveResult{}, temporal.NewNonRetryableApplicationError("the database says no", pipeline.ErrTypeInvalid, nil)
		}
		var page []int64
		for _, n := range f.inflight {
			if n > r.After && len(page) < r.Limit {
				page = append(page, n)
			}
		}
		res := pipeline.ReceiveResult{Deliveries: len(page), Replies: 3 * len(page), Next: r.After, More: len(page) == r.Limit}
		if len(page) > 0 {
			res.Next = page[len(page)-1]
		}
		return res, nil
	})
	env.OnActivity(a.ReceivePickup, mock.Anything).Return(func(context.Context) (pipeline.PickupResult, error) {
		if f.pickupFail {
			return pipeline.PickupResult{}, fmt.Errorf("digipoort getBerichtenLijst (transient): HTTP 503")
		}
		return pipeline.PickupResult{Listed: 5, Fetched: 2, Linked: 1, Unknown: 1}, nil
	})
	env.OnActivity(a.SignalPendingReplies, mock.Anything).Return(nil)
	env.OnActivity(a.WriteLog, mock.Anything, mock.Anything).Return(func(_ context.Context, l pipeline.LogLine) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.log = append(f.log, l)
		return nil
	})
}

func numbers(from, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(from + i)
	}
	return out
}

func TestSendReceiveCountsAndReleasesTheLock(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, due: numbers(1, 25), inflight: numbers(100, 12)}
	f.setup(env)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{Trigger: "test", PageSize: 10})
	var c pipeline.SendReceiveCounts
	if err := env.GetWorkflowResult(&c); err != nil {
		t.Fatal(err)
	}
	if c.Dispatched != 25 || c.Sent+c.Failed != 25 || c.Failed != 2 || c.InFlight != 12 || c.Replies != 36 || c.Documents != 1 || c.ONB != 1 || !c.Complete {
		t.Errorf("counts: %+v", c)
	}
	if len(f.dispatched) != 25 {
		t.Errorf("dispatched %d", len(f.dispatched))
	}
	if f.lock.holder != "" || len(f.lock.released) != 1 {
		t.Errorf("lock not released: %+v", f.lock)
	}
	last := f.log[len(f.log)-1]
	if last.Level != "F" || !strings.Contains(last.Description, "sent 23, send failed 2") || !strings.Contains(last.Description, "unknown replies 1") {
		t.Errorf("summary line: %+v", last)
	}
}

// Rule 6 (docs/rules.md): a second run fails at once with a message that names the holder and when
// the lock is released; the holder's lock is left alone.
func TestSecondSendReceiveIsRefused(t *testing.T) {
	lock := &fakeLock{now: time.Now()}
	if _, err := lock.acquire("send/receive send-receive-1 (schedule)"); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: lock, due: numbers(1, 3)}
	f.setup(env)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{Trigger: "manual"})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "send-receive-1") ||
		!strings.Contains(err.Error(), "by itself") {
		t.Fatalf("want the lock refusal, got %v", err)
	}
	if len(f.dispatched) != 0 {
		t.Error("a refused run sent messages")
	}
	if lock.holder != "send/receive send-receive-1 (schedule)" {
		t.Error("the refused run took or freed the holder's lock")
	}
}

// A run whose worker died holds the lock until 30 minutes have passed; then the next
// run takes it over.
func TestLockOfDeadRunExpiresAfter30Minutes(t *testing.T) {
	start := time.Now()
	lock := &fakeLock{now: start}
	if _, err := lock.acquire("send/receive dead-run (schedule)"); err != nil {
		t.Fatal(err)
	}
	run := func(at time.Duration) error {
		lock.mu.Lock()
		lock.now = start.Add(at)
		lock.mu.Unlock()
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		f := &srFake{lock: lock, due: numbers(1, 2)}
		f.setup(env)
		env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{Trigger: "schedule"})
		return env.GetWorkflowError()
	}
	if err := run(29 * time.Minute); err == nil || !strings.Contains(err.Error(), "dead-run") {
		t.Fatalf("at 29 minutes: %v", err)
	}
	if err := run(30*time.Minute + time.Second); err != nil {
		t.Fatalf("after 30 minutes the lock must be free: %v", err)
	}
}

// The lock is released when the run fails too.
func TestSendReceiveReleasesLockOnFailure(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, inflight: numbers(1, 3), receiveFail: true}
	f.setup(env)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{})
	if env.GetWorkflowError() == nil {
		t.Fatal("want the run to fail")
	}
	if f.lock.holder != "" || len(f.lock.released) != 1 {
		t.Errorf("lock after failure: %+v", f.lock)
	}
}

// Digipoort trouble in pickup is logged (F) and counted; the run completes and the
// next one looks back 30 days again.
func TestSendReceivePickupTroubleIsLogged(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, pickupFail: true}
	f.setup(env)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{})
	var c pipeline.SendReceiveCounts
	if err := env.GetWorkflowResult(&c); err != nil {
		t.Fatal(err)
	}
	if c.ReceiveErrors != 1 || c.Complete {
		t.Errorf("counts %+v", c)
	}
	found := false
	for _, l := range f.log {
		if l.Level == "F" && strings.Contains(l.Description, "ready for pickup") {
			found = true
		}
	}
	if !found {
		t.Errorf("no F line for the pickup failure: %+v", f.log)
	}
}

// Thousands of messages: the run pages and continues as new before its history grows
// large, keeping its lock and its counts.
func TestSendReceiveContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, due: numbers(1, 3000)}
	f.setup(env)
	// The history grows by about 10 events a page; say it is long after 5 pages.
	pages := 0
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == "DispatchSends" {
			pages++
			env.SetCurrentHistoryLength(pages * historyLimit / 5)
		}
	})
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{PageSize: 100})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "continue as new") {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	if f.lock.holder == "" || len(f.lock.released) != 0 {
		t.Errorf("continuing must keep the lock: %+v", f.lock)
	}
	var cont *workflow.ContinueAsNewError
	if !errors.As(err, &cont) {
		t.Fatalf("%T", err)
	}
	if pages != 5 || len(f.dispatched) != 500 {
		t.Errorf("continued after %d pages, %d dispatched", pages, len(f.dispatched))
	}
}
