package pipeline

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// Client is the part of the Temporal client that starts and signals declarations.
type Client interface {
	ExecuteWorkflow(ctx context.Context, options client.StartWorkflowOptions, workflow interface{}, args ...interface{}) (client.WorkflowRun, error)
	SignalWithStartWorkflow(ctx context.Context, workflowID string, signalName string, signalArg interface{},
		options client.StartWorkflowOptions, workflow interface{}, workflowArgs ...interface{}) (client.WorkflowRun, error)
}

// Starter is the one way to start or signal a declaration workflow, so that every
// caller (queueing, send/receive, the command line, the benchmark, the tests) starts
// it with the same id, options, summary and search attributes.
type Starter struct {
	Client Client
	// TaskQueue is where the worker listens; empty means DefaultTaskQueue.
	TaskQueue string
	// NoReplyTimeout and DeliveryDeadline are passed to every workflow it starts; 0
	// means their defaults.
	NoReplyTimeout   time.Duration
	DeliveryDeadline time.Duration
	// WebhookRetryInitial is passed to every workflow it starts; 0 means its default.
	WebhookRetryInitial time.Duration
	// BounceWindow is passed to every workflow it starts; 0 means DefaultBounceWindow.
	BounceWindow time.Duration
}

// Options are the options every start of a declaration workflow uses: the summary is
// the one line the Web UI shows, the search attributes make it findable from the
// first moment.
func (s Starter) Options(m Message) client.StartWorkflowOptions {
	queue := s.TaskQueue
	if queue == "" {
		queue = DefaultTaskQueue
	}
	return client.StartWorkflowOptions{
		ID:        DeclarationID(m.Number),
		TaskQueue: queue,
		// A closed workflow of a message that needs work again (restore, a late
		// reply) is started anew; Postgres says where the message stands.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         m.Summary(),
		TypedSearchAttributes: m.SearchAttributes(),
	}
}

func (s Starter) input(m Message) DeclarationInput {
	return DeclarationInput{Number: m.Number, NoReplyTimeout: s.NoReplyTimeout, DeliveryDeadline: s.DeliveryDeadline,
		WebhookRetryInitial: s.WebhookRetryInitial, BounceWindow: s.BounceWindow}
}

// Start starts the workflow of a freshly queued message.
func (s Starter) Start(ctx context.Context, m Message) error {
	if _, err := s.Client.ExecuteWorkflow(ctx, s.Options(m), CompactDeclarationWorkflowType, s.input(m)); err != nil {
		return fmt.Errorf("start the workflow of message %d: %w", m.Number, err)
	}
	return nil
}

// Signal sends a signal to a message's workflow, starting the workflow where it has
// none (it was terminated, or finished and is needed again).
func (s Starter) Signal(ctx context.Context, m Message, signal string, arg any) error {
	opts := s.Options(m)
	if _, err := s.Client.SignalWithStartWorkflow(ctx, opts.ID, signal, arg, opts, CompactDeclarationWorkflowType, s.input(m)); err != nil {
		return fmt.Errorf("signal %s to message %d: %w", signal, m.Number, err)
	}
	return nil
}
