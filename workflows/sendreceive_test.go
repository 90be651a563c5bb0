package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// renewActivities counts RenewLock activities; pageRenewals the pages whose request
	// renewed the lock (the activities do so when the request names the holder).
	renewActivities, pageRenewals int
	pickups                       int
	// pickupBlocks: ReceivePickup runs until it is cancelled.
	pickupBlocks bool
}

// renew does what a page activity does with its request's holder.
func (f *srFake) renew(holder string) error {
	if holder == "" {
		return nil
	}
	f.mu.Lock()
	f.pageRenewals++
	f.mu.Unlock()
	_, err := f.lock.acquire(holder)
	return err
}

func (f *srFake) setup(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(a.AcquireLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (pipeline.Lock, error) { return f.lock.acquire(h) })
	env.OnActivity(a.RenewLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (pipeline.Lock, error) {
		f.mu.Lock()
		f.renewActivities++
		f.mu.Unlock()
		return f.lock.acquire(h)
	})
	env.OnActivity(a.ReleaseLock, mock.Anything, mock.Anything).Return(func(_ context.Context, h string) (bool, error) { return f.lock.release(h) })
	env.OnActivity(a.DispatchSends, mock.Anything, mock.Anything).Return(func(_ context.Context, r pipeline.DispatchRequest) (pipeline.DispatchResult, error) {
		if err := f.renew(r.Holder); err != nil {
			return pipeline.DispatchResult{}, err
		}
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
		if err := f.renew(r.Holder); err != nil {
			return pipeline.SendOutcome{}, err
		}
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
		if err := f.renew(r.Holder); err != nil {
			return pipeline.ReceiveResult{}, err
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
	env.OnActivity(a.ReceivePickup, mock.Anything).Return(func(ctx context.Context) (pipeline.PickupResult, error) {
		if f.pickupBlocks {
			<-ctx.Done()
			return pipeline.PickupResult{}, ctx.Err()
		}
		f.mu.Lock()
		f.pickups++
		again := f.pickups > 1
		f.mu.Unlock()
		if f.pickupFail {
			return pipeline.PickupResult{}, fmt.Errorf("digipoort getBerichtenLijst (transient): HTTP 503")
		}
		if again {
			// As ReceivePickup does: what an earlier pickup stored is not fetched again.
			return pipeline.PickupResult{Listed: 5}, nil
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

// historyLongAfter has the test history reach historyLimit once pages activities of
// activityType completed; it returns how many completed.
func historyLongAfter(env *testsuite.TestWorkflowEnvironment, activityType string, pages int) *int {
	done := 0
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name == activityType {
			done++
			env.SetCurrentHistoryLength(done * historyLimit / pages)
		}
	})
	return &done
}

// startedActivities records the type of every activity the test starts, in order.
func startedActivities(env *testsuite.TestWorkflowEnvironment) *[]string {
	var started []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started = append(started, info.ActivityType.Name)
	})
	return &started
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
	// 3 send pages, 1 await chunk, 2 receive pages: each renews the lock in its own
	// request, with no RenewLock round trip between pages; one RenewLock before pickup.
	if f.renewActivities != 1 || f.pageRenewals != 6 {
		t.Errorf("lock renewed by %d RenewLock activities and %d pages, want 1 (before pickup) and 6", f.renewActivities, f.pageRenewals)
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

// A pickup runs beside the status pages: it starts with the first one. A last one after
// them fetches what became ready meanwhile.
func TestSendReceivePicksUpBesideTheStatusPages(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, inflight: numbers(100, 25)}
	f.setup(env)
	started := startedActivities(env)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{Trigger: "test", PageSize: 10})
	var c pipeline.SendReceiveCounts
	if err := env.GetWorkflowResult(&c); err != nil {
		t.Fatal(err)
	}
	var pickups []int
	lastPage := -1
	for i, name := range *started {
		switch name {
		case "ReceivePickup":
			pickups = append(pickups, i)
		case "ReceiveStatuses":
			lastPage = i
		}
	}
	if len(pickups) != 2 || pickups[0] > lastPage || pickups[1] < lastPage {
		t.Fatalf("pickups started at %v, the last status page at %d, want one before and one after it: %v", pickups, lastPage, *started)
	}
	if c.InFlight != 25 || c.Documents != 1 || c.ONB != 1 || !c.Complete {
		t.Errorf("counts: %+v", c)
	}
}

// A run that continues as new while its pickup runs waits for it, counts it, and tells
// the next run not to pick up again.
func TestSendReceiveContinuesAsNewAfterItsPickup(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, inflight: numbers(1, 3000)}
	f.setup(env)
	historyLongAfter(env, "ReceiveStatuses", 3)
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{PageSize: 100})
	var cont *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &cont) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next pipeline.SendReceiveInput
	if err := converter.GetDefaultDataConverter().FromPayloads(cont.Input, &next); err != nil {
		t.Fatal(err)
	}
	if f.pickups != 1 || !next.PickedUp || next.Counts.Documents != 1 || next.Phase != pipeline.PhaseReceive {
		t.Fatalf("pickups %d; the next run gets %+v", f.pickups, next)
	}

	// The next run starts no pickup beside its pages, only the last one after them.
	env2 := s.NewTestWorkflowEnvironment()
	f.setup(env2)
	started := startedActivities(env2)
	env2.ExecuteWorkflow(SendReceiveWorkflow, next)
	var c pipeline.SendReceiveCounts
	if err := env2.GetWorkflowResult(&c); err != nil {
		t.Fatal(err)
	}
	if f.pickups != 2 || c.Documents != 1 || c.InFlight != 3000 || slices.Index(*started, "ReceivePickup") < slices.Index(*started, "RenewLock") {
		t.Errorf("after continuing: pickups %d, counts %+v, activities %v", f.pickups, c, *started)
	}
}

