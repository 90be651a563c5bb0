package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

func TestBeginDeliveryFollowsTheVersionRules(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	v1 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	v2 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	plan, err := f.BeginDelivery(ctx, v1.Number)
	if err != nil || !strings.Contains(plan.Refused, "do-not-send") {
		t.Fatalf("old version: %+v %v", plan, err)
	}
	if f.count(`SELECT count(*) FROM deliveries`) != 0 {
		t.Fatal("a refused delivery was recorded")
	}
	plan, err = f.BeginDelivery(ctx, v2.Number)
	if err != nil || plan.Refused != "" || plan.Uncertain || plan.Aanleverkenmerk != domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, v2.Number, 1) ||
		plan.Berichtsoort != "Omzetbelasting" ||
		plan.IdentityType != domain.IdentityBTW {
		t.Fatalf("latest: %+v %v", plan, err)
	}
	// The worker dies here. The next try must know the outcome is unknown.
	again, err := f.BeginDelivery(ctx, v2.Number)
	if err != nil || !again.Uncertain || again.Attempt != 1 {
		t.Fatalf("retry after a crash: %+v %v", again, err)
	}
	if err := f.RecordDelivered(ctx, v2.Number, 1, "K2", "found in a test"); err != nil {
		t.Fatal(err)
	}
	if err := f.RecordDelivered(ctx, v2.Number, 1, "K2", "found in a test"); err != nil {
		t.Fatalf("recording twice must be a no-op: %v", err)
	}
	if err := f.RecordDelivered(ctx, v2.Number, 1, "K-other", ""); err == nil {
		t.Fatal("another kenmerk for a delivered attempt must be refused")
	}
	done, _ := f.BeginDelivery(ctx, v2.Number)
	if done.Kenmerk != "K2" {
		t.Fatalf("delivered attempt: %+v", done)
	}
	if f.status(v2.Number) != domain.StatusSent {
		t.Fatal("not sent")
	}
	known, _ := f.KnownKenmerken(ctx, []string{"K2", "K9"})
	if !known["K2"] || known["K9"] {
		t.Errorf("known: %v", known)
	}
	in, _ := f.InFlightDeliveries(ctx, 0, 10)
	if len(in) != 1 || in[0].Kenmerk != "K2" {
		t.Errorf("in flight: %+v", in)
	}
}

func TestSendFailedAndOutcomes(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	since := time.Now().Add(-time.Minute)
	a := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	b := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	c := f.queue("acme", domain.TypeVAT, "3", "2026-10")
	d := f.queue("acme", domain.TypeVAT, "4", "2026-10")
	f.deliver(a.Number, "KA")
	pb, _ := f.BeginDelivery(ctx, b.Number)
	if err := f.RecordSendFailed(ctx, b.Number, pb.Attempt, "ALS100: het verzoek voldoet niet"); err != nil {
		t.Fatal(err)
	}
	pc, _ := f.BeginDelivery(ctx, c.Number)
	// The same error three times is one F line.
	for range 3 {
		if err := f.RecordDeliveryError(ctx, c.Number, pc.Attempt, "Digipoort overbelast"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := f.SendOutcomes(ctx, []int64{a.Number, b.Number, c.Number, d.Number}, since)
	if err != nil || out.Sent != 1 || out.Failed != 1 || out.Errors != 1 || len(out.Pending) != 1 || out.Pending[0] != d.Number {
		t.Fatalf("outcomes: %+v %v", out, err)
	}
	m, _ := f.Message(ctx, b.Number)
	if m.Status != domain.StatusSendFailed || !m.NeedsAction {
		t.Errorf("failed: %+v", m)
	}
	refused, _ := f.BeginDelivery(ctx, b.Number)
	if refused.Refused == "" {
		t.Error("a refused attempt must not be delivered again without restore")
	}
	due, _ := f.DueMessages(ctx, 0, 10)
	if len(due) != 2 {
		t.Errorf("due: %+v (c and d stay due)", due)
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Level: "F"})
	if len(logs) != 2 {
		t.Errorf("F lines: %+v", logs)
	}
}

// Two versions are never in flight at once: a version whose delivery may be at
// Digipoort is looked up (not refused as do-not-send) when a newer one was queued
// meanwhile, and the newer one waits until it is resolved.
func TestVersionsAreDeliveredOneAtATime(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	v1 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	first, err := f.BeginDelivery(ctx, v1.Number)
	if err != nil || first.Refused != "" || first.Wait != "" || first.Uncertain {
		t.Fatalf("v1: %+v %v", first, err)
	}
	// The worker dies mid-call; version 2 is queued and makes version 1 do-not-send.
	v2 := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	if len(v2.Superseded) != 1 {
		t.Fatalf("v2 superseded %v", v2.Superseded)
	}
	f.exec(`UPDATE deliveries SET started_at = now() - interval '5 minutes' WHERE message_number = $1`, v1.Number)
	// v1 is do-not-send but may be at Digipoort: still due, so that it is looked up.
	if due, err := f.DueMessages(ctx, 0, 10); err != nil || len(due) != 2 || due[0].Number != v1.Number {
		t.Fatalf("due: %+v %v", due, err)
	}
	retry, err := f.BeginDelivery(ctx, v1.Number)
	if err != nil || !retry.Uncertain || retry.Refused != "" {
		t.Fatalf("v1's open delivery must be looked up before any version rule: %+v %v", retry, err)
	}
	if retry.OpenFor < 4*time.Minute || retry.OpenFor > 10*time.Minute {
		t.Errorf("open for %s by the database's clock, want about 5m", retry.OpenFor)
	}
	// send/receive does not wait for a message that waits: it counts it as not
	// delivered this round.
	if out, err := f.SendOutcomes(ctx, []int64{v2.Number}, time.Now().Add(-time.Hour)); err != nil || out.Errors != 1 || len(out.Pending) != 0 {
		t.Fatalf("outcome of the waiting version: %+v %v", out, err)
	}
	wait, err := f.BeginDelivery(ctx, v2.Number)
	if err != nil || wait.Refused != "" ||
		!strings.Contains(wait.Wait, fmt.Sprintf("message %d (Omzetbelasting 000000001B01, period 2026-10) has a delivery", v1.Number)) {
		t.Fatalf("v2 must wait for v1: %+v %v", wait, err)
	}
	if n := f.count(`SELECT count(*) FROM deliveries WHERE message_number = $1`, v2.Number); n != 0 {
		t.Fatalf("a waiting version recorded %d deliveries", n)
	}
	// Version 1 turns out to have arrived: version 2 goes after it.
	if err := f.RecordDelivered(ctx, v1.Number, 1, "K-v1", "found in a test"); err != nil {
		t.Fatal(err)
	}
	next, err := f.BeginDelivery(ctx, v2.Number)
	if err != nil || next.Wait != "" || next.Refused != "" || next.Uncertain {
		t.Fatalf("v2 after v1 resolved: %+v %v", next, err)
	}
}
