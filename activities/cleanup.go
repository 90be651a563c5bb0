package activities

import (
	"context"
	"time"

	"koerier/domain"
	"koerier/store"
)

// CleanupRequest is one page (or one selection) of clean-up.
type CleanupRequest struct {
	Numbers   []int64
	Mode      domain.CleanupMode
	Retention time.Duration
	DryRun    bool
	After     int64
	PageSize  int
	Who       string
}

// CleanupPage removes one page of old messages, or an operator's whole selection, in
// one transaction: a crash leaves nothing half-removed. Refusals are results, not
// errors; a retention below 30 days is a final error.
func (a *Activities) CleanupPage(ctx context.Context, req CleanupRequest) (store.CleanupResult, error) {
	defer keepAlive(ctx)()
	res, err := a.Store.Cleanup(ctx, store.CleanupRequest{Numbers: req.Numbers, Mode: req.Mode, Retention: req.Retention,
		DryRun: req.DryRun, After: req.After, PageSize: req.PageSize, Who: req.Who})
	return res, final(err)
}
