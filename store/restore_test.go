package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/pipeline"
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

// Restore on a do-not-send message does what the page's "Herstellen berichtstatus" does
// for "uitgaand bericht niet versturen": it clears the flag and makes the message due,
// unless a newer version exists (refused, naming it; rule 3) or a delivery of it has no
// known outcome (rule 11).
func TestRestoreDoNotSend(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	dns := func(n int64) bool {
		t.Helper()
		m, err := f.Message(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return m.DoNotSend
	}

	// Never sent: version 2 replaced it.
	v1 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	v2 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	if !dns(v1.Number) {
		t.Fatal("queueing version 2 must mark version 1 do-not-send")
	}
	_, err := f.Restore(ctx, v1.Number, "op")
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), fmt.Sprintf("version 2 exists (message %d, queued) and replaced it", v2.Number)) {
		t.Fatalf("restore of a do-not-send version with a newer one must be refused naming it: %v", err)
	}
	if !dns(v1.Number) {
		t.Fatal("a refused restore cleared do-not-send")
	}
	// The newer version is gone (clean-up removed it): version 1 is the latest again.
	f.exec(`DELETE FROM messages WHERE number = $1`, v2.Number)
	res, err := f.Restore(ctx, v1.Number, "op")
	if err != nil || !res.DoNotSendCleared || res.Status != domain.StatusQueued || res.Attempt != 1 || res.Already {
		t.Fatalf("restore of a do-not-send message without a newer version: %+v %v", res, err)
	}
	if dns(v1.Number) || f.status(v1.Number) != domain.StatusQueued {
		t.Fatalf("after restore: do-not-send %v, status %s", dns(v1.Number), f.status(v1.Number))
	}
	if plan, err := f.BeginDelivery(ctx, v1.Number); err != nil || plan.Refused != "" || plan.Wait != "" || plan.Attempt != 1 {
		t.Fatalf("a restored do-not-send message must be delivered: %+v %v", plan, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND step = 'restore' AND description LIKE '%do-not-send cleared%'`,
		v1.Number); n != 1 {
		t.Fatalf("restore log lines: %d", n)
	}

	// Refused by Digipoort, then replaced: restored as any failed message, without the flag.
	f2 := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	plan, err := f.BeginDelivery(ctx, f2.Number)
	if err != nil || plan.Refused != "" {
		t.Fatal(plan, err)
	}
	if err := f.RecordSendFailed(ctx, f2.Number, plan.Attempt, "ALS100 invalid"); err != nil {
		t.Fatal(err)
	}
	newer := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	if !dns(f2.Number) {
		t.Fatal("a send_failed version must be marked do-not-send by a newer one")
	}
	if _, err := f.Restore(ctx, f2.Number, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("restore of a replaced send_failed version: %v", err)
	}
	f.exec(`DELETE FROM messages WHERE number = $1`, newer.Number)
	res, err = f.Restore(ctx, f2.Number, "op")
	if err != nil || !res.DoNotSendCleared || res.Status != domain.StatusReadyToResend || res.Attempt != 2 {
		t.Fatalf("restore of a failed do-not-send message: %+v %v", res, err)
	}
	if dns(f2.Number) || f.status(f2.Number) != domain.StatusReadyToResend {
		t.Fatalf("after restore: do-not-send %v, status %s", dns(f2.Number), f.status(f2.Number))
	}

	// Rule 11: a delivery with no known outcome may be at Digipoort; it is not made due.
	f3 := f.queue("acme", domain.TypeVAT, "3", "2026-10")
	if plan, err := f.BeginDelivery(ctx, f3.Number); err != nil || plan.Refused != "" {
		t.Fatal(plan, err)
	}
	newer = f.queue("acme", domain.TypeVAT, "3", "2026-10")
	f.exec(`DELETE FROM messages WHERE number = $1`, newer.Number)
	if _, err := f.Restore(ctx, f3.Number, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "no known outcome") {
		t.Fatalf("restore of a do-not-send message with an open delivery: %v", err)
	}
	if !dns(f3.Number) {
		t.Fatal("a do-not-send message with an open delivery lost its flag")
	}
}

// A restore retried after it cleared do-not-send (the activity retried, or `starter
// restore` run twice) is done already: no refusal, no second line.
func TestRestoreDoNotSendTwiceIsAlready(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	v1 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	v2 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.exec(`DELETE FROM messages WHERE number = $1`, v2.Number)
	if res, err := f.Restore(ctx, v1.Number, "op"); err != nil || !res.DoNotSendCleared || res.Already {
		t.Fatalf("first restore: %+v %v", res, err)
	}
	res, err := f.Restore(ctx, v1.Number, "op")
	if err != nil || !res.Already || res.Status != domain.StatusQueued || res.Attempt != 1 {
		t.Fatalf("second restore: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND step = 'restore'`, v1.Number); n != 1 {
		t.Errorf("restore lines: %d, want 1", n)
	}
	// Marked and cleared again in the same attempt: a second clear, with its own line.
	v3 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.exec(`DELETE FROM messages WHERE number = $1`, v3.Number)
	if res, err := f.Restore(ctx, v1.Number, "op"); err != nil || res.Already || !res.DoNotSendCleared {
		t.Fatalf("restore after marked again: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND step = 'restore'`, v1.Number); n != 2 {
		t.Errorf("restore lines: %d, want 2", n)
	}
	// A queued message that was never restored still cannot be.
	plain := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	if _, err := f.Restore(ctx, plain.Number, "op"); !errors.Is(err, store.ErrRefused) {
		t.Errorf("restore of a queued message: %v", err)
	}
}

// Rule 3, a replaced version stays replaced: once clean-up removed a newer version that
// reached the authority, restore refuses to make the older do-not-send version due (it
// would file old content over the return on file). A newer version removed before it
// reached the authority does not block the restore.
func TestRestoreRefusedOnceTheFiledNewerVersionIsCleanedUp(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	v1 := f.queue("acme", domain.TypeVAT, "1", "2026-03")
	v2 := f.queue("acme", domain.TypeVAT, "1", "2026-03")
	f.age(v2.Number, 400, domain.StatusAccepted)
	if res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{v2.Number}, Mode: domain.CleanupFiscal}); err != nil || len(res.Removed) != 1 {
		t.Fatalf("clean-up of the accepted version 2: %+v %v", res, err)
	}
	_, err := f.Restore(ctx, v1.Number, "op")
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "reached the authority before clean-up removed it") {
		t.Fatalf("restore of version 1 after its accepted version 2 was cleaned up: %v", err)
	}
	if m, err := f.Message(ctx, v1.Number); err != nil || !m.DoNotSend || m.Status != domain.StatusQueued {
		t.Fatalf("a refused restore changed version 1: %+v %v", m, err)
	}

	// Version 2 refused by Digipoort (send_failed) and cleaned up: it never stood at the
	// authority, so version 1 may still go.
	w1 := f.queue("acme", domain.TypeVAT, "1", "2026-04")
	w2 := f.queue("acme", domain.TypeVAT, "1", "2026-04")
	f.age(w2.Number, 400, domain.StatusSendFailed)
	if res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{w2.Number}}); err != nil || len(res.Removed) != 1 {
		t.Fatalf("clean-up of the refused version 2: %+v %v", res, err)
	}
	if res, err := f.Restore(ctx, w1.Number, "op"); err != nil || !res.DoNotSendCleared || res.Status != domain.StatusQueued {
		t.Fatalf("restore of version 1 after its refused version 2 was cleaned up: %+v %v", res, err)
	}
}
