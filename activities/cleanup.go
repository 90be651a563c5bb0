package activities

import (
	"context"

	"koerier/pipeline"
)

// CleanupPage removes one page of old messages, or an operator's whole selection, in
// one transaction: a crash leaves nothing half-removed. Refusals are results, not
// errors; a retention below 30 days is a final error.
func (a *Activities) CleanupPage(ctx context.Context, req pipeline.CleanupRequest) (pipeline.CleanupResult, error) {
	defer keepAlive(ctx)()
	res, err := a.Store.Cleanup(ctx, req)
	return res, final(err)
}
