package pipeline

import (
	"fmt"
	"time"
)

// Defaults of a send/receive run, used when its input leaves them zero (the worker's
// configuration sets them from KOERIER_PAGE_SIZE and KOERIER_SEND_WAIT).
const (
	// DefaultPageSize is how many messages one send/receive activity handles: large
	// enough to amortise a round trip, small enough that a retried page redoes little.
	DefaultPageSize = 200
	// DefaultSendWait bounds how long a run waits for its deliveries; what is still
	// being delivered then goes on by itself and is counted as still sending.
	DefaultSendWait = 10 * time.Minute
)

// SendReceiveInput starts a send/receive run; the fields after SendWait carry a run
// across continue-as-new.
type SendReceiveInput struct {
	// Trigger says who started the run: "schedule", or "manual (<who>)".
	Trigger string
	// PageSize is how many messages one activity handles; 0 means DefaultPageSize.
	PageSize int
	// SendWait bounds how long the run waits for its deliveries; 0 means
	// DefaultSendWait.
	SendWait time.Duration

	Holder     string
	Phase      string
	After      int64
	Dispatched []int64
	SendSince  time.Time
	AwaitUntil time.Time
	Counts     SendReceiveCounts
	// PickedUp: the pickup beside the status pages is done (a run that continues as
	// new waits for it and carries this along, not to start another beside the pages
	// left; the last pickup after them runs either way).
	PickedUp bool
}

// Lock is the send/receive lock a run holds (the AcquireLock and RenewLock result).
type Lock struct {
	Name       string    `json:"name"`
	Holder     string    `json:"holder"`
	AcquiredAt time.Time `json:"acquired_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Phases of a send/receive run, in order.
const (
	PhaseSend    = "send"
	PhaseAwait   = "await"
	PhaseReceive = "receive"
	PhasePickup  = "pickup"
)

// SendReceiveCounts is what a run did; `starter send-receive --json` prints it.
type SendReceiveCounts struct {
	Dispatched    int  `json:"dispatched"`
	Sent          int  `json:"sent"`
	Failed        int  `json:"failed"`
	DeliveryError int  `json:"delivery_errors"`
	Refused       int  `json:"refused"`
	StillSending  int  `json:"still_sending"`
	InFlight      int  `json:"in_flight"`
	Replies       int  `json:"replies"`
	Documents     int  `json:"documents"`
	ONB           int  `json:"onb"`
	ReceiveErrors int  `json:"receive_errors"`
	Continued     int  `json:"continued_as_new"`
	Complete      bool `json:"complete"`
}

// String is the counts as one line, for the run's log line and the command line.
func (c SendReceiveCounts) String() string {
	return fmt.Sprintf("sent %d, send failed %d, delivery errors %d, still sending %d, statuses %d for %d deliveries, "+
		"reply documents %d, unknown replies %d, receive errors %d",
		c.Sent, c.Failed, c.DeliveryError, c.StillSending, c.Replies, c.InFlight, c.Documents, c.ONB, c.ReceiveErrors)
}

// LostLock says why a send/receive run stopped when another run had taken its lock.
const LostLock = "send/receive lost its lock (the worker was away for more than 30 minutes and another run took over)"

// DispatchRequest asks for one page of due messages to be told to send.
type DispatchRequest struct {
	After int64
	Limit int
	// By is who asked the workflows to send, for their log; the same text as Holder in
	// today's runs, but Holder is empty in runs from before pages renewed the lock.
	By string
	// Holder, when set, is the run's lock holder: the activity renews the send/receive
	// lock before its page, and a run that lost the lock stops (runs from before
	// pages renewed it leave it empty and renew it themselves).
	Holder string
}

// DispatchResult lists the messages told to send.
type DispatchResult struct {
	Numbers []int64
	Next    int64
	More    bool
}

// AwaitRequest waits for dispatched messages to be delivered or refused.
type AwaitRequest struct {
	Numbers []int64
	Since   time.Time
	Timeout time.Duration
	// Holder: as DispatchRequest.Holder.
	Holder string
}

// SendOutcome counts what became of messages dispatched for sending.
type SendOutcome struct {
	Sent    int     `json:"sent"`
	Failed  int     `json:"failed"`
	Errors  int     `json:"errors"`
	Refused int     `json:"refused"`
	Pending []int64 `json:"pending,omitempty"`
}

// ReceiveRequest asks for the statuses of one page of deliveries in flight.
type ReceiveRequest struct {
	After int64
	Limit int
	// Holder: as DispatchRequest.Holder.
	Holder string
}

// ReceiveResult counts what one page of receiving found.
type ReceiveResult struct {
	Next       int64
	More       bool
	Deliveries int
	Replies    int
	Duplicates int
	Unknown    int
	Errors     int
}

// PickupResult counts what a pickup round found.
type PickupResult struct {
	Listed     int
	Fetched    int
	Linked     int
	Unknown    int
	Duplicates int
	Errors     int
}
