package workflows

import (
	"go.temporal.io/sdk/workflow"

	"koerier/pipeline"
)

// BankSendReceiveWorkflow is one environment's bank send/receive (rule 23 in
// docs/rules.md): it tells the environment's due payment orders to upload, then fetches
// the bank's status reports. It runs on the environment's own schedule (BankScheduleID)
// or on demand, one at a time per environment (BankRunID), and needs no send/receive
// lock: it touches only that environment's bank folders.
func BankSendReceiveWorkflow(ctx workflow.Context, in pipeline.BankSendReceiveInput) (pipeline.BankSendReceiveResult, error) {
	var res pipeline.BankSendReceiveResult
	if err := workflow.ExecuteActivity(storeOptions(ctx), a.DispatchBank, in.Environment).Get(ctx, &res.Dispatched); err != nil {
		return res, err
	}
	err := workflow.ExecuteActivity(channelOptions(ctx), a.ReceiveBank, in.Environment).Get(ctx, &res.BankReceiveResult)
	return res, err
}
