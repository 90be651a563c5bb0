package pipeline

import "time"

// DefaultBounceWindow is how long an e-invoice waits for a bounce after the receiving
// mail server took it (SMTP 250): most bounces come within minutes, a queued one within
// the five days mail servers retry; three days is when an environment wants to know.
// KOERIER_MAIL_BOUNCE_WINDOW changes it. A bounce that comes later still wins (rule 4).
const DefaultBounceWindow = 72 * time.Hour

// MailSendReceiveWorkflowType runs one environment's e-mail send/receive (rule 12): its
// own schedule, MailScheduleID.
const MailSendReceiveWorkflowType = "MailSendReceiveWorkflow"

// MailScheduleID is the schedule of an environment's e-mail send/receive, as the Web
// UI's Schedules tab shows it.
func MailScheduleID(env string) string { return "koerier-mail-" + env }

// MailRunID is the workflow id of an environment's e-mail send/receive: one at a time.
func MailRunID(env string) string { return "mail-send-receive-" + env }

// MailSendReceiveInput starts an environment's e-mail send/receive.
type MailSendReceiveInput struct {
	Environment string
	Trigger     string
}

// MailReceiveResult is what one read of the mailbox did.
type MailReceiveResult struct {
	Environment string `json:"environment"`
	Read        int    `json:"read"`
	Invoices    int    `json:"invoices"`
	Duplicates  int    `json:"duplicates"`
	Replies     int    `json:"replies"`
	Unknown     int    `json:"unknown"`
	Moved       int    `json:"moved"`
	// More is set when the folder held more than one read takes.
	More           bool    `json:"more,omitempty"`
	UnknownNumbers []int64 `json:"unknown_numbers,omitempty"`
}

// MailSendReceiveResult is what an environment's e-mail send/receive did.
type MailSendReceiveResult struct {
	Dispatched int `json:"dispatched"`
	MailReceiveResult
}

// MailDeliveredRequest closes an e-invoice without bounce (activities.MailDelivered).
type MailDeliveredRequest struct {
	Number  int64
	Kenmerk string
	At      time.Time
	Window  time.Duration
}
