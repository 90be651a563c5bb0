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

// Rule 9: a message in flight when its environment was deactivated by another hand and
// then accepted is marked needs-action by Process, and the marking stays although the
// process is refused: the operator hears of it (one F line) instead of it waiting forever.
func TestProcessOfAnAcceptedMessageInAGoneEnvironmentMarksIt(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	q := f.queue("gone", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-a")
	f.exec(`UPDATE environments SET active = false, removed_at = now() WHERE name = 'gone'`)
	if _, err := f.ApplyReplies(ctx, flow("K-a", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := f.Process(ctx, q.Number); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "cannot be processed") {
			t.Fatalf("process: %v", err)
		}
	}
	m, _ := f.Message(ctx, q.Number)
	if m.Status != domain.StatusAccepted || m.EnvStatus == domain.StatusAccepted || !m.NeedsAction ||
		!strings.Contains(m.NeedsActionReason, "environment gone was removed or is no longer active") {
		t.Errorf("after refused process: %s / environment %s, needs action %v %q", m.Status, m.EnvStatus, m.NeedsAction, m.NeedsActionReason)
	}
	if lines, _ := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Level: domain.LevelError}); len(lines) != 1 {
		t.Errorf("F lines (one expected): %+v", lines)
	}
}

// Rule 9: send/receive offers a message of a gone environment for delivery until it is
// marked (the delivery marks it), and then no more: delivering it again would only wait,
// and after the delivery deadline overwrite the rule-9 reason with a misleading one.
func TestDueMessagesLeavesOutMarkedMessagesOfAGoneEnvironment(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	f.env("here")
	held := f.queue("gone", domain.TypeVAT, "1", "2026-10")
	other := f.queue("here", domain.TypeVAT, "2", "2026-10")
	f.exec(`UPDATE environments SET active = false, removed_at = now() WHERE name = 'gone'`)
	numbers := func() []int64 {
		due, err := f.DueMessages(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, d := range due {
			out = append(out, d.Number)
		}
		return out
	}
	if got := numbers(); len(got) != 2 {
		t.Fatalf("before it is marked, both are offered (the delivery marks it): %v", got)
	}
	if plan, err := f.BeginDelivery(ctx, held.Number); err != nil || plan.Wait == "" {
		t.Fatalf("delivery: %+v %v", plan, err)
	}
	if got := numbers(); len(got) != 1 || got[0] != other.Number {
		t.Errorf("due after marking: %v, want only %d", got, other.Number)
	}
	// Assigned elsewhere, it is due again.
	if err := f.AssignEnvironment(ctx, held.Number, "here", false, "op"); err != nil {
		t.Fatal(err)
	}
	if got := numbers(); len(got) != 2 {
		t.Errorf("due after assign: %v", got)
	}
}

// Rule 9: restore of a message whose environment is gone is refused (restore implies
// process, and no environment may be told); nothing changes and nothing is processed.
func TestRestoreRefusedInAGoneEnvironment(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	q := f.queue("gone", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-r")
	if _, err := f.ApplyReplies(ctx, flow("K-r", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	f.exec(`UPDATE environments SET active = false, removed_at = now() WHERE name = 'gone'`)
	_, err := f.Restore(ctx, q.Number, "op")
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "starter assign") {
		t.Fatalf("restore: %v", err)
	}
	m, _ := f.Message(ctx, q.Number)
	if m.Status != domain.StatusRejected || m.EnvStatus == domain.StatusRejected || m.Attempt != 1 {
		t.Errorf("after refused restore: %s / environment %s, attempt %d", m.Status, m.EnvStatus, m.Attempt)
	}
	if lines, _ := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Step: domain.StepProcess}); len(lines) != 0 {
		t.Errorf("processed by the restore: %+v", lines)
	}
}

// Assign and resolve retried after they committed (an activity retry, the command run
// again) succeed without doing anything twice.
func TestAssignEnvironmentRetryIsANoOp(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	f.env("here")
	moved := f.queue("gone", domain.TypeVAT, "1", "2026-10")
	held := f.queue("gone", domain.TypeVAT, "2", "2026-10")
	if _, err := f.RemoveEnvironment(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.AssignEnvironment(ctx, moved.Number, "here", false, "op"); err != nil {
			t.Fatalf("assign %d: %v", i+1, err)
		}
		if err := f.AssignEnvironment(ctx, held.Number, "", true, "op"); err != nil {
			t.Fatalf("resolve %d: %v", i+1, err)
		}
	}
	for _, n := range []int64{moved.Number, held.Number} {
		if c := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND step = 'environment'`, n); c != 1 {
			t.Errorf("message %d: %d environment lines, want 1", n, c)
		}
		if m, _ := f.Message(ctx, n); m.NeedsAction || m.Environment == nil || (*m.Environment != "here" && *m.Environment != store.ServiceHolder) {
			t.Errorf("message %d after retries: %+v", n, m)
		}
	}
	// Another target than where it is now is still refused: its environment exists.
	if err := f.AssignEnvironment(ctx, moved.Number, "", true, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "still exists") {
		t.Errorf("resolve of an assigned message: %v", err)
	}
}
