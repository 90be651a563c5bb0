package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/store"
)

func TestEnvironments(t *testing.T) {
	f := newStore(t)
	a, err := f.AddEnvironment(ctx, store.Environment{Name: "acme", AutoSend: true, AutoProcess: true})
	if err != nil || !a.Active || !a.AutoSend || !a.AutoProcess {
		t.Fatalf("add: %+v %v", a, err)
	}
	if _, err := f.AddEnvironment(ctx, store.Environment{Name: "acme"}); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("duplicate: %v", err)
	}
	for _, bad := range []string{"", "-x", "a b", "a/b", strings.Repeat("a", 64)} {
		if _, err := f.AddEnvironment(ctx, store.Environment{Name: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if _, err := f.AddEnvironment(ctx, store.Environment{Name: "half", EmailFrom: "x@y.nl"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("half an e-mail profile: %v", err)
	}
	f.env("beta")
	list, _ := f.Environments(ctx, false)
	if len(list) != 2 || list[0].Name != "acme" || list[1].Name != "beta" {
		t.Fatalf("list: %+v", list)
	}
	if _, err := f.Environment(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
}

// Rule 9 (docs/rules.md): a removed environment's unfinished messages need an operator.
func TestRemoveEnvironmentMarksMessagesNeedingAction(t *testing.T) {
	f := newStore(t)
	f.env("gone")
	q := f.queue("gone", domain.TypeVAT, "001000044B37", "2026-10")
	done := f.queue("gone", domain.TypeVAT, "001000044B37", "2026-09")
	other := f.queue("gone", domain.TypeVAT, "001000044B37", "2026-08")
	f.exec(`UPDATE messages SET status = 'accepted', env_status = 'accepted', reported_status = 'accepted' WHERE number = $1`, done.Number)
	affected, err := f.RemoveEnvironment(ctx, "gone")
	if err != nil || len(affected) != 2 || !slices.Contains(affected, q.Number) || !slices.Contains(affected, other.Number) {
		t.Fatalf("remove: %v %v", affected, err)
	}
	// Each message is marked in one statement, with the reason that names it.
	for _, n := range affected {
		m, _ := f.Message(ctx, n)
		if !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "assign another environment") ||
			!strings.Contains(m.NeedsActionReason, fmt.Sprintf("starter assign %d --env", n)) {
			t.Errorf("message %d after removal: %+v", n, m)
		}
	}
	if m, _ := f.Message(ctx, done.Number); m.NeedsAction {
		t.Errorf("a message handled to the end needs no action: %+v", m)
	}
	if _, err := f.RemoveEnvironment(ctx, "gone"); !errors.Is(err, store.ErrRefused) {
		t.Errorf("remove twice: %v", err)
	}
	if _, err := f.AddEnvironment(ctx, store.Environment{Name: "gone"}); err == nil || !strings.Contains(err.Error(), "not reused") {
		t.Errorf("re-add removed: %v", err)
	}
	list, _ := f.Environments(ctx, false)
	if len(list) != 0 {
		t.Errorf("removed environment listed: %+v", list)
	}
	all, _ := f.Environments(ctx, true)
	if len(all) != 1 || all[0].Active {
		t.Errorf("with removed: %+v", all)
	}
	if m, _ := f.Message(ctx, done.Number); m.NeedsAction {
		t.Error("a message handled correctly must not need an operator")
	}
	if err := f.AssignEnvironment(ctx, done.Number, "x", false, "op"); !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(),
		"handled correctly") {
		t.Errorf("assigning a handled message: %v", err)
	}
	f.env("other")
	if err := f.AssignEnvironment(ctx, q.Number, "other", false, "op"); err != nil {
		t.Errorf("assign: %v", err)
	}
	if m, _ := f.Message(ctx, q.Number); m.NeedsAction || m.Environment == nil || *m.Environment != "other" {
		t.Errorf("after assign: %+v", m)
	}
}

// `starter environments set`: auto-send and auto-process change after creation, with an
// I line naming who changed what; the messages whose workflows may hold the old
// settings are returned (not one accepted and processed); a removed environment and an
// empty change are refused.
func TestSetEnvironment(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	done := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(done.Number, "K-done")
	if _, err := f.ApplyReplies(ctx, flow("K-done", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Process(ctx, done.Number); err != nil {
		t.Fatal(err)
	}
	waiting := f.queue("acme", domain.TypeVAT, "2", "2026-10")
	on, off := true, false

	res, err := f.SetEnvironment(ctx, "acme", store.EnvironmentSettings{AutoSend: &on, AutoProcess: &off}, "op")
	if err != nil || !res.Environment.AutoSend || res.Environment.AutoProcess || len(res.Changes) != 1 || res.Changes[0] != "auto-send false → true" {
		t.Fatalf("set: %+v %v", res, err)
	}
	if len(res.Messages) != 1 || res.Messages[0] != waiting.Number {
		t.Errorf("messages to tell: %v, want [%d]", res.Messages, waiting.Number)
	}
	if e, err := f.Environment(ctx, "acme"); err != nil || !e.AutoSend || e.AutoProcess {
		t.Fatalf("stored: %+v %v", e, err)
	}
	if m, err := f.Message(ctx, waiting.Number); err != nil || m.AutoSend == nil || !*m.AutoSend {
		t.Fatalf("a message's load must see the new setting: %+v %v", m, err)
	}
	line := `SELECT count(*) FROM communication_log WHERE step = 'environment' AND description = 'environment acme changed by op: auto-send false → true'`
	if n := f.count(line); n != 1 {
		t.Errorf("log lines: %d", n)
	}
	again, err := f.SetEnvironment(ctx, "acme", store.EnvironmentSettings{AutoSend: &on}, "op")
	if err != nil || len(again.Changes) != 0 || len(again.Messages) != 1 || f.count(line) != 1 {
		t.Errorf("the same setting again must change and log nothing, and still name the messages: %+v %v", again, err)
	}
	if _, err := f.SetEnvironment(ctx, "acme", store.EnvironmentSettings{}, "op"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("nothing to change: %v", err)
	}
	if _, err := f.SetEnvironment(ctx, "nope", store.EnvironmentSettings{AutoSend: &on}, "op"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown environment: %v", err)
	}
	f.env("gone")
	if _, err := f.RemoveEnvironment(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.SetEnvironment(ctx, "gone", store.EnvironmentSettings{AutoSend: &on}, "op"); !errors.Is(err, store.ErrRefused) {
		t.Errorf("removed environment: %v", err)
	}
}
