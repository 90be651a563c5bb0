package store_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

// The worker's backlog gauges: each count sees exactly the messages and webhook events
// it names, and the statement reads only the partial indexes of what it counts (a
// scrape every few seconds must not read every message ever queued).
func TestMetricCountsCountTheBacklogByItsIndexes(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.webhook("acme")
	due := f.queue("acme", domain.TypeVAT, "1", "2026-01")
	f.queue("acme", domain.TypeVAT, "2", "2026-01")
	inFlight := f.queue("acme", domain.TypeVAT, "3", "2026-01")
	f.deliver(inFlight.Number, "K-flight")
	accepted := f.queue("acme", domain.TypeVAT, "4", "2026-01")
	f.deliver(accepted.Number, "K-done")
	if _, err := f.ApplyReplies(ctx, flow("K-done", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	f.process(accepted.Number) // one webhook event, pending
	if err := f.MarkNeedsAction(ctx, due.Number, "look at it", "test/needs-action"); err != nil {
		t.Fatal(err)
	}
	f.storeONB(store.IncomingDoc{PickupKenmerk: "K-stray", Berichtkenmerk: store.StatusBerichtkenmerk("500", time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)),
		Subject: "NL000000009B01", Note: "status 500 for kenmerk K-stray"})

	got, err := f.MetricCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Due: the two queued (needing action does not stop a message being due). In flight:
	// the delivered one; the accepted one is final. Needs action: the flagged one and the
	// open ONB.
	want := store.MetricCounts{Due: 2, InFlight: 1, NeedsAction: 2, OpenONB: 1, WebhooksPending: 1}
	if got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}

	evs, _ := f.pending(accepted.Number)
	if len(evs) != 1 {
		t.Fatalf("pending events: %d", len(evs))
	}
	if err := f.MarkWebhookFailed(ctx, evs[0].ID, "the receiver kept refusing"); err != nil {
		t.Fatal(err)
	}
	if got, err = f.MetricCounts(ctx); err != nil || got.WebhooksPending != 0 || got.WebhooksFailed != 1 {
		t.Fatalf("after the event failed: %+v %v; want 0 pending, 1 failed", got, err)
	}

	plan := f.explainer()(store.MetricCountsQuery)
	allowed := []string{"messages_due", "messages_in_flight", "messages_needs_action", "messages_onb_sweep", "webhook_events_pending",
		"webhook_events_failed"}
	if strings.Contains(plan, "Seq Scan") {
		t.Fatalf("the backlog count reads a whole table:\n%s", plan)
	}
	used := regexp.MustCompile(`(?:Scan using|Bitmap Index Scan on) (\w+)`).FindAllStringSubmatch(plan, -1)
	var names []string
	for _, u := range used {
		if !slices.Contains(allowed, u[1]) {
			t.Errorf("the count reads index %s, which holds more than the rows it counts:\n%s", u[1], plan)
		}
		names = append(names, u[1])
	}
	for _, ix := range allowed {
		if !slices.Contains(names, ix) {
			t.Errorf("the count does not use %s:\n%s", ix, plan)
		}
	}
}
