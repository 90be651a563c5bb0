package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

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
	eligible := f.queueSent(7, 60)
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

// Clean-up of one environment (one no longer used, removed or not) and of what last
// changed before a date: the age floor, the status rules and all-or-nothing stay, and
// the date is compared with the last status change, not with when it was queued.
func TestCleanupByEnvironmentAndBefore(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("other")
	old := f.queue("acme", domain.TypeVAT, "1", "2026-01")
	recent := f.queue("acme", domain.TypeVAT, "1", "2026-02")
	requeued := f.queue("acme", domain.TypeVAT, "1", "2026-03")
	accepted := f.queue("acme", domain.TypeVAT, "1", "2026-04")
	elsewhere := f.queue("other", domain.TypeVAT, "1", "2026-01")
	f.age(old.Number, 90, domain.StatusSent)
	f.age(recent.Number, 40, domain.StatusSent)
	f.age(accepted.Number, 90, domain.StatusAccepted)
	f.age(elsewhere.Number, 90, domain.StatusSent)
	// Queued 100 days ago, its status last changed 40 days ago.
	f.age(requeued.Number, 100, domain.StatusReadyToResend)
	f.exec(`UPDATE messages SET last_status_change = now() - interval '40 days' WHERE number = $1`, requeued.Number)
	// An environment no longer used: removed, its messages still there.
	f.exec(`UPDATE environments SET active = false, removed_at = now() WHERE name = 'acme'`)

	dry, err := f.Cleanup(ctx, pipeline.CleanupRequest{Environment: "acme", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	// A sweep selects only the environment's messages: nothing else shows up, not even refused.
	if !slices.Equal(dry.Removed, []int64{old.Number, recent.Number, requeued.Number}) || len(dry.Refused) != 0 {
		t.Fatalf("environment acme, dry run: would remove %v refusing %v, want %d, %d and %d (not the accepted one, nor other's)",
			dry.Removed, dry.Refused, old.Number, recent.Number, requeued.Number)
	}

	before := time.Now().Add(-60 * 24 * time.Hour)
	res, err := f.Cleanup(ctx, pipeline.CleanupRequest{Environment: "acme", Before: before, Who: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []int64{old.Number}) || len(res.Refused) != 0 {
		t.Fatalf("before %s: removed %v refusing %v, want only %d (the one queued long ago changed status 40 days ago)", before, res.Removed, res.Refused,
			old.Number)
	}
	if f.count(`SELECT count(*) FROM messages WHERE number = ANY($1)`, pq.Array([]int64{recent.Number, requeued.Number, accepted.Number, elsewhere.Number})) != 4 {
		t.Fatal("clean-up by environment and date removed more than it selected")
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Step: domain.StepCleanup})
	if len(logs) != 1 || !strings.Contains(logs[0].Description, "test removed 1 message") || !strings.Contains(logs[0].Description, "environment acme") ||
		!strings.Contains(logs[0].Description, "before ") || !strings.Contains(logs[0].Information, fmt.Sprint(old.Number)) {
		t.Errorf("clean-up log: %+v", logs)
	}

	// A selection outside the environment or the date is refused, whole.
	sel, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{recent.Number, elsewhere.Number}, Environment: "acme", Before: before})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[int64]string{}
	for _, r := range sel.Refused {
		reasons[r.Number] = r.Reason
	}
	if len(sel.Removed) != 0 || !strings.Contains(reasons[elsewhere.Number], "not a message of environment acme") ||
		!strings.Contains(reasons[recent.Number], "not before") {
		t.Fatalf("selection: %+v", sel)
	}
	if _, err := f.Cleanup(ctx, pipeline.CleanupRequest{Environment: "nobody", DryRun: true}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown environment: %v", err)
	}

	// A sweep that finds nothing still leaves its line: every run says what it removed.
	if _, err := f.Cleanup(ctx, pipeline.CleanupRequest{Environment: "acme", Before: before, Who: "empty run"}); err != nil {
		t.Fatal(err)
	}
	logs, _ = f.ReadLog(ctx, store.LogFilter{Step: domain.StepCleanup})
	found := false
	for _, l := range logs {
		found = found || strings.Contains(l.Description, "empty run removed 0 message")
	}
	if !found {
		t.Errorf("a run that removed nothing left no line: %+v", logs)
	}
}

// A run of many pages leaves one I line, brought up to date by each page's
// transaction: the count, the bytes and the numbers of the whole run.
func TestCleanupLeavesALinePerPageWithEveryNumber(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	var want []string
	for _, n := range f.queueSent(5, 60) {
		want = append(want, fmt.Sprint(n))
	}
	for after := int64(0); ; {
		res, err := f.Cleanup(ctx, pipeline.CleanupRequest{PageSize: 2, After: after, Run: "cleanup-test", Who: "scheduled clean-up"})
		if err != nil {
			t.Fatal(err)
		}
		if !res.More {
			break
		}
		after = res.Next
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Step: domain.StepCleanup})
	if len(logs) != 3 {
		t.Fatalf("%d lines for three pages, want 3 (one per page, never rewritten): %+v", len(logs), logs)
	}
	var got []string
	for i := len(logs) - 1; i >= 0; i-- { // the log reads newest first
		l := logs[i]
		if !strings.HasPrefix(l.Description, "scheduled clean-up removed ") || !strings.Contains(l.Description, "run cleanup-test") ||
			!strings.HasPrefix(l.Information, "numbers: ") {
			t.Errorf("line %q / %q", l.Description, l.Information)
		}
		got = append(got, strings.Split(strings.TrimPrefix(l.Information, "numbers: "), ", ")...)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("numbers logged %v, want every removed one %v", got, want)
	}
}
