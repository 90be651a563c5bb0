package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

// After a restore, replies of the failed attempt are kept but can no longer move the
// message; the new attempt's replies do.
func TestRestoreMakesOldAttemptRepliesStale(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-first")
	if _, err := f.ApplyReplies(ctx, flow("K-first", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Restore(ctx, q.Number, "op"); err != nil {
		t.Fatal(err)
	}
	again, err := f.Restore(ctx, q.Number, "op")
	if err != nil || !again.Already || again.Attempt != 2 {
		t.Fatalf("a second restore must be a no-op: %+v %v", again, err)
	}
	late := []store.Reply{store.ReplyFromCode("K-first", "510", t0.Add(time.Hour))}
	res, err := f.ApplyReplies(ctx, late)
	if err != nil || len(res.New) != 1 || res.New[0].Applied || len(res.Raised) != 0 {
		t.Fatalf("late reply of the old attempt: %+v %v", res, err)
	}
	if s := f.status(q.Number); s != domain.StatusReadyToResend {
		t.Fatalf("a stale reply moved the message to %s", s)
	}
	plan, _ := f.BeginDelivery(ctx, q.Number)
	if plan.Attempt != 2 || plan.Aanleverkenmerk != domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, q.Number, 2) {
		t.Fatalf("resend: %+v", plan)
	}
	if err := f.RecordDelivered(ctx, q.Number, 2, "K-second", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ApplyReplies(ctx, flow("K-second", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	if s := f.status(q.Number); s != domain.StatusAccepted {
		t.Fatalf("after resend: %s", s)
	}
	if _, err := f.Restore(ctx, q.Number, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "only a message that failed") {
		t.Errorf("restore of an accepted message: %v", err)
	}
}
