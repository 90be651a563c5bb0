package store_test

import (
	"fmt"
	"strings"
	"testing"

	"koerier/domain"
)

// Rule 10: once Digipoort answers for a kenmerk it refused, the message no longer needs
// action for the refusal; a needs-action set for another reason since stays.
func TestClearStatusRefusalsClearsOnlyTheRefusalsNeedsAction(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	refused := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	other := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	f.deliver(refused.Number, "K-1")
	f.deliver(other.Number, "K-2")
	for _, n := range []int64{refused.Number, other.Number} {
		k := map[int64]string{refused.Number: "K-1", other.Number: "K-2"}[n]
		if r, err := f.RecordStatusRefusal(ctx, n, 1, k, "Digipoort refuses the statuses of message x: STS100", "info"); err != nil || !r.First {
			t.Fatalf("refusal of %d: %+v %v", n, r, err)
		}
	}
	m, _ := f.Message(ctx, refused.Number)
	// A caller's own wording gets the prefix that ClearStatusRefusals recognises.
	if want := fmt.Sprintf("Digipoort refuses the statuses of message %d (kenmerk K-1): ", refused.Number); !m.NeedsAction ||
		!strings.HasPrefix(m.NeedsActionReason, want) {
		t.Fatalf("refusal reason: %q", m.NeedsActionReason)
	}
	f.exec(`UPDATE messages SET needs_action_reason = 'something else' WHERE number = $1`, other.Number)
	if err := f.ClearStatusRefusals(ctx, []int64{refused.Number, other.Number}); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.Message(ctx, refused.Number); m.NeedsAction || m.NeedsActionReason != "" {
		t.Errorf("refused message after Digipoort answered: %v %q", m.NeedsAction, m.NeedsActionReason)
	}
	if m, _ := f.Message(ctx, other.Number); !m.NeedsAction || m.NeedsActionReason != "something else" {
		t.Errorf("another reason was cleared: %v %q", m.NeedsAction, m.NeedsActionReason)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND level = 'I' AND description LIKE '%answers%again%'`,
		refused.Number); n != 1 {
		t.Errorf("I lines: %d", n)
	}
	if n := f.count(`SELECT count(*) FROM deliveries WHERE status_refusals > 0 OR status_ask_after IS NOT NULL`); n != 0 {
		t.Errorf("back-off left: %d", n)
	}
}

// A message that already needed action for another reason keeps that reason through a
// refusal and Digipoort's later answer: the operator's problem does not vanish.
func TestStatusRefusalKeepsAnEarlierNeedsActionReason(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K-1")
	f.exec(`UPDATE messages SET needs_action = true, needs_action_reason = 'environment acme was removed' WHERE number = $1`, q.Number)
	if _, err := f.RecordStatusRefusal(ctx, q.Number, 1, "K-1", "STS100", "info"); err != nil {
		t.Fatal(err)
	}
	if err := f.ClearStatusRefusals(ctx, []int64{q.Number}); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.Message(ctx, q.Number); !m.NeedsAction || m.NeedsActionReason != "environment acme was removed" {
		t.Errorf("the earlier reason was lost: %v %q", m.NeedsAction, m.NeedsActionReason)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND level = 'F'`, q.Number); n != 1 {
		t.Errorf("the refusal's F line: %d", n)
	}
}
