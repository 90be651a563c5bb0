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
