// Package workflows holds Koerier's durable workflows: one DeclarationWorkflow per
// outgoing message, the SendReceiveWorkflow that moves them, and the CleanupWorkflow.
//
// Workflow code is deterministic: time comes from workflow.Now, waiting from timers and
// signals, everything else from activities. Postgres is the record of truth; a
// workflow reads where its message stands when it starts, so a workflow that was lost,
// cancelled or terminated is simply started again.
package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/pipeline"
)

// a is only used to name activity methods; the worker registers the real one.
var a *activities.Activities

// storeOptions fit activities that only touch Postgres: retried without limit, with
// back-off up to 30 seconds, so that a database restart delays the pipeline but never
// loses a step. Final errors (refusals, missing rows) stop at once.
func storeOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Short, so that an activity lost with a killed worker is retried soon; long
		// activities (clean-up pages, sweeps) heartbeat.
		StartToCloseTimeout: 30 * time.Second,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// localStoreOptions fit the short Postgres calls of the compact shape, run as local
// activities: retried as storeOptions are (a database restart delays, never loses a
// step), the early tries within the workflow task, later ones after a timer.
func localStoreOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// deliverOptions retry a transient Digipoort problem a few times within minutes; after
// that the message stays due, the failure is logged, and the next send/receive tries
// again. Digipoort's final answers are not retried.
func deliverOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 3 * time.Minute,
		// The activity heartbeats during the call: a worker that dies mid-delivery is
		// noticed in seconds, and the retry asks Digipoort before delivering again.
		HeartbeatTimeout: 20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        8,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// webhookOptions post a message's webhook events until the receiver takes them, for at
// least the three days a receiver may be down over a long weekend (WebhookRetryFor):
// the wait doubles from initial up to WebhookRetryMax. Each try posts what is pending
// and heartbeats per event; a 410 ends it without an error.
func webhookOptions(ctx workflow.Context, initial time.Duration) workflow.Context {
	if initial <= 0 {
		initial = pipeline.DefaultWebhookRetryInitial
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ScheduleToCloseTimeout: pipeline.WebhookRetryFor,
		// A message has a handful of events, each post bounded by WebhookTimeout.
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    initial,
			BackoffCoefficient: 2,
			MaximumInterval:    max(pipeline.WebhookRetryMax, initial),
			// Never reached before ScheduleToClose (about 110 tries from the shortest
			// initial wait); set because Temporal's test environment caps "unlimited"
			// at 10 tries, and workflows/webhooks_test.go checks the whole schedule.
			MaximumAttempts:        1000,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// pageOptions fit the send/receive activities that work through one page of messages:
// long enough to wait for deliveries, heartbeating, retried a few times.
func pageOptions(ctx workflow.Context, wait time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: wait + 5*time.Minute,
		HeartbeatTimeout:    20 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// lockOptions: a lock held by another run fails at once (LockHeld is final); a
// database that does not answer is tried for about a minute.
func lockOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        15 * time.Second,
			MaximumAttempts:        6,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// historyLimit is where a workflow continues as new before its history grows large;
// a variable so tests can make it small.
var historyLimit = 2000

// historyBytesLimit bounds the history in bytes as historyLimit does in events: a
// LoadMessage result can be ~30 KB (action, F lines, files), so a long-lived workflow can
// outgrow Temporal's size limits well before 2000 events. Temporal warns at 10 MB and
// fails the execution at 50 MB (docs.temporal.io/workflow-execution/limits: "limited to
// 51,200 Events or 50 MB and will warn you after 10,240 Events or 10 MB"); 8 MiB stays
// below the warning. A variable so tests can make it small.
var historyBytesLimit = 8 << 20
