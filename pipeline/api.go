// Package pipeline is the one contract between Koerier's workflows, activities, worker,
// command line and tests: the task queue, workflow ids and types, signal and query
// names and their payloads, search attributes, every workflow and activity input and
// result, the state a declaration shows, the final error types, and the one way to
// start or signal a declaration workflow (Starter).
//
// It imports domain and Temporal's client types, never the store or the activities.
// Types that travel through Temporal histories keep their field names (and JSON keys)
// as recorded: renaming one changes what running workflows decode.
// TestMessageKeepsTheRecordedWireFormat guards Message; workflows/replay_test.go
// replays whole recorded histories.
//
// Files: api.go (names and ids), message.go (the message and its state), declaration.go,
// sendreceive.go and cleanup.go (each workflow's inputs and results), errors.go, log.go,
// start.go.
package pipeline

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// DefaultTaskQueue is the declarations' task queue; the worker also listens on its
// ControlQueue.
const DefaultTaskQueue = "koerier"

// ControlQueue is the task queue of the runs that steer many messages at once:
// send/receive on every channel, clean-up and the certificate check. Their workflow
// tasks and activities would otherwise wait behind every declaration task queued
// before them: measured at 1,000 due messages, a send/receive waited 10 s to start
// and 4-6 s between its pages, over half its 94 s. The worker polls both queues with
// every workflow and activity registered on each, so runs started on the declarations'
// queue (before this queue existed) still finish.
func ControlQueue(taskQueue string) string {
	if taskQueue == "" {
		taskQueue = DefaultTaskQueue
	}
	return taskQueue + "-control"
}

// Workflow type names, as registered by the worker.
const (
	DeclarationWorkflowType = "DeclarationWorkflow"
	// CompactDeclarationWorkflowType is the declaration workflow in its compact shape
	// (workflows.CompactDeclarationWorkflow), which Starter starts for every message. A
	// type of its own rather than a flag in the input: a worker from before it does not
	// know the type and leaves its tasks to one that does, where a flag it ignored would
	// have it record the old shape, which the new code could not replay.
	CompactDeclarationWorkflowType = "CompactDeclarationWorkflow"
	SendReceiveWorkflowType        = "SendReceiveWorkflow"
	CleanupWorkflowType            = "CleanupWorkflow"
	// UnknownReplyWorkflowType waits for an operator to link or resolve one unknown
	// reply (ONB); pipeline/onb.go.
	UnknownReplyWorkflowType = "UnknownReplyWorkflow"
)

// Signals operators send from the Web UI (and the command line sends for them).
const (
	SignalRestoreStatus     = "restore-status"
	SignalSendNow           = "send-now"
	SignalProcess           = "process"
	SignalAssignEnvironment = "assign-environment"
	// SignalReplies carries the replies one send/receive run found for one message.
	SignalReplies = "replies"
	// SignalSend is send/receive telling a declaration it is due.
	SignalSend = "send"
	// SignalResolveDelivery carries an operator's decision about a delivery whose
	// outcome is not known (ResolveDeliverySignal).
	SignalResolveDelivery = "resolve-delivery"
	// SignalDeliverWebhooks is send/receive asking a declaration (with start) to post
	// webhook events that have been pending too long: its workflow may be gone.
	SignalDeliverWebhooks = "deliver-webhooks"
	// SignalEnvironmentChanged tells a declaration that its environment's settings
	// (auto-send, auto-process) changed: it reads its message again from Postgres.
	SignalEnvironmentChanged = "environment-changed"
	// SignalLinkONB and SignalResolveONB go to an unknown reply's workflow
	// (LinkONBSignal, ResolveONBSignal).
	SignalLinkONB    = "link"
	SignalResolveONB = "resolve"
)

// QueryState returns a declaration's State.
const QueryState = "state"

// DeclarationID is the workflow id of a message: readable in the Web UI.
func DeclarationID(number int64) string { return fmt.Sprintf("message-%d", number) }

// Search attributes registered on the Temporal namespace; "all rejected VAT returns of
// environment A" is
//
//	KoerierEnvironment = "A" AND KoerierMessageType = "btw" AND KoerierStatus = "rejected"
var (
	SAEnvironment = temporal.NewSearchAttributeKeyKeyword("KoerierEnvironment")
	SAMessageType = temporal.NewSearchAttributeKeyKeyword("KoerierMessageType")
	SAStatus      = temporal.NewSearchAttributeKeyKeyword("KoerierStatus")
	SADeclaration = temporal.NewSearchAttributeKeyKeyword("KoerierDeclaration")
	SAVersion     = temporal.NewSearchAttributeKeyInt64("KoerierVersion")
	SAKenmerk     = temporal.NewSearchAttributeKeyKeyword("KoerierKenmerk")
)

// SearchAttributeTypes lists the attributes with their Temporal type names, for
// `temporal server start-dev --search-attribute` and for the worker's registration.
func SearchAttributeTypes() map[string]string {
	return map[string]string{
		SAEnvironment.GetName(): "Keyword",
		SAMessageType.GetName(): "Keyword",
		SAStatus.GetName():      "Keyword",
		SADeclaration.GetName(): "Keyword",
		SAVersion.GetName():     "Int",
		SAKenmerk.GetName():     "Keyword",
	}
}
