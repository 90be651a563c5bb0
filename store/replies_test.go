package store_test

import (
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func flow(kenmerk string, codes ...string) []store.Reply {
	var out []store.Reply
	for i, c := range codes {
		out = append(out, store.ReplyFromCode(kenmerk, c, t0.Add(time.Duration(i)*time.Second)))
	}
	return out
}

// Rule 4 (docs/rules.md): only the highest status is applied; every reply is kept.
func TestHighestReplyWinsAndEveryReplyIsKept(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	res, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "110", "200", "301", "405", "400", "500"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.New) != 8 || res.Raised[q.Number] != domain.StatusAccepted {
		t.Fatalf("result: %+v", res)
	}
	// Late, lower replies arrive: kept, but accepted never goes back.
	late := []store.Reply{store.ReplyFromCode("K1", "105", t0.Add(time.Hour)), store.ReplyFromCode("K1", "100", t0.Add(time.Hour))}
	res, err = f.ApplyReplies(ctx, late)
	if err != nil || len(res.Raised) != 0 || len(res.New) != 2 {
		t.Fatalf("late replies: %+v %v", res, err)
	}
	if s := f.status(q.Number); s != domain.StatusAccepted {
		t.Fatalf("status went to %s", s)
	}
	kept, _ := f.Replies(ctx, q.Number)
	if len(kept) != 10 {
		t.Errorf("%d replies kept, want 10", len(kept))
	}
	// The same statuses fetched again (30-day look-back) are stored once.
	res, err = f.ApplyReplies(ctx, flow("K1", "105", "100", "110", "200", "301", "405", "400", "500"))
	if err != nil || len(res.New) != 0 || res.Duplicates != 8 {
		t.Fatalf("refetch: %+v %v", res, err)
	}
}

func TestRepliesOutOfOrderAndAcrossBatches(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	all := flow("K1", "105", "100", "110", "200", "301")
	// 100 arrives in one batch, 105 (lower, though earlier in the flow) in the next.
	if _, err := f.ApplyReplies(ctx, all[1:2]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ApplyReplies(ctx, all[0:1]); err != nil {
		t.Fatal(err)
	}
	if s := f.status(q.Number); s != domain.StatusReceiptConfirmed {
		t.Fatalf("105 after 100 lowered the status to %s", s)
	}
}

func TestFinalErrorMarksNeedsAction(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	res, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "110", "210"))
	if err != nil || res.Raised[q.Number] != domain.StatusFailed || len(res.NeedsAction) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	m, _ := f.Message(ctx, q.Number)
	if !m.NeedsAction || m.NeedsActionReason == "" {
		t.Errorf("210 must ask for an operator: %+v", m)
	}
}

func TestUnlinkedRepliesAreReturned(t *testing.T) {
	f := newStore(t)
	res, err := f.ApplyReplies(ctx, flow("nobody", "105"))
	if err != nil || len(res.Unlinked) != 1 || len(res.New) != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := f.ApplyReplies(ctx, []store.Reply{{Kenmerk: "x", Code: "1", Status: "bogus"}}); err == nil {
		t.Error("an invalid status must be refused")
	}
}

