package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/internal/demo"
	"koerier/store"
)

// The operator's side of the front door (rule 13 in docs/rules.md): a token printed
// once and usable, listed without its secret, revoked; a webhook with its secret; and
// `starter show` saying what was pushed.
func TestEnvironmentTokensAndWebhook(t *testing.T) {
	catalogEnv(t)
	url := useDatabase(t)
	ctx := context.Background()
	if _, err := run(t, "environments", "add", "acme"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "environments", "token", "acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var issued struct {
		Token string `json:"token"`
		ID    int64  `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil || !strings.HasPrefix(issued.Token, "kt_") {
		t.Fatalf("token --json printed %q (%v)", out, err)
	}
	plain, err := run(t, "environments", "token", "acme")
	if err != nil || !strings.HasPrefix(plain, "kt_") || strings.Count(plain, "\n") != 1 {
		t.Fatalf("token printed %q (%v): want the token alone on stdout", plain, err)
	}
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if e, err := st.Authenticate(ctx, issued.Token); err != nil || e.Name != "acme" {
		t.Fatalf("the printed token does not authenticate: %+v %v", e, err)
	}

	out, err = run(t, "environments", "tokens", "acme", "--json")
	var list []store.Token
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[0].ID != issued.ID || strings.Contains(out, "kt_") {
		t.Fatalf("tokens: %q %v", out, err)
	}
	if _, err := run(t, "environments", "revoke-token", "acme", fmt.Sprint(issued.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Authenticate(ctx, issued.Token); err == nil {
		t.Fatal("a revoked token still authenticates")
	}
	out, err = run(t, "environments", "tokens", "acme")
	if err != nil || !strings.Contains(out, "REVOKED") || strings.Count(out, "\n") != 3 {
		t.Fatalf("tokens table: %q %v", out, err)
	}
	if _, err := run(t, "environments", "revoke-token", "acme", "x"); err == nil || !strings.Contains(err.Error(), "not a token id") {
		t.Errorf("bad id: %v", err)
	}

	if _, err := run(t, "environments", "webhook", "acme", "--url", "ftp://example.com"); err == nil {
		t.Error("an ftp URL was accepted")
	}
	out, err = run(t, "environments", "webhook", "acme", "--url", "http://127.0.0.1:9/hook", "--json")
	var hook struct {
		Secret string `json:"secret"`
	}
	if err != nil || json.Unmarshal([]byte(out), &hook) != nil || !strings.HasPrefix(hook.Secret, "whsec_") {
		t.Fatalf("webhook: %q %v", out, err)
	}
	if w, err := st.WebhookOf(ctx, "acme"); err != nil || w.Secret != hook.Secret {
		t.Fatalf("stored secret: %+v %v", w, err)
	}

	q, err := st.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "001000044B37", Period: "2026-10",
		Attachments: []domain.Attachment{{FileName: "aangifte.xbrl", MimeType: "application/xml", Content: demo.VATReturn}}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := st.BeginDelivery(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RecordDelivered(ctx, q.Number, plan.Attempt, "K1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyReplies(ctx, []store.Reply{store.ReplyFromCode("K1", "500", time.Now())}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Process(ctx, q.Number); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, "show", fmt.Sprint(q.Number))
	if err != nil || !strings.Contains(out, "0 sent, 1 pending, 0 failed") {
		t.Fatalf("show: %q %v", out, err)
	}
}
