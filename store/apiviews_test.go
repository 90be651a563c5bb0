package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/store"
)

// Another environment's message is not found, exactly like a missing one, in every
// view; an incoming message is never an environment's to read.
func TestAPIViewsIsolateEnvironments(t *testing.T) {
	f := newStore(t)
	acme := f.env("acme")
	beta := f.env("beta")
	a := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(a.Number, "KA")
	in, err := f.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "KA", Berichtkenmerk: "b1", Subject: "000000001B01",
		FileName: "antwoord.xml", MimeType: "application/xml", Content: []byte("<ok/>")}})
	if err != nil || len(in.Linked[a.Number]) != 1 {
		t.Fatalf("incoming: %+v %v", in, err)
	}
	reply := in.Linked[a.Number][0]
	docs, err := f.APIDocuments(ctx, acme.ID, a.Number)
	if err != nil || len(docs) == 0 {
		t.Fatalf("acme's own documents: %+v %v", docs, err)
	}
	const missing = 999999
	notFound := func(what string, err, missingErr error, number int64) {
		t.Helper()
		if !errors.Is(err, store.ErrNotFound) || !errors.Is(missingErr, store.ErrNotFound) {
			t.Errorf("%s: %v / %v, want ErrNotFound", what, err, missingErr)
			return
		}
		if strings.ReplaceAll(err.Error(), fmt.Sprint(number), "N") != strings.ReplaceAll(missingErr.Error(), fmt.Sprint(missing), "N") {
			t.Errorf("%s: another environment's message answers %q, a missing one %q", what, err, missingErr)
		}
	}
	_, err = f.APIMessage(ctx, beta.ID, a.Number)
	_, errMissing := f.APIMessage(ctx, beta.ID, missing)
	notFound("message", err, errMissing, a.Number)
	_, err = f.APIDocuments(ctx, beta.ID, a.Number)
	_, errMissing = f.APIDocuments(ctx, beta.ID, missing)
	notFound("documents", err, errMissing, a.Number)
	_, _, err = f.APIDocument(ctx, beta.ID, a.Number, docs[0].ID)
	_, _, errMissing = f.APIDocument(ctx, beta.ID, missing, docs[0].ID)
	notFound("document", err, errMissing, a.Number)
	if _, err := f.APIMessage(ctx, acme.ID, reply); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an incoming message read as a message: %v", err)
	}
	list, next, err := f.APIMessages(ctx, beta.ID, store.APIFilter{})
	if err != nil || len(list) != 0 || next != 0 {
		t.Errorf("beta's list shows %+v %v", list, err)
	}
}

