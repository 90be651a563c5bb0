package pipeline

// BankSendReceiveWorkflowType runs one environment's bank send/receive (rule 23 in
// docs/rules.md): upload its due payment orders, fetch the bank's status reports. Its own
// schedule is BankScheduleID.
const BankSendReceiveWorkflowType = "BankSendReceiveWorkflow"

// BankScheduleID is the schedule of an environment's bank send/receive, as the Web UI's
// Schedules tab shows it.
func BankScheduleID(env string) string { return "koerier-bank-" + env }

// BankRunID is the workflow id of an environment's bank send/receive: one at a time.
func BankRunID(env string) string { return "bank-send-receive-" + env }

// BankSendReceiveInput starts an environment's bank send/receive.
type BankSendReceiveInput struct {
	Environment string
	Trigger     string
}

// BankReceiveResult is what one fetch of the bank's reports did.
type BankReceiveResult struct {
	Environment string `json:"environment"`
	// Reports fetched; Linked to a payment order; Unknown kept as unknown replies;
	// Seen were stored before (fetched again after a crash before they were moved).
	Reports int     `json:"reports"`
	Linked  int     `json:"linked"`
	Unknown int     `json:"unknown"`
	Seen    int     `json:"seen"`
	Moved   int     `json:"moved"`
	More    bool    `json:"more,omitempty"`
	Numbers []int64 `json:"-"`
}

// BankSendReceiveResult is what an environment's bank send/receive did.
type BankSendReceiveResult struct {
	Dispatched int `json:"dispatched"`
	BankReceiveResult
}
