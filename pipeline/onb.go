package pipeline

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"koerier/domain"
)

// An unknown reply (ONB, rule 5 in docs/rules.md) has a small workflow of its own while
// it is open, so that operators find it in the Web UI with the list filter
// KoerierStatus="unknown" and link or resolve it there by signal. It reuses the
// declarations' search attributes: KoerierStatus is a Keyword, and "unknown" is no
// message status (an ONB's row has status received), so it cannot be confused with one;
// KoerierMessageType is "onb" and KoerierKenmerk the kenmerk it named. Linked or
// resolved, the workflow sets KoerierStatus to "linked" or "resolved" and ends.
const (
	ONBStatusUnknown  = "unknown"
	ONBStatusLinked   = "linked"
	ONBStatusResolved = "resolved"
)

// UnknownReplyID is the workflow id of an unknown reply: readable in the Web UI.
func UnknownReplyID(number int64) string { return fmt.Sprintf("onb-%d", number) }

// UnknownReplyInput starts an unknown reply's workflow.
type UnknownReplyInput struct {
	Number       int64
	Kenmerk      string
	Berichtsoort string
	Subject      string
}

// LinkONBSignal asks to make the unknown reply a reply of Message.
type LinkONBSignal struct {
	Message int64
	Memo    string
	By      string
}

// ResolveONBSignal asks to close the unknown reply without a message; Memo says why.
type ResolveONBSignal struct {
	Memo string
	By   string
}

// ONBRequest is the HandleONB activity's input: Message > 0 links, otherwise resolves.
type ONBRequest struct {
	Number  int64
	Message int64
	Memo    string
	By      string
}

// ONBOutcome says how an unknown reply ended, or (Open) that it has not.
type ONBOutcome struct {
	Number int64
	Open   bool
	// Message is the message it was linked to; 0 when resolved (or open).
	Message int64
	// Code is the status a linked stand-in applied; Status the message's status then.
	Code   string        `json:",omitempty"`
	Status domain.Status `json:",omitempty"`
}

// ONBState is what an unknown reply's workflow shows (QueryState).
type ONBState struct {
	Number       int64
	Kenmerk      string
	Berichtsoort string
	Subject      string
	Status       string
	// Last is what the last operator signal did, a refusal included.
	Last string
}

// UnknownReplyOptions start an unknown reply's workflow: findable by its search
// attributes from the first moment. A closed run with the same id may be started
// again: the workflow asks Postgres first and ends at once when the reply is handled.
func (s Starter) UnknownReplyOptions(in UnknownReplyInput) client.StartWorkflowOptions {
	queue := s.TaskQueue
	if queue == "" {
		queue = DefaultTaskQueue
	}
	summary := fmt.Sprintf("unknown reply %d: kenmerk %s", in.Number, in.Kenmerk)
	if in.Subject != "" {
		summary += ", belanghebbende " + in.Subject
	}
	return client.StartWorkflowOptions{
		ID:                    UnknownReplyID(in.Number),
		TaskQueue:             queue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         summary,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SAStatus.ValueSet(ONBStatusUnknown),
			SAMessageType.ValueSet(string(domain.TypeUnknownONB)),
			SAKenmerk.ValueSet(in.Kenmerk),
		),
	}
}

// StartUnknownReply starts an unknown reply's workflow, or leaves the running one be
// (the client returns the running workflow rather than an error).
func (s Starter) StartUnknownReply(ctx context.Context, in UnknownReplyInput) error {
	if _, err := s.Client.ExecuteWorkflow(ctx, s.UnknownReplyOptions(in), UnknownReplyWorkflowType, in); err != nil {
		return fmt.Errorf("start the workflow of unknown reply %d: %w", in.Number, err)
	}
	return nil
}

// SignalUnknownReply signals an unknown reply's workflow, starting it where it has none.
func (s Starter) SignalUnknownReply(ctx context.Context, in UnknownReplyInput, signal string, arg any) error {
	opts := s.UnknownReplyOptions(in)
	if _, err := s.Client.SignalWithStartWorkflow(ctx, opts.ID, signal, arg, opts, UnknownReplyWorkflowType, in); err != nil {
		return fmt.Errorf("signal %s to unknown reply %d: %w", signal, in.Number, err)
	}
	return nil
}
