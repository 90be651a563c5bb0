package domain

import (
	"fmt"
	"slices"
	"sort"
)

// Status is where an outgoing message stands. The string is what the database stores
// and what environments and operators read.
type Status string

const (
	StatusQueued           Status = "queued"            // klaargezet
	StatusReadyToResend    Status = "ready_to_resend"   // gereed voor verzenden na fout
	StatusSendFailed       Status = "send_failed"       // verzenden mislukt: Digipoort refused the delivery
	StatusSent             Status = "sent"              // verzonden: Digipoort gave a kenmerk
	StatusReceiptConfirmed Status = "receipt_confirmed" // ontvangst bevestigd (100)
	StatusInProgress       Status = "in_progress"       // in behandeling bij Digipoort of de instantie
	StatusAccepted         Status = "accepted"          // geaccepteerd door de instantie (500)
	StatusRejected         Status = "rejected"          // afgekeurd door de instantie (311, 510)
	StatusFailed           Status = "failed"            // het proces is mislukt (210, 410, …)
	// StatusReceived is the status of an incoming message (a reply document or an
	// unknown reply); it stands outside the outgoing order.
	StatusReceived Status = "received"
)

// order is the explicit order of outgoing statuses. Digipoort's codes are not monotonic
// (105 comes before 100), so a reply may only ever move a message up this list: an
// accepted declaration never goes back to "sent". Final errors rank above acceptance
// because an authority that rejects after validating must never be hidden.
var order = []Status{
	StatusQueued,
	StatusReadyToResend,
	StatusSendFailed,
	StatusSent,
	StatusReceiptConfirmed,
	StatusInProgress,
	StatusAccepted,
	StatusRejected,
	StatusFailed,
}

var rank = func() map[Status]int {
	m := make(map[Status]int, len(order)+1)
	for i, s := range order {
		m[s] = i + 1
	}
	m[StatusReceived] = 0
	return m
}()

// OutgoingStatuses returns the outgoing statuses in their order, lowest first.
func OutgoingStatuses() []Status { return append([]Status(nil), order...) }

// AllStatuses returns every status, incoming included.
func AllStatuses() []Status { return append(OutgoingStatuses(), StatusReceived) }

// Rank is the position of s in the order; higher wins. Unknown statuses rank -1.
func (s Status) Rank() int {
	r, ok := rank[s]
	if !ok {
		return -1
	}
	return r
}

// Valid reports whether s is a status Koerier knows.
func (s Status) Valid() bool { _, ok := rank[s]; return ok }

// ParseStatus turns text into a Status, refusing what Koerier does not know.
func ParseStatus(text string) (Status, error) {
	s := Status(text)
	if !s.Valid() {
		known := make([]string, 0, len(rank))
		for st := range rank {
			known = append(known, string(st))
		}
		sort.Strings(known)
		return "", fmt.Errorf("unknown status %q (known: %v)", text, known)
	}
	return s, nil
}

// Higher reports whether next would raise a message that stands at current.
func Higher(next, current Status) bool { return next.Rank() > current.Rank() }

// Highest returns the highest of the statuses; the zero Status when there are none.
func Highest(statuses ...Status) Status {
	var best Status
	for _, s := range statuses {
		if best == "" || Higher(s, best) {
			best = s
		}
	}
	return best
}

// FinalStatuses are the statuses after which no further reply is expected for the
// current delivery: the outcome that is reported to the environment.
func FinalStatuses() []Status {
	return []Status{StatusSendFailed, StatusAccepted, StatusRejected, StatusFailed}
}

// IsFinal reports whether no further reply is expected for the current delivery.
func (s Status) IsFinal() bool { return slices.Contains(FinalStatuses(), s) }

// IsFailure reports whether the message ended badly and waits for an operator to
// restore it.
func (s Status) IsFailure() bool {
	switch s {
	case StatusSendFailed, StatusRejected, StatusFailed:
		return true
	}
	return false
}

// The named sets below are the statuses the pipeline selects on. The store passes
// them to SQL (the partial indexes messages_due and messages_in_flight in schema/
// carry the same lists; schema's tests check they agree).

// DueStatuses are the statuses in which send/receive delivers a message.
func DueStatuses() []Status { return []Status{StatusQueued, StatusReadyToResend} }

// InFlightStatuses are the statuses of a delivered message that waits for a final
// reply: send/receive asks Digipoort for their statuses.
func InFlightStatuses() []Status {
	return []Status{StatusSent, StatusReceiptConfirmed, StatusInProgress}
}

// UnsentStatuses are the statuses of a message that has not (successfully) reached
// Digipoort; queueing a newer version of its declaration makes it do-not-send (rule 3:
// store.Queue decides that in SQL, under the declaration's lock).
func UnsentStatuses() []Status { return []Status{StatusQueued, StatusReadyToResend, StatusSendFailed} }

// FiledStatuses are the statuses of a version that reached the authority and was not
// refused: it is (or may yet become) the return on file. When clean-up removes such a
// version, an older version it replaced may never be made due again (rule 3: "A version
// that was replaced stays replaced" in docs/rules.md), because its older content would
// be filed over the newer return, and once the newer one is deleted nothing here shows it.
func FiledStatuses() []Status {
	return []Status{StatusSent, StatusReceiptConfirmed, StatusInProgress, StatusAccepted}
}

// IsUnsent reports whether the message has not (successfully) reached Digipoort.
func (s Status) IsUnsent() bool { return slices.Contains(UnsentStatuses(), s) }

// IsDue reports whether send/receive should deliver a message in this status.
func (s Status) IsDue() bool { return slices.Contains(DueStatuses(), s) }

// IsInFlight reports whether the message was delivered and waits for a final reply.
func (s Status) IsInFlight() bool { return slices.Contains(InFlightStatuses(), s) }

// Label is the Dutch word users know the status by.
func (s Status) Label() string {
	switch s {
	case StatusQueued:
		return "klaargezet"
	case StatusReadyToResend:
		return "gereed voor verzenden na fout"
	case StatusSendFailed:
		return "verzenden mislukt"
	case StatusSent:
		return "verzonden"
	case StatusReceiptConfirmed:
		return "ontvangst bevestigd"
	case StatusInProgress:
		return "in behandeling"
	case StatusAccepted:
		return "geaccepteerd"
	case StatusRejected:
		return "afgekeurd"
	case StatusFailed:
		return "mislukt"
	case StatusReceived:
		return "ontvangen"
	}
	return string(s)
}

// HandledCorrectly is "handled correctly" in rule 9 (docs/rules.md): the message
// reached a final status and its environment saw and was told that status. Such a
// message is never moved to another environment.
func HandledCorrectly(status, envStatus Status, reported *Status) bool {
	return status.IsFinal() && envStatus == status && reported != nil && *reported == status
}
