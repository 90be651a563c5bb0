package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"koerier/domain"
	"koerier/pipeline"
)

// CleanupWorkflow removes old messages with their attachments (rule 8 in docs/rules.md): a selection
// all or nothing, otherwise page by page, each page one transaction, so that nothing
// is half-removed after a crash. A dry run only reports.
func CleanupWorkflow(ctx workflow.Context, in pipeline.CleanupInput) (pipeline.CleanupOutcome, error) {
	if in.Retention == 0 {
		in.Retention = domain.MinRetention
	}
	in.Result.DryRun = in.DryRun
	// One log line per run, kept up to date by each page: the workflow id names the
	// run and survives continue-as-new.
	if in.Run == "" {
		in.Run = workflow.GetInfo(ctx).WorkflowExecution.ID
	}
	// A page deletes up to 500 messages with their attachments: give it time; it
	// heartbeats, so a lost worker is still noticed quickly.
	opts := workflow.GetActivityOptions(storeOptions(ctx))
	opts.StartToCloseTimeout = 10 * time.Minute
	pageCtx := workflow.WithActivityOptions(ctx, opts)
	for {
		var page pipeline.CleanupResult
		if err := workflow.ExecuteActivity(pageCtx, a.CleanupPage, in.CleanupRequest).Get(ctx, &page); err != nil {
			return in.Result, err
		}
		in.Result.Removed += len(page.Removed)
		for _, n := range page.Removed {
			if len(in.Result.Numbers) < pipeline.MaxCleanupListed {
				in.Result.Numbers = append(in.Result.Numbers, n)
			}
		}
		if len(in.Numbers) == 0 || len(in.Result.Refused) == 0 {
			in.Result.Refused = append(in.Result.Refused, page.Refused...)
		}
		in.Result.Attachments += page.Attachments
		in.Result.Bytes += page.Bytes
		if len(in.Numbers) > 0 || !page.More {
			return in.Result, nil
		}
		in.After = page.Next
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > historyLimit {
			return in.Result, workflow.NewContinueAsNewError(ctx, CleanupWorkflow, in)
		}
	}
}
