package activities_test

import (
	"testing"
	"time"

	"koerier/domain"
	"koerier/pipeline"
)

func TestCleanupPageRefusesARetentionBelowTheFloor(t *testing.T) {
	h := newHarness(t)
	n := h.queue("1").Number

	_, err := run[pipeline.CleanupResult](h, h.acts.CleanupPage, pipeline.CleanupRequest{Retention: 29 * 24 * time.Hour})
	requireFinal(t, err, pipeline.ErrTypeInvalid, "30 days")
	h.requireMessage(n, domain.StatusQueued, false, "")

	// At the floor the request is valid; a young message is refused as a result, not
	// an error, and stays.
	res, err := run[pipeline.CleanupResult](h, h.acts.CleanupPage, pipeline.CleanupRequest{Numbers: []int64{n}, Retention: domain.MinRetention})
	if err != nil || len(res.Removed) != 0 || len(res.Refused) != 1 || res.Refused[0].Number != n {
		t.Fatalf("clean-up at the floor: %+v %v", res, err)
	}
	h.requireMessage(n, domain.StatusQueued, false, "")
}
