package store_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

func (f *fixture) webhook(env string) store.WebhookEndpoint {
	f.t.Helper()
	w, err := f.SetWebhook(ctx, env, "http://127.0.0.1:9/hooks/"+env+"?key=receiver-own")
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

func (f *fixture) process(number int64) {
	f.t.Helper()
	if _, err := f.Process(ctx, number); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) pending(number int64) ([]store.WebhookEvent, store.WebhookEndpoint) {
	f.t.Helper()
	evs, w, err := f.PendingWebhookEvents(ctx, number)
	if err != nil {
		f.t.Fatal(err)
	}
	return evs, w
}

func (f *fixture) counts(number int64) store.WebhookCounts {
	f.t.Helper()
	c, err := f.WebhookCountsOf(ctx, number)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// One event per processed change of what the environment sees, written by Process
// itself (the outbox), with a stable id and the Standard Webhooks body; none for an
// environment without an endpoint.
func TestProcessWritesOneWebhookEventPerChange(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("beta")
	w := f.webhook("acme")
	if !strings.HasPrefix(w.Secret, "whsec_") {
		t.Fatalf("secret %q", w.Secret)
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(w.Secret, "whsec_")); err != nil || len(key) != 24 {
		t.Fatalf("secret %q: %d bytes, %v; want base64 of 24", w.Secret, len(key), err)
	}
	a := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	b := f.queue("beta", domain.TypeVAT, "1", "2026-10")
	for n, k := range map[int64]string{a.Number: "KA", b.Number: "KB"} {
		f.deliver(n, k)
		if _, err := f.ApplyReplies(ctx, flow(k, "105", "100")); err != nil {
			t.Fatal(err)
		}
		f.process(n)
		f.process(n) // nothing changed: no second event
	}
	if c := f.counts(b.Number); c != (store.WebhookCounts{}) {
		t.Errorf("beta has no endpoint, yet events: %+v", c)
	}
	if c := f.counts(a.Number); c != (store.WebhookCounts{Pending: 1}) {
		t.Fatalf("acme: %+v, want one pending event", c)
	}
	if _, err := f.ApplyReplies(ctx, flow("KA", "105", "100", "500")[2:]); err != nil {
		t.Fatal(err)
	}
	f.process(a.Number)

	evs, ep := f.pending(a.Number)
	if len(evs) != 2 || ep.ID != w.ID || ep.Secret != w.Secret || ep.URL != w.URL {
		t.Fatalf("pending: %+v at %+v", evs, ep)
	}
	for i, want := range []struct {
		prev, now domain.Status
	}{{domain.StatusQueued, domain.StatusReceiptConfirmed}, {domain.StatusReceiptConfirmed, domain.StatusAccepted}} {
		e := evs[i]
		if e.ID != fmt.Sprintf("evt_%d_%d", a.Number, i+1) || e.State != store.WebhookPending || e.MessageNumber != a.Number {
			t.Errorf("event %d: %+v", i, e)
		}
		var body struct {
			Type      string `json:"type"`
			Timestamp string `json:"timestamp"`
			Data      struct {
				Number      int64  `json:"number"`
				Environment string `json:"environment"`
				Type        string `json:"type"`
				Status      string `json:"status"`
				Previous    string `json:"previous_status"`
				Version     int    `json:"version"`
				Time        string `json:"time"`
			} `json:"data"`
		}
		if err := json.Unmarshal(e.Payload, &body); err != nil {
			t.Fatalf("payload %s: %v", e.Payload, err)
		}
		d := body.Data
		if body.Type != "message.status_changed" || d.Number != a.Number || d.Environment != "acme" || d.Type != "btw" ||
			d.Status != string(want.now) || d.Previous != string(want.prev) || d.Version != 1 {
			t.Errorf("event %d body: %s", i, e.Payload)
		}
		if _, err := time.Parse(time.RFC3339, body.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", body.Timestamp, err)
		}
		m, _ := f.Message(ctx, a.Number)
		if at, err := time.Parse(time.RFC3339, d.Time); err != nil || (i == 1 && !at.Equal(m.LastStatusChange)) {
			t.Errorf("time %q is not the status change %s: %v", d.Time, m.LastStatusChange, err)
		}
	}
	// The payload is kept as posted: read again, the same bytes.
	again, _ := f.pending(a.Number)
	if string(again[0].Payload) != string(evs[0].Payload) {
		t.Errorf("payload changed between reads:\n%s\n%s", evs[0].Payload, again[0].Payload)
	}

	if err := f.WebhookAttempt(ctx, evs[0].ID, "connection refused"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.MarkWebhookSent(ctx, evs[0].ID); err != nil {
			t.Fatalf("mark sent (%d): %v", i, err)
		}
	}
	if err := f.WebhookAttempt(ctx, evs[0].ID, "late"); err != nil {
		t.Fatal(err)
	}
	var first struct {
		Attempts  int    `db:"attempts"`
		LastError string `db:"last_error"`
		State     string `db:"state"`
	}
	if err := f.DB().GetContext(ctx, &first, `SELECT attempts, last_error, state FROM webhook_events WHERE id = $1`, evs[0].ID); err != nil {
		t.Fatal(err)
	}
	if first.Attempts != 2 || first.LastError != "connection refused" || first.State != "sent" {
		t.Errorf("sent event: %+v (marking it twice and an attempt after it must change nothing)", first)
	}
	if left, _ := f.pending(a.Number); len(left) != 1 || left[0].ID != evs[1].ID {
		t.Fatalf("after the first was sent: %+v", left)
	}
	if err := f.MarkWebhookFailed(ctx, evs[1].ID, "no 2xx within 4 days"); err != nil {
		t.Fatal(err)
	}
	if err := f.MarkWebhookFailed(ctx, evs[1].ID, "again"); err != nil {
		t.Fatal(err)
	}
	if c := f.counts(a.Number); c != (store.WebhookCounts{Sent: 1, Failed: 1}) {
		t.Errorf("counts: %+v", c)
	}
	lines, err := f.ReadLog(ctx, store.LogFilter{Message: a.Number, Level: domain.LevelError})
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0].Description, evs[1].ID) || !strings.Contains(lines[0].Description, "4 days") {
		t.Fatalf("F lines: %+v %v", lines, err)
	}
	for _, err := range []error{f.MarkWebhookSent(ctx, "evt_1_1"), f.WebhookAttempt(ctx, "evt_1_1", "x"), f.MarkWebhookFailed(ctx, "evt_1_1", "x")} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown event: %v", err)
		}
	}
}

