// Package activities holds everything Koerier's workflows do to the outside world:
// Digipoort calls, store operations, the send/receive lock and reporting.
//
// Every activity is idempotent — the worker can die between doing the work and
// Temporal recording it — and says which errors are final: those are returned as
// non-retryable application errors with one of the Err* types below, so retry
// policies stop at once; everything else is retried.
package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"koerier/digipoort"
	"koerier/pipeline"
	"koerier/store"
)

// Error types of final (non-retryable) activity errors.
const (
	ErrTypeRefused        = "Refused"        // a rule says no; the message says why
	ErrTypeNotFound       = "NotFound"       // the message or environment does not exist
	ErrTypeLockHeld       = "LockHeld"       // another send/receive holds the lock
	ErrTypeDigipoortFinal = "DigipoortFinal" // Digipoort answered in a way retrying won't change
	ErrTypeInvalid        = "Invalid"        // bad input
)

// NonRetryable lists the error types retry policies must not retry.
var NonRetryable = []string{ErrTypeRefused, ErrTypeNotFound, ErrTypeLockHeld, ErrTypeDigipoortFinal, ErrTypeInvalid}

// Digipoort is the part of the Digipoort client the activities use.
type Digipoort interface {
	Deliver(ctx context.Context, r digipoort.DeliverRequest) (digipoort.DeliverResponse, error)
	Statuses(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Status, error)
	BerichtenLijst(ctx context.Context, from, to time.Time) ([]digipoort.BerichtRef, error)
	BerichtenKenmerk(ctx context.Context, kenmerk string, from, to time.Time) ([]digipoort.Bericht, error)
	FindDelivery(ctx context.Context, berichtsoort string, id digipoort.Identity, aanleverkenmerk string, known func(kenmerk string) bool) (string, bool, error)
}

// Signaler is the part of the Temporal client the activities use to wake workflows.
type Signaler interface {
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg interface{},
		options client.StartWorkflowOptions, workflow interface{}, workflowArgs ...interface{}) (client.WorkflowRun, error)
}

// Config tunes the activities.
type Config struct {
	TaskQueue string
	// Rol is rolBelanghebbende on every delivery: Bedrijf, or Intermediair for a
	// bookkeeper filing for clients.
	Rol string
	// NoReplyTimeout is passed to declarations that send/receive (re)creates.
	NoReplyTimeout time.Duration
	// UncertainWait is how long a delivery whose outcome is unknown is looked up at
	// Digipoort before it is delivered again.
	UncertainWait time.Duration
	// Parallel bounds concurrent Digipoort calls and signals within one activity.
	Parallel int
}

// Activities is registered with the worker; its exported methods are the activities.
type Activities struct {
	Store     *store.Store
	Digipoort Digipoort
	Temporal  Signaler
	Config    Config
	Log       logrus.FieldLogger
}

func (a *Activities) parallel() int {
	if a.Config.Parallel > 0 {
		return a.Config.Parallel
	}
	return 16
}

func (a *Activities) log() logrus.FieldLogger {
	if a.Log != nil {
		return a.Log
	}
	return logrus.StandardLogger()
}

// final turns a store refusal or missing row into a non-retryable error, and leaves
// everything else (connection trouble, deadlocks) to be retried.
func final(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, store.ErrRefused):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeRefused, err)
	case errors.Is(err, store.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	case errors.Is(err, store.ErrInvalid):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	var held *store.LockHeldError
	if errors.As(err, &held) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeLockHeld, err)
	}
	if digipoort.IsFinal(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeDigipoortFinal, err)
	}
	return err
}

// DeclarationStartOptions are the options every start of a declaration workflow uses;
// summary is the one line the Web UI shows (pipeline.Summary), search attributes make
// it findable from the first moment.
func DeclarationStartOptions(taskQueue string, number int64, summary string, sa temporal.SearchAttributes) client.StartWorkflowOptions {
	if taskQueue == "" {
		taskQueue = pipeline.DefaultTaskQueue
	}
	if summary == "" {
		summary = fmt.Sprintf("message %d", number)
	}
	return client.StartWorkflowOptions{
		ID:        pipeline.DeclarationID(number),
		TaskQueue: taskQueue,
		// A closed workflow of a message that needs work again (restore, a late
		// reply) is started anew; Postgres says where the message stands.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         summary,
		TypedSearchAttributes: sa,
	}
}

// keepAlive heartbeats every few seconds until stop is called, so that Temporal
// notices within its heartbeat timeout when the worker running a long call dies,
// instead of waiting for the whole start-to-close timeout.
func keepAlive(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