// A run that lost its lock (its worker was away for over 30 minutes and another run
// took it) stops at its next page: it sends nothing more and leaves the other run's
// lock alone.
func TestSendReceiveThatLostItsLockStops(t *testing.T) {
	start := time.Now()
	lock := &fakeLock{now: start}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: lock, due: numbers(1, 30)}
	f.setup(env)
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
		if info.ActivityType.Name != "DispatchSends" || len(f.dispatched) != 10 {
			return
		}
		lock.mu.Lock()
		lock.now = start.Add(domain.LockDuration + time.Minute)
		lock.mu.Unlock()
		if _, err := lock.acquire("send/receive other-run (schedule)"); err != nil {
			t.Error(err)
		}
	})
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{Trigger: "schedule", PageSize: 10})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "other-run") {
		t.Fatalf("want the run to stop on the other run's lock, got %v", err)
	}
	if len(f.dispatched) != 10 {
		t.Errorf("dispatched %d after losing the lock, want the first page's 10 only", len(f.dispatched))
	}
	if lock.holder != "send/receive other-run (schedule)" {
		t.Errorf("the other run's lock was taken or freed: %+v", lock)
	}
}

// A run that fails while its pickup beside the status pages runs stops that pickup
// before it releases the lock: nothing fetches from Digipoort for a run without it.
func TestSendReceiveStopsItsPickupBeforeReleasingTheLock(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &srFake{lock: &fakeLock{now: time.Now()}, inflight: numbers(1, 3), receiveFail: true, pickupBlocks: true}
	f.setup(env)
	started := startedActivities(env)
	env.SetOnActivityCanceledListener(func(info *activity.Info) {
		*started = append(*started, "cancelled "+info.ActivityType.Name)
	})
	env.ExecuteWorkflow(SendReceiveWorkflow, pipeline.SendReceiveInput{})
	if env.GetWorkflowError() == nil {
		t.Fatal("want the run to fail")
	}
	cancelled, released := slices.Index(*started, "cancelled ReceivePickup"), slices.Index(*started, "ReleaseLock")
	if cancelled < 0 || released < cancelled || f.lock.holder != "" {
		t.Errorf("want the pickup cancelled before the lock is released: %v; lock %+v", *started, f.lock)
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
	// Both pickups failed; the last one counts, the one beside the pages only warns.
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
	pages := historyLongAfter(env, "DispatchSends", 5)
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
	if *pages != 5 || len(f.dispatched) != 500 {
		t.Errorf("continued after %d pages, %d dispatched", *pages, len(f.dispatched))
	}
}
