package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"koerier/activities"
	"koerier/domain"
	"koerier/store"
)

// CleanupInput selects what a clean-up run removes.
type CleanupInput struct {
	// Numbers is an operator's selection (all or nothing); empty means everything
	// eligible under the retention.
	Numbers   []int64
	Mode      domain.CleanupMode
	Retention time.Duration
	DryRun    bool
	PageSize  int
	Who       string

	After  int64
	Result CleanupOutcome
}

// CleanupOutcome is what a clean-up run removed (or would remove).
type CleanupOutcome struct {
	DryRun      bool                   `json:"dry_run"`
	Removed     int                    `json:"removed"`
	Numbers     []int64                `json:"numbers"`
	Refused     []store.CleanupRefused `json:"refused"`
	Attachments int                    `json:"attachments"`
	Bytes       int64                  `json:"bytes"`
}

// maxListed bounds the numbers a run returns; Postgres' log holds them all.
const maxListed = 10000

// CleanupWorkflow removes old messages with their attachments (rule 8): a selection
// all or nothing, otherwise page by page, each page one transaction, so that nothing
// is half-removed after a crash. A dry run only reports.
func CleanupWorkflow(ctx workflow.Context, in CleanupInput) (CleanupOutcome, error) {
	if in.Retention == 0 {
		in.Retention = domain.MinRetention
	}
	in.Result.DryRun = in.DryRun
	for {
		var page store.CleanupResult
		req := activities.CleanupRequest{Numbers: in.Numbers, Mode: in.Mode, Retention: in.Retention, DryRun: in.DryRun, After: in.After, PageSize: in.PageSize, Who: in.Who}
		// A page deletes up to 500 messages with their attachments: give it time; it
		// heartbeats, so a lost worker is still noticed quickly.
		opts := workflow.GetActivityOptions(storeOptions(ctx))
		opts.StartToCloseTimeout = 10 * time.Minute
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.CleanupPage, req).Get(ctx, &page); err != nil {
			return in.Result, err
		}
		in.Result.Removed += len(page.Removed)
		for _, n := range page.Removed {
			if len(in.Result.Numbers) < maxListed {
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