// Two send/receive runs (or a retried activity) applying replies at the same time
// must never lower a status, and the end result is the highest of all.
func TestConcurrentRepliesNeverLowerStatus(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	const messages = 20
	var numbers []int64
	for i := 0; i < messages; i++ {
		q := f.queue("acme", domain.TypeVAT, "1", time.Date(2026, time.Month(i%12+1), 1, 0, 0, 0, 0, time.UTC).Format("2006-01")+string(rune('a'+i/12)))
		f.deliver(q.Number, "K"+string(rune('A'+i)))
		numbers = append(numbers, q.Number)
	}
	codes := []string{"105", "100", "110", "200", "301", "405", "400", "500"}
	var lowered atomic.Int32
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		last := map[int64]int{}
		for {
			select {
			case <-stop:
				return
			default:
			}
			var rows []struct {
				Number int64  `db:"number"`
				Status string `db:"status"`
			}
			if err := f.DB().SelectContext(ctx, &rows, `SELECT number, status FROM messages`); err != nil {
				return
			}
			for _, r := range rows {
				rk := domain.Status(r.Status).Rank()
				if rk < last[r.Number] {
					lowered.Add(1)
				}
				last[r.Number] = rk
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for round := 0; round < 10; round++ {
				var batch []store.Reply
				for i := 0; i < messages; i++ {
					c := rng.Intn(len(codes))
					batch = append(batch, store.ReplyFromCode("K"+string(rune('A'+i)), codes[c], t0.Add(time.Duration(c)*time.Second)))
				}
				rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				if _, err := f.ApplyReplies(ctx, batch); err != nil {
					t.Error(err)
					return
				}
			}
			// Finally every worker delivers the full flow in a random order.
			for i := 0; i < messages; i++ {
				full := flow("K"+string(rune('A'+i)), codes...)
				rng.Shuffle(len(full), func(a, b int) { full[a], full[b] = full[b], full[a] })
				if _, err := f.ApplyReplies(ctx, full); err != nil {
					t.Error(err)
					return
				}
			}
		}(int64(w))
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if lowered.Load() > 0 {
		t.Fatalf("a status went down %d times", lowered.Load())
	}
	for _, n := range numbers {
		if s := f.status(n); s != domain.StatusAccepted {
			t.Errorf("message %d ended %s, want accepted", n, s)
		}
	}
	if c := f.count(`SELECT count(*) FROM status_events`); c != messages*len(codes) {
		t.Errorf("%d events stored, want %d (each status once)", c, messages*len(codes))
	}
}

// A restore that commits while a batch of replies waits for the message's lock makes
// the batch's replies of the old attempt stale: they must not undo the restore.
func TestRepliesWaitingForALockSeeARestore(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-old")
	if _, err := f.ApplyReplies(ctx, flow("K-old", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	// The restore holds the message's row while the late reply arrives.
	tx, err := f.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM messages WHERE number = $1 FOR UPDATE`, q.Number); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	late := store.ReplyFromCode("K-old", "410", t0.Add(time.Hour))
	go func() { _, err := f.ApplyReplies(ctx, []store.Reply{late}); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("the reply did not wait for the message's lock (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'ready_to_resend', attempt = 2, last_status_change = now() WHERE number = $1`,
		q.Number); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := f.status(q.Number); st != domain.StatusReadyToResend {
		t.Errorf("status %s after a late reply of the old attempt: the restore was undone", st)
	}
	if n := f.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND code = '410' AND NOT applied`, q.Number); n != 1 {
		t.Errorf("the late reply is kept but not applied: %d rows", n)
	}
}

// A 420 is a warning while Digipoort retries; the 420 with AFS600 after 72 hours means
// the return was never delivered: the message fails, needs action, and the report says
// that the filing deadline may pass and to restore it.
func TestDigipoortGaveUpDeliveringFailsTheMessage(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	replies := flow("K1", "105", "100", "110", "200", "301", "405", "420")
	if _, err := f.ApplyReplies(ctx, replies); err != nil {
		t.Fatal(err)
	}
	if s := f.status(q.Number); s != domain.StatusInProgress {
		t.Fatalf("after a 420 Digipoort retries: status %s", s)
	}
	gaveUp := store.ReplyFromStatus("K1", "420", "AFS600", t0.Add(72*time.Hour))
	gaveUp.Description, gaveUp.ErrorDescription = "Technisch probleem bij afleveren", "Het maximaal aantal afleverpogingen is bereikt."
	res, err := f.ApplyReplies(ctx, []store.Reply{gaveUp})
	if err != nil || res.Raised[q.Number] != domain.StatusFailed || len(res.NeedsAction) != 1 {
		t.Fatalf("420 AFS600: %+v %v", res, err)
	}
	m, _ := f.Message(ctx, q.Number)
	for _, want := range []string{"420 AFS600", "NOT filed", "deadline may pass", "Restore the message"} {
		if !m.NeedsAction || !strings.Contains(m.NeedsActionReason, want) {
			t.Errorf("needs-action reason %q must contain %q", m.NeedsActionReason, want)
		}
	}
	kept, _ := f.Replies(ctx, q.Number)
	if last := kept[len(kept)-1]; last.Status != domain.StatusFailed || last.ErrorCode != "AFS600" {
		t.Errorf("the reply is kept with its foutcode and status: %+v", last)
	}
	if _, err := f.Process(ctx, q.Number); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Report(ctx, q.Number); err != nil {
		t.Fatal(err)
	}
	lines, err := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Step: domain.StepReport})
	if err != nil || len(lines) != 1 || lines[0].Level != domain.LevelError || !strings.Contains(lines[0].Information, "deadline may pass") ||
		!strings.Contains(lines[0].Information, "AFS600") {
		t.Fatalf("report line: %+v %v", lines, err)
	}
}

// Digipoort may report the final 420 with foutcode AFS600 with the time of an earlier 420
// of the same process, or update that 420 with it: it is another status, not the same one
// fetched again, and it fails the message. Fetched again, each is stored once.
func TestAFS600AtTheTimeOfAnEarlier420IsApplied(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	warning := store.ReplyFromCode("K1", "420", t0)
	if _, err := f.ApplyReplies(ctx, append(flow("K1", "105", "100"), warning)); err != nil {
		t.Fatal(err)
	}
	if s := f.status(q.Number); s != domain.StatusInProgress {
		t.Fatalf("after a 420 Digipoort retries: status %s", s)
	}
	gaveUp := store.ReplyFromStatus("K1", "420", "AFS600", t0)
	res, err := f.ApplyReplies(ctx, []store.Reply{gaveUp})
	if err != nil || len(res.New) != 1 || res.Duplicates != 0 || res.Raised[q.Number] != domain.StatusFailed || len(res.NeedsAction) != 1 {
		t.Fatalf("420 AFS600 at the time of the 420: %+v %v", res, err)
	}
	if m, _ := f.Message(ctx, q.Number); !strings.Contains(m.NeedsActionReason, "420 AFS600") {
		t.Errorf("needs-action reason: %q", m.NeedsActionReason)
	}
	res, err = f.ApplyReplies(ctx, []store.Reply{warning, gaveUp})
	if err != nil || len(res.New) != 0 || res.Duplicates != 2 {
		t.Fatalf("fetched again: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND code = '420'`, q.Number); n != 2 {
		t.Errorf("420 and 420 AFS600 are kept once each: %d", n)
	}
}
