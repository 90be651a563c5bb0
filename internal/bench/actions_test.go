package bench

import (
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
)

func event(t enumspb.EventType) *historypb.HistoryEvent { return &historypb.HistoryEvent{EventType: t} }

func activityStarted(attempt int32) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED,
		Attributes: &historypb.HistoryEvent_ActivityTaskStartedEventAttributes{
			ActivityTaskStartedEventAttributes: &historypb.ActivityTaskStartedEventAttributes{Attempt: attempt}}}
}

func marker(name string) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_MARKER_RECORDED,
		Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
			MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: name}}}
}

func started(continuedFrom string) *historypb.HistoryEvent {
	return &historypb.HistoryEvent{EventType: enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
		Attributes: &historypb.HistoryEvent_WorkflowExecutionStartedEventAttributes{
			WorkflowExecutionStartedEventAttributes: &historypb.WorkflowExecutionStartedEventAttributes{ContinuedExecutionRunId: continuedFrom}}}
}

// Two runs of one workflow, a few events of each kind: what Temporal Cloud bills is
// counted once each, a retried activity is billed per attempt, and the bookkeeping
// events (workflow tasks, completions, version markers, the continue-as-new event
// itself) cost nothing extra.
func TestActionsCountWhatIsBilled(t *testing.T) {
	var a Actions
	for _, e := range []*historypb.HistoryEvent{
		// Run 1, started by signal-with-start: a start and a signal.
		started(""),
		event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
		event(enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED),
		event(enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED),
		event(enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
		marker("Version"),
		marker(localActivityMarker),
		marker(localActivityMarker),
		marker("SideEffect"),
		event(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
		event(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
		activityStarted(1),
		event(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
		// Succeeded at the third attempt: two retries, written as one started event.
		event(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
		activityStarted(3),
		event(enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
		event(enumspb.EVENT_TYPE_TIMER_STARTED),
		event(enumspb.EVENT_TYPE_TIMER_FIRED),
		event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
		event(enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED),
		event(enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED),
		event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW),
		// Run 2, continued from run 1.
		started("run-1"),
		event(enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
		event(enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
		event(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
	} {
		a.Add(e)
	}
	want := Actions{Starts: 2, ContinueAsNew: 1, Activities: 3, ActivityRetries: 2, LocalActivities: 2, Signals: 2, Timers: 1, Upserts: 2}
	if a != want {
		t.Fatalf("counted %+v, want %+v", a, want)
	}
	if a.Total() != 15 {
		t.Errorf("total %d, want 15", a.Total())
	}
	if sum := a.Plus(Actions{Activities: 1, Signals: 1}); sum.Total() != 17 || sum.Activities != 4 || sum.Signals != 3 {
		t.Errorf("plus: %+v", sum)
	}
}

// The per-workflow means divide by the workflows whose histories were read, not by
// all listed, and events by all listed.
func TestWorkflowFiguresMeans(t *testing.T) {
	f := workflowFigures{Workflows: 200, Events: 9400, Sampled: 50, Actions: Actions{Starts: 50, Activities: 250, Signals: 100, Upserts: 75}}
	if f.EventsPer() != 47 || f.ActionsPer() != 9.5 {
		t.Errorf("events %.2f, actions %.2f; want 47 and 9.5", f.EventsPer(), f.ActionsPer())
	}
	k := f.byKind()
	if k["activities"] != 5 || k["signals"] != 2 || k["upserts"] != 1.5 || k["starts"] != 1 || k["timers"] != 0 || len(k) != 8 {
		t.Errorf("by kind: %v", k)
	}
	if (workflowFigures{}).ActionsPer() != 0 || (workflowFigures{}).EventsPer() != 0 {
		t.Error("no workflows must give 0, not NaN")
	}
}