// A 410 disables the endpoint: what was pending fails with F lines and nothing new is
// written until the environment registers again.
func TestDisableWebhookFailsPendingEvents(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	w := f.webhook("acme")
	var nums []int64
	for i, k := range []string{"K1", "K2"} {
		q := f.queue("acme", domain.TypeVAT, fmt.Sprint(i+1), "2026-10")
		f.deliver(q.Number, k)
		if _, err := f.ApplyReplies(ctx, flow(k, "105", "100")); err != nil {
			t.Fatal(err)
		}
		f.process(q.Number)
		nums = append(nums, q.Number)
	}
	if err := f.DisableWebhook(ctx, w, "the receiver answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	if err := f.DisableWebhook(ctx, w, "again"); err != nil {
		t.Fatal(err)
	}
	for _, n := range nums {
		if c := f.counts(n); c != (store.WebhookCounts{Failed: 1}) {
			t.Errorf("message %d: %+v", n, c)
		}
		if evs, _ := f.pending(n); len(evs) != 0 {
			t.Errorf("message %d still has pending events: %+v", n, evs)
		}
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE level = 'F' AND message_number IS NULL AND description LIKE '%disabled: the receiver answered 410%'`); n != 1 {
		t.Errorf("%d F lines for the environment, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE level = 'F' AND message_number = ANY($1)`, nums); n != 2 {
		t.Errorf("%d F lines on the messages, want one each", n)
	}
	got, err := f.WebhookOf(ctx, "acme")
	if err != nil || got.DisabledAt == nil || got.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("endpoint: %+v %v", got, err)
	}
	if _, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "500")[2:]); err != nil {
		t.Fatal(err)
	}
	f.process(nums[0])
	if c := f.counts(nums[0]); c != (store.WebhookCounts{Failed: 1}) {
		t.Errorf("an event was written for a disabled endpoint: %+v", c)
	}
	again := f.webhook("acme")
	if again.ID != w.ID || again.DisabledAt != nil || again.Secret == w.Secret {
		t.Errorf("registering again must re-enable the endpoint with a new secret: %+v", again)
	}
	if err := f.DisableWebhook(ctx, store.WebhookEndpoint{ID: 999}, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// An event pending for an endpoint that has since been disabled (a race with the 410
// of another message), or of an environment that was removed, is failed when read.
func TestPendingEventsOfAGoneEndpointFail(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	w := f.webhook("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	if _, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	f.process(q.Number)
	f.exec(`UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = 'by hand' WHERE id = $1`, w.ID)
	if evs, ep := f.pending(q.Number); len(evs) != 0 || ep.ID != 0 {
		t.Fatalf("pending of a disabled endpoint: %+v %+v", evs, ep)
	}
	if c := f.counts(q.Number); c != (store.WebhookCounts{Failed: 1}) {
		t.Errorf("counts: %+v", c)
	}
	lines, _ := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Level: domain.LevelError})
	if len(lines) != 1 || !strings.Contains(lines[0].Description, "by hand") {
		t.Errorf("F line: %+v", lines)
	}
}

