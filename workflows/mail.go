package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"koerier/pipeline"
)

// MailSendReceiveWorkflow is one environment's e-mail send/receive (rule 12 in
// docs/rules.md): it tells the environment's due e-invoices to send, then reads the
// environment's mailbox. It runs on the environment's own schedule (MailScheduleID) or
// on demand, one at a time per environment (MailRunID), and needs no send/receive lock:
// it touches only that environment's mail, which no other run reads.
func MailSendReceiveWorkflow(ctx workflow.Context, in pipeline.MailSendReceiveInput) (pipeline.MailSendReceiveResult, error) {
	var res pipeline.MailSendReceiveResult
	if err := workflow.ExecuteActivity(storeOptions(ctx), a.DispatchMail, in.Environment).Get(ctx, &res.Dispatched); err != nil {
		return res, err
	}
	err := workflow.ExecuteActivity(channelOptions(ctx), a.ReceiveMail, in.Environment).Get(ctx, &res.MailReceiveResult)
	return res, err
}

// channelOptions fit a read of an environment's mailbox or bank folder: a few tries
// within minutes for a server that is briefly away (the next scheduled run comes soon
// anyway); a refused login is final and not retried, so a wrong password does not lock
// the account.
func channelOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        4,
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}
