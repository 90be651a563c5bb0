package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/store"
)

// Restore implies process (rule 3): an environment that processes by hand and has not
// seen the rejection yet is shown it first, then the restore — two webhook events in
// that order — and nothing is left for `process` to do.
func TestRestoreProcessesAnUnprocessedFailureFirst(t *testing.T) {
	f := newStore(t)
	f.env("manual")
	f.webhook("manual")
	q := f.queue("manual", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-first")
	if _, err := f.ApplyReplies(ctx, flow("K-first", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.Message(ctx, q.Number); m.Status != domain.StatusRejected || m.EnvStatus != domain.StatusQueued {
		t.Fatalf("before restore: %s / environment %s", m.Status, m.EnvStatus)
	}
	res, err := f.Restore(ctx, q.Number, "op")
	if err != nil || res.Attempt != 2 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	m, _ := f.Message(ctx, q.Number)
	if m.Status != domain.StatusReadyToResend || m.EnvStatus != domain.StatusReadyToResend {
		t.Errorf("after restore: %s / environment %s", m.Status, m.EnvStatus)
	}
	if n, err := f.Unprocessed(ctx, "", 10); err != nil || len(n) != 0 {
		t.Errorf("left to process: %v %v", n, err)
	}
	events, _, err := f.PendingWebhookEvents(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, e := range events {
		var p store.WebhookPayload
		if err := json.Unmarshal(e.Payload, &p); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, string(p.Data.PreviousStatus)+"→"+string(p.Data.Status))
	}
	if strings.Join(seen, " ") != "queued→rejected rejected→ready_to_resend" {
		t.Errorf("webhook events: %v", seen)
	}
	lines, _ := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Step: domain.StepProcess})
	if len(lines) != 1 || !strings.Contains(lines[0].Description, "processed by the restore") {
		t.Errorf("process lines: %+v", lines)
	}
	plan, err := f.BeginDelivery(ctx, q.Number)
	if err != nil || plan.Attempt != 2 || plan.Wait != "" || plan.Refused != "" {
		t.Errorf("resend: %+v %v", plan, err)
	}
}

// Rule 9: a message whose environment is gone — removed, or only marked inactive in the
// database — is neither delivered nor processed; the service marks it needs-action by
// itself with one F line, and send/receive does not wait for it. --resolve moves it
// to the service's holder, where it goes on; a message handled correctly is not offered
// the choice.
func TestEnvironmentGoneHoldsMessagesUntilAssignedOrResolved(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	due := f.queue("gone", domain.TypeVAT, "1", "2026-10")
	rejected := f.queue("gone", domain.TypeVAT, "2", "2026-10")
	f.deliver(rejected.Number, "K-r")
	if _, err := f.ApplyReplies(ctx, flow("K-r", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	// Gone without `environments remove`: nothing marked the messages.
	f.exec(`UPDATE environments SET active = false, removed_at = now() WHERE name = 'gone'`)

	for i := 0; i < 2; i++ {
		plan, err := f.BeginDelivery(ctx, due.Number)
		if err != nil || plan.Refused != "" || !strings.Contains(plan.Wait, "environment gone was removed or is no longer active") {
			t.Fatalf("delivery of a message whose environment is gone: %+v %v", plan, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM deliveries WHERE message_number = $1`, due.Number); n != 0 {
		t.Errorf("a delivery was started: %d", n)
	}
	m, _ := f.Message(ctx, due.Number)
	if !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "starter assign") {
		t.Errorf("found by itself: %+v", m)
	}
	if lines, _ := f.ReadLog(ctx, store.LogFilter{Message: due.Number, Level: domain.LevelError}); len(lines) != 1 {
		t.Errorf("F lines (one expected): %+v", lines)
	}
	out, err := f.SendOutcomes(ctx, []int64{due.Number}, t0)
	if err != nil || out.Errors != 1 || len(out.Pending) != 0 {
		t.Errorf("send/receive must not wait for it: %+v %v", out, err)
	}

	if _, err := f.Process(ctx, rejected.Number); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "cannot be processed") {
		t.Errorf("process: %v", err)
	}
	if m, _ := f.Message(ctx, rejected.Number); m.EnvStatus == domain.StatusRejected || !m.NeedsAction {
		t.Errorf("after refused process: %+v", m)
	}
	if n, _ := f.Unprocessed(ctx, "", 10); len(n) != 0 {
		t.Errorf("offered to process: %v", n)
	}

	// Resolve: the service holds it, and it goes on as any message.
	if err := f.AssignEnvironment(ctx, due.Number, "", true, "op"); err != nil {
		t.Fatal(err)
	}
	m, _ = f.Message(ctx, due.Number)
	if m.NeedsAction || m.Environment == nil || *m.Environment != store.ServiceHolder {
		t.Errorf("after resolve: %+v", m)
	}
	if plan, err := f.BeginDelivery(ctx, due.Number); err != nil || plan.Wait != "" || plan.Refused != "" {
		t.Errorf("delivery after resolve: %+v %v", plan, err)
	}
	if err := f.AssignEnvironment(ctx, rejected.Number, "", true, "op"); err != nil {
		t.Fatal(err)
	}
	if res, err := f.Process(ctx, rejected.Number); err != nil || !res.Changed || !res.AutoProcess {
		t.Errorf("process after resolve: %+v %v", res, err)
	}
	if lines, _ := f.ReadLog(ctx, store.LogFilter{Message: rejected.Number, Step: domain.StepEnvironment, Level: domain.LevelInfo}); len(lines) != 1 ||
		!strings.Contains(lines[0].Description, "no environment is told") {
		t.Errorf("resolve line: %+v", lines)
	}
	if _, err := f.RemoveEnvironment(ctx, store.ServiceHolder); !errors.Is(err, store.ErrRefused) {
		t.Errorf("removing the holder: %v", err)
	}
	if _, err := f.AddEnvironment(ctx, store.Environment{Name: store.ServiceHolder}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("adding the holder's name: %v", err)
	}

	// Handled correctly (final, processed, reported): no choice offered, nothing held.
	f.env("later")
	done := f.queue("later", domain.TypeVAT, "3", "2026-10")
	f.exec(`UPDATE messages SET status = 'accepted', env_status = 'accepted', reported_status = 'accepted' WHERE number = $1`, done.Number)
	if _, err := f.RemoveEnvironment(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if err := f.AssignEnvironment(ctx, done.Number, "", true, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "handled correctly") {
		t.Errorf("resolve of a handled message: %v", err)
	}
}
