package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// An environment sees its own messages' statuses only.
func TestEnvironmentViewShowsOwnMessagesOnly(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("beta")
	a := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	b := f.queue("beta", domain.TypeVAT, "1", "2026-10")
	view, err := f.EnvironmentView(ctx, "acme", 0)
	if err != nil || len(view) != 1 || view[0].Number != a.Number {
		t.Fatalf("acme sees %+v %v", view, err)
	}
	if view[0].Status != domain.StatusQueued || view[0].Version != 1 || view[0].Type != "btw" {
		t.Errorf("row: %+v", view[0])
	}
	// A reply the environment has not processed yet does not show.
	f.deliver(a.Number, "KA")
	if _, err := f.ApplyReplies(ctx, flow("KA", "105", "100", "500")); err != nil {
		t.Fatal(err)
	}
	view, _ = f.EnvironmentView(ctx, "acme", 0)
	if view[0].Status != domain.StatusQueued {
		t.Errorf("unprocessed status leaked into the environment view: %s", view[0].Status)
	}
	if _, err := f.EnvironmentView(ctx, "nope", 0); err == nil {
		t.Error("unknown environment must be refused")
	}
	_ = b
}

// The operator sees every message, with unknown replies apart.
func TestOperatorViewKeepsUnknownRepliesApart(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	a := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(a.Number, "KA")
	res, err := f.StoreIncoming(ctx, []store.IncomingDoc{
		{
			PickupKenmerk:  "KA",
			Berichtkenmerk: "b1",
			Berichtsoort:   "Omzetbelasting",
			Subject:        "001000044B37",
			FileName:       "reply.xml",
			MimeType:       "text/xml",
			Content:        []byte("<ok/>"),
		},
		{PickupKenmerk: "K-stranger", Berichtkenmerk: "b2", Berichtsoort: "Omzetbelasting", Subject: "999", Content: []byte("<who/>")},
		{PickupKenmerk: "K-other", Berichtkenmerk: "b3", Aanleverkenmerk: domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix,
			a.Number, 1), Subject: "001000044B37"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Linked[a.Number]) != 2 || len(res.Unknown) != 1 {
		t.Fatalf("incoming: %+v", res)
	}
	msgs, onb, err := f.OperatorView(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(onb) != 1 || onb[0].Subtype != domain.SubtypeONB || onb[0].Environment != nil || !onb[0].NeedsAction {
		t.Fatalf("unknown replies: %+v", onb)
	}
	if len(msgs) != 3 {
		t.Fatalf("messages: %d, want the declaration and its two replies", len(msgs))
	}
	for _, m := range msgs {
		if m.Subtype == domain.SubtypeONB {
			t.Error("an ONB is mixed with the messages")
		}
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Level: "F"})
	if len(logs) != 1 || !strings.Contains(logs[0].Description, "unknown reply") {
		t.Errorf("an ONB needs an F line: %+v", logs)
	}
	// Fetched again: stored once.
	again, _ := f.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "K-stranger", Berichtkenmerk: "b2"}})
	if again.Duplicates != 1 || len(again.Unknown) != 0 {
		t.Errorf("refetch: %+v", again)
	}
}

