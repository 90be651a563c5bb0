package store_test

import (
	"strings"
	"testing"

	"koerier/domain"
	"koerier/store"
)

// A reply linked by aanleverkenmerk alone must be about the message's subject: another
// system on the same certificate may use the same reference for another company.
func TestReplyByAanleverkenmerkNeedsTheSubject(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K-mine")
	ref := domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, q.Number, 1)
	res, err := f.StoreIncoming(ctx, []store.IncomingDoc{
		{PickupKenmerk: "K-theirs", Berichtkenmerk: "b1", Aanleverkenmerk: ref, Berichtsoort: "Omzetbelasting", Subject: "008888888B01",
			Content: []byte("<theirs/>")},
		{PickupKenmerk: "K-late", Berichtkenmerk: "b2", Aanleverkenmerk: ref, Berichtsoort: "Omzetbelasting", Subject: "001000044B37",
			Content: []byte("<mine/>")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Linked[q.Number]) != 1 || len(res.Unknown) != 1 {
		t.Fatalf("incoming: %+v", res)
	}
	_, onb, err := f.OperatorView(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(onb) != 1 || !strings.Contains(onb[0].NeedsActionReason, "is not the message's subject") ||
		!strings.Contains(onb[0].NeedsActionReason, ref) {
		t.Fatalf("the stranger's reply must be ONB with the reason: %+v", onb)
	}
}

// A document of a process Koerier does not know, about the subject and berichtsoort of
// a message whose delivery has no known outcome, is evidence for that message: kept
// with it and said so, not an anonymous unknown reply.
func TestDocumentOfAnUnknownProcessIsEvidenceForAnUncertainDelivery(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	if _, err := f.BeginDelivery(ctx, q.Number); err != nil { // the answer is lost
		t.Fatal(err)
	}
	res, err := f.StoreIncoming(ctx, []store.IncomingDoc{
		{PickupKenmerk: "K-lost", Berichtkenmerk: "b1", Berichtsoort: "Omzetbelasting", Subject: "001000044B37", Content: []byte("<ok/>")},
		{PickupKenmerk: "K-other", Berichtkenmerk: "b2", Berichtsoort: "Omzetbelasting", Subject: "009999999B01", Content: []byte("<who/>")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Linked[q.Number]) != 1 || len(res.Unknown) != 1 {
		t.Fatalf("incoming: %+v", res)
	}
	lines, err := f.ReadLog(ctx, store.LogFilter{Message: q.Number, Level: domain.LevelError})
	if err != nil || len(lines) != 1 || !strings.Contains(lines[0].Description, "kept with it as evidence") ||
		!strings.Contains(lines[0].Information, "starter delivery adopt") {
		t.Fatalf("log: %+v %v", lines, err)
	}
}