// The environment sees what has been processed: env_status, and replies and reply
// documents only once processed; the outgoing files at once.
func TestAPIMessageShowsWhatWasProcessed(t *testing.T) {
	f := newStore(t)
	acme := f.env("acme")
	f.webhook("acme")
	q := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(q.Number, "K1")
	replies := flow("K1", "105", "100", "311")
	replies[2].ErrorCode, replies[2].ErrorDescription = "ALG0001", "schema"
	if _, err := f.ApplyReplies(ctx, replies); err != nil {
		t.Fatal(err)
	}
	if _, err := f.StoreIncoming(ctx, []store.IncomingDoc{
		{PickupKenmerk: "K1", Berichtkenmerk: "b1", Subject: "000000001B01", FileName: "fouten.xml", MimeType: "application/xml",
			Content: []byte("<fout/>")},
		// Of a process Koerier does not know: not the environment's to read.
		{PickupKenmerk: "K-stranger", Berichtkenmerk: "b2", Subject: "000000001B01", FileName: "x.xml", Content: []byte("<x/>")},
	}); err != nil {
		t.Fatal(err)
	}
	m, err := f.APIMessage(ctx, acme.ID, q.Number)
	if err != nil || m.Status != domain.StatusQueued || len(m.Replies) != 0 || m.NeedsAction != true || m.Version != 1 ||
		m.Type != domain.TypeVAT || m.Subject != "000000001B01" || m.LastStatusChange == nil {
		t.Fatalf("before process: %+v %v", m, err)
	}
	docs, err := f.APIDocuments(ctx, acme.ID, q.Number)
	if err != nil || len(docs) != 1 || docs[0].Kind != "outgoing" || docs[0].Name != "aangifte.xbrl" || len(docs[0].SHA256) != 64 {
		t.Fatalf("documents before process: %+v %v", docs, err)
	}
	f.process(q.Number)
	m, err = f.APIMessage(ctx, acme.ID, q.Number)
	if err != nil || m.Status != domain.StatusRejected || len(m.Replies) != 3 || m.Webhooks != (store.WebhookCounts{Pending: 1}) {
		t.Fatalf("after process: %+v %v", m, err)
	}
	if r := m.Replies[2]; r.Code != "311" || !strings.Contains(r.Description, "ALG0001 schema") || !r.Time.Equal(replies[2].OccurredAt) {
		t.Errorf("reply: %+v", r)
	}
	docs, err = f.APIDocuments(ctx, acme.ID, q.Number)
	if err != nil || len(docs) != 2 || docs[1].Kind != "reply" || docs[1].Name != "fouten.xml" {
		t.Fatalf("documents after process: %+v %v", docs, err)
	}
	d, content, err := f.APIDocument(ctx, acme.ID, q.Number, docs[1].ID)
	if err != nil || string(content) != "<fout/>" || d != docs[1] {
		t.Fatalf("reply document: %+v %q %v", d, content, err)
	}
	// A document id of another message of the same environment is not this message's.
	other := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	if _, _, err := f.APIDocument(ctx, acme.ID, other.Number, docs[1].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("document of another message: %v", err)
	}
	// A reply arriving after the last process that moves nothing is shown too: nothing
	// waits to be processed, so no process would ever show it.
	if _, err := f.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode("K1", "400", t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.APIMessage(ctx, acme.ID, q.Number); len(m.Replies) != 4 {
		t.Errorf("a late reply that changes nothing: %d replies", len(m.Replies))
	}
}

// The list is the environment's own, in pages by number with a cursor, filtered.
func TestAPIMessagesPagesAndFilters(t *testing.T) {
	f := newStore(t)
	acme := f.env("acme")
	f.env("beta")
	var mine []int64
	for i := 1; i <= 5; i++ {
		mine = append(mine, f.queue("acme", domain.TypeVAT, fmt.Sprint(i), "2026-10").Number)
		f.queue("beta", domain.TypeVAT, fmt.Sprint(i), "2026-10")
	}
	ib, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeIncomeTax, Subject: "123456782", Period: "2025",
		Attachments: []domain.Attachment{xbrl(9)}})
	if err != nil {
		t.Fatal(err)
	}
	mine = append(mine, ib.Number)
	f.deliver(mine[1], "K1")
	if _, err := f.ApplyReplies(ctx, flow("K1", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	f.process(mine[1])

	var got []int64
	var after int64
	for page := 0; ; page++ {
		list, next, err := f.APIMessages(ctx, acme.ID, store.APIFilter{After: after, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		if page == 0 && (len(list) != 4 || next != list[3].Number) || page == 1 && (len(list) != 2 || next != 0) || page > 1 {
			t.Fatalf("page %d: %d messages, next %d", page, len(list), next)
		}
		for _, m := range list {
			got = append(got, m.Number)
		}
		if next == 0 {
			break
		}
		after = next
	}
	if fmt.Sprint(got) != fmt.Sprint(mine) {
		t.Fatalf("pages hold %v, want acme's %v in order", got, mine)
	}
	list, _, err := f.APIMessages(ctx, acme.ID, store.APIFilter{Status: domain.StatusAccepted})
	if err != nil || len(list) != 1 || list[0].Number != mine[1] || len(list[0].Replies) != 3 {
		t.Errorf("accepted: %+v %v", list, err)
	}
	if list, _, err := f.APIMessages(ctx, acme.ID, store.APIFilter{Type: domain.TypeIncomeTax}); err != nil || len(list) != 1 || list[0].Number != ib.Number {
		t.Errorf("type ib: %+v %v", list, err)
	}
	f.exec(`UPDATE messages SET env_status_changed = now() - interval '2 days' WHERE number <> $1`, mine[1])
	if list, _, err := f.APIMessages(ctx, acme.ID, store.APIFilter{Since: time.Now().Add(-time.Hour)}); err != nil || len(list) != 1 ||
		list[0].Number != mine[1] {
		t.Errorf("since an hour ago: %+v %v", list, err)
	}
	if list, _, err := f.APIMessages(ctx, acme.ID, store.APIFilter{Limit: 10000}); err != nil || len(list) != 6 {
		t.Errorf("a limit over the maximum: %d %v", len(list), err)
	}
	if _, _, err := f.APIMessages(ctx, acme.ID, store.APIFilter{Status: "done"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("unknown status: %v", err)
	}
}

// The per-request and per-message lookups use their indexes, whatever the tables' size.
func TestAPIQueriesUseIndexes(t *testing.T) {
	f := newStore(t)
	acme := f.env("acme")
	n := f.queue("acme", domain.TypeVAT, "1", "2026-01").Number
	explain := f.explainer()
	for _, c := range []struct {
		index, query string
		args         []any
	}{
		{"api_tokens_token_sha256_key", `SELECT environment_id FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL`, []any{[]byte("x")}},
		{"api_tokens_environment", `SELECT id FROM api_tokens WHERE environment_id = $1 ORDER BY id`, []any{acme.ID}},
		{"messages_environment", `SELECT number FROM messages WHERE environment_id = $1 AND number > $2 AND direction = 'out' ORDER BY number LIMIT 51`,
			[]any{acme.ID, 0}},
		{"webhook_events_message", `SELECT count(*) FILTER (WHERE state = 'sent') FROM webhook_events WHERE message_number = $1`, []any{n}},
		{"webhook_events_pending", `SELECT id FROM webhook_events WHERE message_number = $1 AND state = 'pending' ORDER BY seq`, []any{n}},
		{"webhook_events_pending", `SELECT id FROM webhook_events WHERE endpoint_id = $1 AND state = 'pending'`, []any{1}},
		{"webhook_endpoints_environment_id_key", `SELECT id FROM webhook_endpoints WHERE environment_id = $1`, []any{acme.ID}},
	} {
		if plan := explain(c.query, c.args...); !strings.Contains(plan, c.index) {
			t.Errorf("%s does not use %s:\n%s", c.query, c.index, plan)
		}
	}
}