func TestLogFilters(t *testing.T) {
	f := newStore(t)
	a := f.env("acme")
	f.env("beta")
	n := int64(7)
	lines := []store.LogEntry{
		{EnvironmentID: &a.ID, Step: domain.StepSend, Level: "I", Description: "one"},
		{EnvironmentID: &a.ID, Step: domain.StepReceive, Level: "F", Description: "two", MessageNumber: &n},
		{Step: domain.StepSendReceive, Level: "I", Description: "three", DedupeKey: "k"},
		{Step: domain.StepSendReceive, Level: "I", Description: "three again", DedupeKey: "k"},
	}
	for _, l := range lines {
		if err := f.WriteLog(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WriteLog(ctx, store.LogEntry{Step: "x", Level: "W", Description: "y"}); err == nil {
		t.Error("level W must be refused")
	}
	check := func(name string, filter store.LogFilter, want ...string) {
		t.Helper()
		got, err := f.ReadLog(ctx, filter)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var descs []string
		for _, g := range got {
			if g.Step == domain.StepEnvironment {
				continue
			}
			descs = append(descs, g.Description)
		}
		if strings.Join(descs, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %v, want %v", name, descs, want)
		}
	}
	check("all newest first", store.LogFilter{}, "three", "two", "one")
	check("level F", store.LogFilter{Level: "f"}, "two")
	check("environment", store.LogFilter{Environment: "acme"}, "two", "one")
	check("other environment", store.LogFilter{Environment: "beta"})
	check("step", store.LogFilter{Step: domain.StepSend}, "one")
	check("message", store.LogFilter{Message: 7}, "two")
	check("until the past", store.LogFilter{Until: time.Now().Add(-time.Hour)})
	check("since the past", store.LogFilter{Since: time.Now().Add(-time.Hour), Level: "F"}, "two")
	check("limit", store.LogFilter{Limit: 1}, "three")
	got, _ := f.ReadLog(ctx, store.LogFilter{Environment: "acme", Level: "F"})
	if len(got) != 1 || got[0].Environment == nil || *got[0].Environment != "acme" {
		t.Errorf("environment name must come with the line: %+v", got)
	}
}

// The final 500 carries the authority's acknowledgement in statusdetails: it is kept,
// and shown with the message as the acknowledgement of the current attempt.
func TestShowMessageCarriesTheAcknowledgement(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K1")
	d, err := f.ShowMessage(ctx, q.Number)
	if err != nil || d.Acknowledgement != nil || d.Identity == nil || *d.Identity != (store.Identity{Nummer: "NL001000044B37", Type: "BTW"}) ||
		len(d.Files) != 1 || d.Files[0].Role != "declaration" || d.Files[0].Name != "aangifte.xbrl" || len(d.Files[0].SHA256) != 64 {
		t.Fatalf("before any reply: %+v %v", d, err)
	}
	// The shape of a 500 captured from Logius' conformance environment.
	const ack = `<Responsemessage version="2006.1">
<Identification>
<MessageId>uuid-1</MessageId>
<RefersToMessageId>K1</RefersToMessageId>
<MessageIdBd>BD-0001</MessageIdBd>
<DatumTijdOntvangst>2026-11-01T11:00:08+01:00</DatumTijdOntvangst>
<ResponseType>acknowledgement</ResponseType>
</Identification>
<Specification>
<Class>A</Class>
<Code>0001</Code>
<Description>Status: Verwerkbaar</Description>
</Specification>
</Responsemessage>`
	replies := flow("K1", "105", "100", "110", "200", "301", "405", "400", "500")
	replies[7].Details = ack
	if _, err := f.ApplyReplies(ctx, replies); err != nil {
		t.Fatal(err)
	}
	d, err = f.ShowMessage(ctx, q.Number)
	if err != nil || d.Status != domain.StatusAccepted || len(d.Replies) != 8 {
		t.Fatalf("after acceptance: %+v %v", d, err)
	}
	if a := d.Acknowledgement; a == nil || a.Text != ack || a.Code != "500" || a.Kenmerk != "K1" || !a.At.Equal(replies[7].OccurredAt) {
		t.Fatalf("acknowledgement: %+v", d.Acknowledgement)
	}
	if r := d.Acknowledgement.Response; r == nil || *r != (store.Responsemessage{MessageID: "uuid-1", RefersToMessageID: "K1", AuthorityID: "BD-0001",
		Received: "2026-11-01T11:00:08+01:00", ResponseType: "acknowledgement", Class: "A", Code: "0001", Description: "Status: Verwerkbaar"}) {
		t.Errorf("the Responsemessage read: %+v", d.Acknowledgement.Response)
	}
	if d.Replies[7].Details != ack {
		t.Errorf("the 500's details must be stored as sent: %q", d.Replies[7].Details)
	}
	if _, err := f.ShowMessage(ctx, 42); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown message: %v", err)
	}
}

// The workflow's loader carries the newest F lines of the message only, newest first,
// at most pipeline.MaxErrorsInState (issue 12, item 9), and its files with those of
// its reply documents, the message's own first.
func TestDeclarationCarriesTheNewestFLines(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	a := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	b := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-11")
	for i := 1; i <= pipeline.MaxErrorsInState+2; i++ {
		for _, n := range []int64{a.Number, b.Number} {
			n := n
			if err := f.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelError,
				Description: fmt.Sprintf("error %d of %d", i, n)}); err != nil {
				t.Fatal(err)
			}
		}
		n := a.Number
		if err := f.WriteLog(ctx, store.LogEntry{MessageNumber: &n, Step: domain.StepSend, Level: domain.LevelInfo, Description: "info"}); err != nil {
			t.Fatal(err)
		}
	}
	f.deliver(a.Number, "KA")
	if _, err := f.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "KA", Berichtkenmerk: "b1", Subject: "001000044B37",
		FileName: "reply.xml", MimeType: "text/xml", Content: []byte("<ok/>")}}); err != nil {
		t.Fatal(err)
	}
	d, err := f.Declaration(ctx, a.Number)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range d.Errors {
		got = append(got, e.Description)
	}
	want := []string{}
	for i := pipeline.MaxErrorsInState + 2; len(want) < pipeline.MaxErrorsInState; i-- {
		want = append(want, fmt.Sprintf("error %d of %d", i, a.Number))
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("F lines: got %q, want %q", got, want)
	}
	if len(d.Files) != 2 || d.Files[0].Role != "declaration" || d.Files[0].Message != a.Number || d.Files[1].Role != "reply" ||
		d.Files[1].Name != "reply.xml" || len(d.Files[1].SHA256) != 64 {
		t.Errorf("files: %+v", d.Files)
	}
}
