package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

func (f *fixture) age(number int64, days int, status domain.Status) {
	f.t.Helper()
	f.exec(`UPDATE messages SET queued_at = now() - make_interval(days => $2), last_status_change = now() - make_interval(days => $2), status = $3
		WHERE number = $1`, number, days, string(status))
}

// Rule 8 (docs/rules.md): a selection goes whole or not at all, and every refusal says why.
func TestCleanupSelectionIsAllOrNothing(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	old := f.queue("acme", domain.TypeVAT, "1", "2026-01")
	young := f.queue("acme", domain.TypeVAT, "1", "2026-02")
	accepted := f.queue("acme", domain.TypeVAT, "1", "2026-03")
	f.age(old.Number, 40, domain.StatusSent)
	f.age(young.Number, 10, domain.StatusSent)
	f.age(accepted.Number, 40, domain.StatusAccepted)

	res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{old.Number, young.Number, accepted.Number, 42}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 0 || len(res.Refused) != 3 {
		t.Fatalf("selection with refusals: %+v", res)
	}
	reasons := map[int64]string{}
	for _, r := range res.Refused {
		reasons[r.Number] = r.Reason
	}
	if !strings.Contains(reasons[young.Number], "10 days ago") || !strings.Contains(reasons[accepted.Number], "accepted") ||
		!strings.Contains(reasons[42], "does not exist") {
		t.Errorf("reasons: %v", reasons)
	}
	if f.count(`SELECT count(*) FROM messages`) != 3 || f.count(`SELECT count(*) FROM attachments`) != 3 {
		t.Fatal("a refused selection removed something")
	}

	dry, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{old.Number}, DryRun: true})
	if err != nil || len(dry.Removed) != 1 || dry.Attachments != 1 || dry.Bytes == 0 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	if f.count(`SELECT count(*) FROM messages WHERE number = $1`, old.Number) != 1 {
		t.Fatal("a dry run removed the message")
	}
	done, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{old.Number}, Who: "test"})
	if err != nil || len(done.Removed) != 1 {
		t.Fatalf("clean-up: %+v %v", done, err)
	}
	if f.count(`SELECT count(*) FROM messages WHERE number = $1`, old.Number) != 0 ||
		f.count(`SELECT count(*) FROM attachments WHERE message_number = $1`, old.Number) != 0 {
		t.Fatal("message or attachments left behind")
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Step: domain.StepCleanup})
	if len(logs) != 1 || !strings.Contains(logs[0].Description, "removed 1 message") {
		t.Errorf("clean-up log: %+v", logs)
	}
}

func TestCleanupFiscalModeAndFloor(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	vat := f.queue("acme", domain.TypeVAT, "1", "2026-01")
	kvk := f.queue("acme", domain.TypeKvK, "12345678", "2025")
	young := f.queue("acme", domain.TypeVAT, "1", "2026-02")
	f.age(vat.Number, 400, domain.StatusAccepted)
	f.age(kvk.Number, 400, domain.StatusAccepted)
	f.age(young.Number, 29, domain.StatusAccepted)
	res, _ := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{vat.Number, kvk.Number}, Mode: domain.CleanupFiscal})
	if len(res.Removed) != 0 || len(res.Refused) != 1 || res.Refused[0].Number != kvk.Number {
		t.Fatalf("a KvK filing is not fiscal: %+v", res)
	}
	res, _ = f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{young.Number}, Mode: domain.CleanupFiscal})
	if len(res.Refused) != 1 {
		t.Fatalf("fiscal mode keeps the 30-day floor: %+v", res)
	}
	res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{vat.Number}, Mode: domain.CleanupFiscal})
	if err != nil || len(res.Removed) != 1 {
		t.Fatalf("fiscal: %+v %v", res, err)
	}
	if _, err := f.Cleanup(ctx, pipeline.CleanupRequest{Retention: 29 * 24 * time.Hour}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("retention below 30 days: %v", err)
	}
}