// A restore changes what the environment sees at once: one event.
func TestRestoreWritesAWebhookEvent(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.webhook("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	if _, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "311")); err != nil {
		t.Fatal(err)
	}
	f.process(q.Number)
	if _, err := f.Restore(ctx, q.Number, "op"); err != nil {
		t.Fatal(err)
	}
	evs, _ := f.pending(q.Number)
	if len(evs) != 2 || !strings.Contains(string(evs[1].Payload), `"status":"ready_to_resend","previous_status":"rejected"`) {
		t.Fatalf("events: %d %s", len(evs), evs[len(evs)-1].Payload)
	}
}

func TestSetWebhookValidatesTheURL(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	for _, bad := range []string{"", "ftp://example.com/x", "https://", "/relative", "https://user:pw@example.com/x", "https://example.com/#x",
		"https://example.com/" + strings.Repeat("x", 2000)} {
		if _, err := f.SetWebhook(ctx, "acme", bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := f.SetWebhook(ctx, "nobody", "https://example.com/x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing environment: %v", err)
	}
	if _, err := f.WebhookOf(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no endpoint yet: %v", err)
	}
	w, err := f.SetWebhook(ctx, "acme", "https://example.com/hook?token=abc")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.WebhookOf(ctx, "acme"); err != nil || got.Secret != w.Secret || got.URL != w.URL {
		t.Fatalf("webhook of: %+v %v", got, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE '%token=abc%' OR description LIKE '%whsec_%'`); n != 0 {
		t.Errorf("the log must name neither the secret nor the URL's query")
	}
}

// A 410 from a URL the environment has since replaced does not disable the new
// registration: the sender is told it changed and posts again, to the new one.
func TestDisableWebhookSparesANewRegistration(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	old := f.webhook("acme")
	renewed, err := f.SetWebhook(ctx, "acme", "https://new.example/hooks")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.DisableWebhook(ctx, old, "the old receiver answered 410 Gone"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disable with the old registration: %v", err)
	}
	now, err := f.WebhookOf(ctx, "acme")
	if err != nil || now.DisabledAt != nil || now.Secret != renewed.Secret {
		t.Fatalf("the new registration must stay enabled: %+v %v", now, err)
	}
}
