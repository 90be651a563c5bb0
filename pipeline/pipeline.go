// Package pipeline is the contract between Koerier's workflows, activities, worker and
// command line: workflow ids and types, signal and query names, their payloads, and
// the search attributes operators query in the Web UI.
package pipeline

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"koerier/domain"
)

// DefaultTaskQueue is where the worker listens.
const DefaultTaskQueue = "koerier"

// Workflow type names, as registered by the worker.
const (
	DeclarationWorkflowType = "DeclarationWorkflow"
	SendReceiveWorkflowType = "SendReceiveWorkflow"
	CleanupWorkflowType     = "CleanupWorkflow"
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

// DeclarationInput starts (or restarts) the workflow of one message. Everything else
// is read from Postgres, which is the record of truth: a workflow that was cancelled,
// terminated or lost is simply started again and continues where the message stands.
type DeclarationInput struct {
	Number int64
	// NoReplyTimeout is how long a sent message may wait for a final reply before it
	// is marked needs-action with an F line; 0 means DefaultNoReplyTimeout.
	NoReplyTimeout time.Duration
}

// DefaultNoReplyTimeout covers Digipoort's own retries of a technical delivery problem
// (420, up to 72 hours) with a day to spare.
const DefaultNoReplyTimeout = 96 * time.Hour

// SendSignal tells a declaration to deliver now.
type SendSignal struct {
	// By names who asked: a send/receive run's id, or an operator.
	By string
}

// Reply is one Digipoort status as a declaration's history shows it.
type Reply struct {
	EventID     int64         `json:"event_id"`
	Kenmerk     string        `json:"kenmerk"`
	Code        string        `json:"code"`
	Status      domain.Status `json:"status"`
	Time        time.Time     `json:"time"`
	Description string        `json:"description"`
	ErrorCode   string        `json:"error_code,omitempty"`
	Applied     bool          `json:"applied"`
}

// RepliesSignal carries a batch of new replies of one message, and the message's
// status after they were applied in Postgres (where "highest wins" is decided).
type RepliesSignal struct {
	Replies []Reply
	Status  domain.Status
	// Attempt is the message's delivery attempt when the signal was sent: a status
	// from before a restore must not overrule the restore.
	Attempt     int
	NeedsAction bool
}

// AssignSignal asks to move a message whose environment no longer exists to another
// environment, or (Resolve) to let the service close it without one.
type AssignSignal struct {
	Environment string
	Resolve     bool
	By          string
}

// OperatorSignal is the payload of restore-status and process: who asked.
type OperatorSignal struct {
	By string
}

// Stages of a declaration.
const (
	StageQueued            = "queued"
	StageSending           = "sending"
	StageAwaitingReplies   = "awaiting replies"
	StageProcessing        = "waiting for process"
	StageWaitingForRestore = "waiting for restore"
	StageDone              = "done"
)

// State is what the `state` query returns.
type State struct {
	Number         int64         `json:"number"`
	Stage          string        `json:"stage"`
	Status         domain.Status `json:"status"`
	EnvStatus      domain.Status `json:"environment_status"`
	Environment    string        `json:"environment"`
	Type           string        `json:"type"`
	Declaration    string        `json:"declaration"`
	Version        int           `json:"version"`
	LatestVersion  int           `json:"latest_version"`
	Attempt        int           `json:"attempt"`
	Kenmerk        string        `json:"kenmerk"`
	Replies        []Reply       `json:"replies"`
	DoNotSend      bool          `json:"do_not_send"`
	NeedsAction    bool          `json:"needs_action"`
	NeedsActionWhy string        `json:"needs_action_reason,omitempty"`
	LastMessage    string        `json:"last_message,omitempty"`
}

// MaxRepliesInState bounds the replies the query returns; Postgres keeps them all.
const MaxRepliesInState = 50

// Summary is the one line the Web UI shows for a declaration.
func Summary(typ, subject, period string, version int, environment string) string {
	return fmt.Sprintf("%s %s %s v%d · %s", typ, subject, period, version, environment)
}

// DeclarationAttributes are the search attributes of a declaration.
func DeclarationAttributes(environment, typ, declaration string, version int, status domain.Status, kenmerk string) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		SAEnvironment.ValueSet(environment),
		SAMessageType.ValueSet(typ),
		SADeclaration.ValueSet(declaration),
		SAVersion.ValueSet(int64(version)),
		SAStatus.ValueSet(string(status)),
		SAKenmerk.ValueSet(kenmerk),
	}
}

// AttributesKey is a comparable summary of a declaration's search attributes, so
// that a workflow upserts them only when they change (each upsert is a history event
// and a visibility write).
func AttributesKey(environment, typ, declaration string, version int, status domain.Status, kenmerk string) string {
	return fmt.Sprint(environment, "|", typ, "|", declaration, "|", version, "|", status, "|", kenmerk)
}

// CurrentAttributesKey is AttributesKey of the attributes a workflow has now (those it
// was started with, or last upserted).
func CurrentAttributesKey(sa temporal.SearchAttributes) string {
	env, _ := sa.GetKeyword(SAEnvironment)
	typ, _ := sa.GetKeyword(SAMessageType)
	decl, _ := sa.GetKeyword(SADeclaration)
	version, _ := sa.GetInt64(SAVersion)
	status, _ := sa.GetKeyword(SAStatus)
	kenmerk, _ := sa.GetKeyword(SAKenmerk)
	return AttributesKey(env, typ, decl, int(version), domain.Status(status), kenmerk)
}