// Without a selection clean-up removes what is eligible, one page per transaction,
// with the reply documents of what it removes.
func TestCleanupPages(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	var eligible []int64
	for i := 0; i < 7; i++ {
		q := f.queue("acme", domain.TypeVAT, "1", "2025-"+string(rune('a'+i)))
		f.age(q.Number, 60, domain.StatusSent)
		eligible = append(eligible, q.Number)
	}
	f.deliver(f.queue("acme", domain.TypeVAT, "2", "2025-x").Number, "K-keep")
	withReply := eligible[0]
	f.exec(
		`INSERT INTO deliveries (message_number, attempt, aanleverkenmerk, kenmerk, delivered_at) VALUES ($1, 1, $2, 'K-old', now())`,
		withReply,
		domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, withReply, 1),
	)
	if _, err := f.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "K-old", Berichtkenmerk: "r", Content: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	queuedOld := f.queue("acme", domain.TypeVAT, "3", "2025-q")
	f.age(queuedOld.Number, 90, domain.StatusQueued)

	// A dry run pages through everything and removes nothing.
	var would []int64
	for after := int64(0); ; {
		res, err := f.Cleanup(ctx, pipeline.CleanupRequest{PageSize: 3, DryRun: true, After: after})
		if err != nil {
			t.Fatal(err)
		}
		would = append(would, res.Removed...)
		if !res.More {
			break
		}
		after = res.Next
	}
	if len(would) != len(eligible) || f.count(`SELECT count(*) FROM messages WHERE direction = 'out'`) != len(eligible)+2 {
		t.Fatalf("dry run: would remove %v, want %v", would, eligible)
	}
	total := 0
	for page := 0; ; page++ {
		res, err := f.Cleanup(ctx, pipeline.CleanupRequest{PageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		total += len(res.Removed)
		if !res.More {
			break
		}
		if page > 5 {
			t.Fatal("clean-up does not end")
		}
	}
	if total != len(eligible) {
		t.Fatalf("removed %d, want %d", total, len(eligible))
	}
	if left := f.count(`SELECT count(*) FROM messages WHERE reply_to IS NOT NULL`); left != 0 {
		t.Errorf("%d reply documents outlived their message", left)
	}
	if f.count(`SELECT count(*) FROM messages WHERE number = $1`, queuedOld.Number) != 1 {
		t.Error("a queued message was withdrawn by clean-up")
	}
	if f.count(`SELECT count(*) FROM messages WHERE direction = 'out'`) != 2 {
		t.Error("clean-up removed a young or queued message")
	}
}

// Rule 8: age counts from the last status change, and a message whose delivery has no
// known outcome is never removed (it may be at Digipoort, its replies must find it).
func TestCleanupSparesRecentChangesAndOpenDeliveries(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	restored := f.queue("acme", domain.TypeVAT, "1", "2026-01")
	open := f.queue("acme", domain.TypeVAT, "1", "2026-02")
	old := f.queue("acme", domain.TypeVAT, "1", "2026-03")
	f.age(old.Number, 40, domain.StatusSent)
	f.age(open.Number, 40, domain.StatusReadyToResend)
	f.exec(`INSERT INTO deliveries (message_number, attempt, aanleverkenmerk) VALUES ($1, 1, 'open-1')`, open.Number)
	// Queued 40 days ago, restored today: about to be sent again.
	f.age(restored.Number, 40, domain.StatusReadyToResend)
	f.exec(`UPDATE messages SET last_status_change = now() WHERE number = $1`, restored.Number)

	res, err := f.Cleanup(ctx, pipeline.CleanupRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0] != old.Number {
		t.Fatalf("removed %v, want only %d", res.Removed, old.Number)
	}
	sel, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{open.Number, restored.Number}})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int64]string{}
	for _, r := range sel.Refused {
		reasons[r.Number] = r.Reason
	}
	if len(sel.Removed) != 0 || !strings.Contains(reasons[open.Number], "outcome is not known") ||
		!strings.Contains(reasons[restored.Number], "changed status 0 days ago") {
		t.Fatalf("selection: %+v", sel)
	}
}
