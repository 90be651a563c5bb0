package pipeline

import (
	"time"

	"koerier/domain"
)

// DeclarationInput starts (or restarts) the workflow of one message. Everything else
// is read from Postgres, which is the record of truth: a workflow that was cancelled,
// terminated or lost is simply started again and continues where the message stands.
type DeclarationInput struct {
	Number int64
	// NoReplyTimeout is how long a sent message may wait for a final reply before it
	// is marked needs-action with an F line; 0 means DefaultNoReplyTimeout.
	NoReplyTimeout time.Duration
	// DeliveryDeadline is how long a due message may keep failing to be delivered
	// before it is marked needs-action; 0 means DefaultDeliveryDeadline.
	DeliveryDeadline time.Duration
	// Retry carries the back-off of rounds that did not deliver across
	// continue-as-new; a new workflow starts with none.
	Retry RetryState
	// WebhookRetryInitial is the first wait after a webhook post the receiver did not
	// take; 0 means DefaultWebhookRetryInitial.
	WebhookRetryInitial time.Duration
	// BounceWindow is how long a sent e-invoice waits for a bounce before it is
	// delivered; 0 means DefaultBounceWindow.
	BounceWindow time.Duration `json:",omitempty"`
}

// CompactChanges are the changes of the declaration workflow that were guarded by
// workflow.GetVersion before the compact shape (CompactDeclarationWorkflowType): a
// compact workflow has them all without a marker event each. A change made after it is
// guarded in both shapes.
var CompactChanges = []string{"webhooks", "restore-before-process", "restore-do-not-send", "process-gone-environment",
	"history-bytes-limit"}

// RetryState is where a message's failing delivery rounds stand.
type RetryState struct {
	// Failures counts consecutive rounds that did not deliver; the next auto-send round
	// waits until At (one that send/receive or an operator asks for does not).
	Failures    int
	LastFailure string
	At          time.Time
	// FailingSince is when the first of them ended, for the delivery deadline.
	FailingSince time.Time
	DeadlineDone bool
}

// DefaultDeliveryDeadline: a return that could not be delivered for a day needs a
// person, because its filing deadline may pass.
const DefaultDeliveryDeadline = 24 * time.Hour

// Back-off between delivery rounds that failed for now (or waited for another
// version): doubling from RetryBackoffFirst up to RetryBackoffMax, so that an
// overloaded Digipoort is not hammered and a long outage costs a round an hour.
const (
	RetryBackoffFirst = time.Minute
	RetryBackoffMax   = time.Hour
)

// RetryBackoff is the wait after the n-th consecutive failed delivery round (n ≥ 1).
func RetryBackoff(n int) time.Duration {
	d := RetryBackoffFirst
	for i := 1; i < n && d < RetryBackoffMax; i++ {
		d *= 2
	}
	return min(d, RetryBackoffMax)
}

// DefaultNoReplyTimeout covers Digipoort's own retries of a technical delivery problem
// (420, up to 72 hours) with a day to spare.
const DefaultNoReplyTimeout = 96 * time.Hour

// SendSignal tells a declaration to deliver now.
type SendSignal struct {
	// By names who asked: a send/receive run's id, or an operator.
	By string
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

// OperatorSignal is the payload of send-now, restore-status and process: who asked.
type OperatorSignal struct {
	By string
}

// Outcomes of a delivery.
const (
	OutcomeSent       = "sent"
	OutcomeSendFailed = "send_failed"
	OutcomeRefused    = "refused"
	// OutcomeWaiting: not delivered yet because another version of the declaration
	// has a delivery whose outcome is not known; the message stays due.
	OutcomeWaiting = "waiting"
	// OutcomeUncertain: an earlier try may have reached Digipoort and the look-up
	// could not tell which process (if any) it is. Nothing is delivered again until an
	// operator decides (SignalResolveDelivery); the message needs action.
	OutcomeUncertain = "uncertain"
)

// ResolveDeliverySignal is an operator's decision about a delivery whose outcome is
// not known: adopt Digipoort's process Adopt as this delivery, or (DeliverAgain)
// declare that it did not arrive and deliver again. Exactly one of the two.
type ResolveDeliverySignal struct {
	Adopt        string
	DeliverAgain bool
	By           string
}

// DeliverResult says what became of a delivery.
type DeliverResult struct {
	Outcome string
	Kenmerk string
	Attempt int
	Reason  string
	// Recovered is set when the delivery was found at Digipoort after an interrupted
	// try, instead of being delivered again.
	Recovered bool
	// State is where the message stands afterwards, so that the workflow needs no
	// second activity to read it.
	State *Message
	// Processed is what processing did when the delivery also processed the message
	// (activities.DeliverAndProcess, an environment that processes by itself).
	Processed *ProcessResult `json:",omitempty"`
}

// FinishResult is what processing and reporting a final message in one call did
// (activities.ProcessAndReport).
type FinishResult struct {
	ProcessResult
	// Reported is the status the environment's report was written for.
	Reported domain.Status `json:"reported"`
}

// ProcessResult is what processing a message did to its environment's view.
type ProcessResult struct {
	Status  domain.Status `json:"status"`
	Changed bool          `json:"changed"`
	// AutoProcess reports the environment's profile, for callers that process on
	// their own when it says so.
	AutoProcess bool `json:"auto_process"`
	// WebhooksPending counts the message's webhook events not yet posted, after it was
	// processed: the report stage posts only when there are any.
	WebhooksPending int `json:"webhooks_pending,omitempty"`
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Attempt int  `json:"attempt"`
	Already bool `json:"already"`
	// Status is where the message stands after the restore: ready_to_resend, or queued
	// for a do-not-send message that was never sent (only its flag was cleared).
	Status domain.Status `json:"status,omitempty"`
	// DoNotSendCleared is set when the restore took the do-not-send flag off (rule 3).
	DoNotSendCleared bool `json:"do_not_send_cleared,omitempty"`
}
