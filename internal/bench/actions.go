package bench

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// localActivityMarker is the marker the Go SDK records for each local activity
// (internal/internal_command_state_machine.go: localActivityMarkerName).
const localActivityMarker = "LocalActivity"

// Actions are the Temporal Cloud actions one or more workflow histories show, by kind.
// Temporal Cloud bills per action, and a self-hosted cluster pays for the same
// operations in database writes, so this is the cost a declaration's shape sets.
//
// Counted, from the history events:
//   - Starts: WorkflowExecutionStarted of a run a client started (a signal-with-start
//     counts here and once more in Signals), and StartChildWorkflowExecutionInitiated;
//   - ContinueAsNew: WorkflowExecutionStarted of a run that continued an earlier one
//     (billed as a start; the old run's ContinuedAsNew event is not counted again);
//   - Activities: ActivityTaskScheduled; ActivityRetries: the attempts before the one
//     ActivityTaskStarted records (its Attempt − 1), because the server writes only
//     the last attempt's started event and Cloud bills every retry;
//   - LocalActivities: each MarkerRecorded named LocalActivity (one per marker);
//   - Signals: WorkflowExecutionSignaled;
//   - Timers: TimerStarted;
//   - Upserts: UpsertWorkflowSearchAttributes.
//
// Not counted: Version and SideEffect markers, queries, heartbeats and the
// schedule's own trigger, which leave nothing in these histories (or nothing we
// bill here).
type Actions struct {
	Starts          int
	ContinueAsNew   int
	Activities      int
	ActivityRetries int
	LocalActivities int
	Signals         int
	Timers          int
	Upserts         int
}

// Add counts one history event.
func (a *Actions) Add(e *historypb.HistoryEvent) {
	switch e.GetEventType() {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
		if e.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId() != "" {
			a.ContinueAsNew++
		} else {
			a.Starts++
		}
	case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
		a.Starts++
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
		a.Activities++
	case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
		if n := e.GetActivityTaskStartedEventAttributes().GetAttempt(); n > 1 {
			a.ActivityRetries += int(n) - 1
		}
	case enumspb.EVENT_TYPE_MARKER_RECORDED:
		if e.GetMarkerRecordedEventAttributes().GetMarkerName() == localActivityMarker {
			a.LocalActivities++
		}
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
		a.Signals++
	case enumspb.EVENT_TYPE_TIMER_STARTED:
		a.Timers++
	case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
		a.Upserts++
	}
}

// Plus sums two counts.
func (a Actions) Plus(b Actions) Actions {
	return Actions{
		Starts: a.Starts + b.Starts, ContinueAsNew: a.ContinueAsNew + b.ContinueAsNew,
		Activities: a.Activities + b.Activities, ActivityRetries: a.ActivityRetries + b.ActivityRetries,
		LocalActivities: a.LocalActivities + b.LocalActivities, Signals: a.Signals + b.Signals,
		Timers: a.Timers + b.Timers, Upserts: a.Upserts + b.Upserts,
	}
}

// Total is the number of billed actions.
func (a Actions) Total() int {
	return a.Starts + a.ContinueAsNew + a.Activities + a.ActivityRetries + a.LocalActivities + a.Signals + a.Timers + a.Upserts
}

// historyActions reads one run's whole history and counts its actions.
func historyActions(ctx context.Context, tc client.Client, id, run string) (Actions, error) {
	var a Actions
	it := tc.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return Actions{}, fmt.Errorf("read the history of workflow %s (run %s): %w", id, run, err)
		}
		a.Add(e)
	}
	return a, nil
}

// sampleSize is how many workflows of a kind have their histories read for the
// action counts: enough for a stable mean, few enough to read in seconds at N 10,000.
const sampleSize = 50

// workflowFigures are the history figures of the workflows of one type.
type workflowFigures struct {
	// Workflows counts distinct workflow ids; Events sums the history lengths of all
	// their runs (continued-as-new ones included), as visibility reports them.
	Workflows int
	Events    int64
	// Sampled workflows had every run's history read; Actions sums over them.
	Sampled int
	Actions Actions
}

// EventsPer is the mean history length per workflow, all runs together.
func (f workflowFigures) EventsPer() float64 {
	if f.Workflows == 0 {
		return 0
	}
	return float64(f.Events) / float64(f.Workflows)
}

// ActionsPer is the mean number of billed actions per sampled workflow.
func (f workflowFigures) ActionsPer() float64 {
	if f.Sampled == 0 {
		return 0
	}
	return float64(f.Actions.Total()) / float64(f.Sampled)
}

// per turns a sum over the sample into a mean of one kind.
func (f workflowFigures) per(n int) float64 {
	if f.Sampled == 0 {
		return 0
	}
	return float64(n) / float64(f.Sampled)
}

// listFigures lists the executions the queries match and, by workflow type, sums
// their history lengths and counts the actions of up to `sample` workflows of each
// type (of sampleType only, unless empty) from their histories: every run of a
// sampled workflow, so that a declaration that continued as new is counted whole.
func listFigures(ctx context.Context, tc client.Client, namespace string, queries []string, sample int, sampleType string) (map[string]*workflowFigures, error) {
	type seen struct {
		typ     string
		sampled bool
		runs    []string
	}
	ids := map[string]*seen{}
	var order []string
	figs := map[string]*workflowFigures{}
	for _, q := range queries {
		var token []byte
		for {
			resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, Query: q, PageSize: 1000, NextPageToken: token})
			if err != nil {
				return nil, fmt.Errorf("list workflows (%s): %w", q, err)
			}
			for _, e := range resp.Executions {
				typ, id := e.GetType().GetName(), e.GetExecution().GetWorkflowId()
				f := figs[typ]
				if f == nil {
					f = &workflowFigures{}
					figs[typ] = f
				}
				f.Events += e.GetHistoryLength()
				s := ids[id]
				if s == nil {
					f.Workflows++
					s = &seen{typ: typ, sampled: f.Workflows <= sample && (sampleType == "" || typ == sampleType)}
					ids[id] = s
					if s.sampled {
						order = append(order, id)
					}
				}
				if s.sampled {
					s.runs = append(s.runs, e.GetExecution().GetRunId())
				}
			}
			token = resp.NextPageToken
			if len(token) == 0 {
				break
			}
		}
	}
	for _, id := range order {
		s := ids[id]
		f := figs[s.typ]
		for _, run := range s.runs {
			a, err := historyActions(ctx, tc, id, run)
			if err != nil {
				return nil, err
			}
			f.Actions = f.Actions.Plus(a)
		}
		f.Sampled++
	}
	return figs, nil
}

// byKind is the sample's mean of each kind of action, by the field's name in snake case.
func (f workflowFigures) byKind() map[string]float64 {
	a := f.Actions
	return map[string]float64{
		"starts": f.per(a.Starts), "continue_as_new": f.per(a.ContinueAsNew), "activities": f.per(a.Activities),
		"activity_retries": f.per(a.ActivityRetries), "local_activities": f.per(a.LocalActivities), "signals": f.per(a.Signals),
		"timers": f.per(a.Timers), "upserts": f.per(a.Upserts),
	}
}
