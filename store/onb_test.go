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

// storeONB keeps one unknown reply and returns its number.
func (f *fixture) storeONB(doc store.IncomingDoc) int64 {
	f.t.Helper()
	res, err := f.StoreIncoming(ctx, []store.IncomingDoc{doc})
	if err != nil || len(res.Unknown) != 1 {
		f.t.Fatalf("store ONB: %+v %v", res, err)
	}
	return res.Unknown[0]
}

// Rule 5: a status belongs to its own Digipoort process. A status kept as an unknown
// reply for another kenmerk is never linked to a message delivered as K-mine: it would
// give the message another process's outcome (a 500 marks it accepted, for good). The
// refusal says what to do, and nothing changes.
func TestLinkONBRefusesAStatusOfAnotherProcess(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K-mine")
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	stray := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-stray", Berichtkenmerk: store.StatusBerichtkenmerk("500", at),
		Subject: "NL001000044B37", Note: "status 500 for kenmerk K-stray"})
	_, err := f.LinkONB(ctx, stray, q.Number, "ops", "the authority's answer under an old kenmerk")
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "was delivered as Digipoort process K-mine") ||
		!strings.Contains(err.Error(), fmt.Sprintf("starter delivery adopt %d K-stray", q.Number)) ||
		!strings.Contains(err.Error(), fmt.Sprintf("starter onb resolve %d --memo", stray)) {
		t.Fatalf("want a refusal that says adopt or resolve, got %v", err)
	}
	if st := f.status(q.Number); st != domain.StatusSent {
		t.Fatalf("the message's status must not change: %s", st)
	}
	if n := f.count(`SELECT count(*) FROM status_events WHERE message_number = $1`, q.Number); n != 0 {
		t.Fatalf("no status may be applied: %d", n)
	}
	if o, err := f.UnknownReply(ctx, stray); err != nil || !o.Open {
		t.Fatalf("the unknown reply stays open: %+v %v", o, err)
	}
}

// A status whose process is the message's delivery (adopted after the status was kept
// as an unknown reply) is linked and applied; the highest status wins; linking again is
// a no-op success that reports the reply as it was, for its workflow to be told.
func TestLinkONBAppliesAStatusOfItsOwnDelivery(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	accepted := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-late", Berichtkenmerk: store.StatusBerichtkenmerk("500", at),
		Subject: "NL001000044B37"})
	low := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-late", Berichtkenmerk: store.StatusBerichtkenmerk("100", at.Add(-time.Hour))})
	f.deliver(q.Number, "K-late")
	res, err := f.LinkONB(ctx, accepted, q.Number, "ops", "its own process")
	if err != nil || res.Code != "500" || res.Status != domain.StatusAccepted || res.Already {
		t.Fatalf("link: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM status_events WHERE message_number = $1 AND kenmerk = 'K-late' AND code = '500' AND applied
		AND NOT signaled`, q.Number); n != 1 {
		t.Fatalf("the status must be a reply of the delivery, waiting to be told to the workflow: %d", n)
	}
	again, err := f.LinkONB(ctx, accepted, q.Number, "ops", "")
	if err != nil || !again.Already || again.Status != domain.StatusAccepted || again.Reply.PickupKenmerk != "K-late" || again.Reply.Number != accepted {
		t.Fatalf("link again: %+v %v", again, err)
	}
	if n := f.count(`SELECT count(*) FROM status_events WHERE message_number = $1`, q.Number); n != 1 {
		t.Fatalf("the status is stored once: %d", n)
	}
	if res, err := f.LinkONB(ctx, low, q.Number, "ops", ""); err != nil || res.Status != domain.StatusAccepted {
		t.Fatalf("a lower status must not lower the message: %+v %v", res, err)
	}
	fate, err := f.UnknownReplyFate(ctx, accepted)
	if err != nil || fate != (store.ONBFate{LinkedTo: q.Number}) {
		t.Fatalf("fate of a linked reply: %+v %v", fate, err)
	}
}

// Linking a document is one transaction, and a retry of a link that was done (the
// command line died before telling the workflow) is a no-op success.
func TestLinkONBDocumentRetryIsANoOp(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K-mine")
	doc := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-doc", Berichtkenmerk: "b1", Berichtsoort: "Omzetbelasting", Subject: "001000044B37",
		FileName: "antwoord.xml", Content: []byte("<antwoord/>")})
	if fate, err := f.UnknownReplyFate(ctx, doc); err != nil || fate != (store.ONBFate{Open: true}) {
		t.Fatalf("fate of an open reply: %+v %v", fate, err)
	}
	first, err := f.LinkONB(ctx, doc, q.Number, "ops", "")
	if err != nil || first.Already {
		t.Fatalf("link: %+v %v", first, err)
	}
	again, err := f.LinkONB(ctx, doc, q.Number, "ops", "")
	if err != nil || !again.Already || again.Reply.PickupKenmerk != "K-doc" || again.Reply.Berichtsoort != "Omzetbelasting" {
		t.Fatalf("retry: %+v %v", again, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND description LIKE 'ops linked unknown reply%'`, q.Number); n != 1 {
		t.Fatalf("one link, logged once: %d", n)
	}
}

// A document linked to a message becomes its reply document, with its attachment.
// Linking is refused where it makes no sense, with the reason.
func TestLinkONBDocumentAndRefusals(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	other := f.queue("acme", domain.TypeVAT, "009999999B01", "2026-10")
	undelivered := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-11")
	f.deliver(q.Number, "K-mine")
	doc := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-doc", Berichtkenmerk: "b1", Berichtsoort: "Omzetbelasting", Subject: "001000044B37",
		FileName: "antwoord.xml", Content: []byte("<antwoord/>")})
	status := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-s", Berichtkenmerk: store.StatusBerichtkenmerk("500", time.Now())})

	refused := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: want a refusal saying %q, got %v", what, want, err)
		}
	}
	_, err := f.LinkONB(ctx, doc, other.Number, "ops", "")
	refused("another subject", err, `is about belanghebbende "001000044B37"`)
	_, err = f.LinkONB(ctx, doc, status, "ops", "")
	refused("an incoming message", err, "is an incoming message")
	_, err = f.LinkONB(ctx, status, undelivered.Number, "ops", "")
	refused("a status to a message never delivered", err, "has no delivery with a kenmerk")
	_, err = f.LinkONB(ctx, q.Number, q.Number, "ops", "")
	refused("an outgoing message as the reply", err, "is not an unknown reply")
	if _, err := f.LinkONB(ctx, doc, 99999999, "ops", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a missing message: %v", err)
	}

	res, err := f.LinkONB(ctx, doc, q.Number, "ops", "")
	if err != nil || res.Code != "" || res.Status != domain.StatusSent {
		t.Fatalf("link a document: %+v %v", res, err)
	}
	if n := f.count(`SELECT count(*) FROM attachments a JOIN messages m ON m.number = a.message_number WHERE m.reply_to = $1`, q.Number); n != 1 {
		t.Fatalf("the document must be the message's reply document: %d", n)
	}
	_, err = f.LinkONB(ctx, doc, undelivered.Number, "ops", "")
	refused("linked elsewhere already", err, "is a reply of message")
	if open, err := f.UnknownReplies(ctx, false, 10); err != nil || len(open) != 1 || open[0].Number != status {
		t.Fatalf("only the status is open still: %+v %v", open, err)
	}
}

// Resolving needs a memo, keeps the reply's own memo before it, logs who and why, and
// a resolved reply is not linked any more.
func TestResolveONB(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K-mine")
	n := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-s", Berichtkenmerk: store.StatusBerichtkenmerk("100", time.Now()), Note: "status 100 for K-s"})
	if _, err := f.ResolveONB(ctx, n, "ops", "  "); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("resolve without memo: %v", err)
	}
	res, err := f.ResolveONB(ctx, n, "ops", "test traffic of the other system")
	if err != nil || res.Already {
		t.Fatalf("resolve: %+v %v", res, err)
	}
	o, err := f.UnknownReply(ctx, n)
	if err != nil || o.Open || o.Memo != "status 100 for K-s\nresolved by ops: test traffic of the other system" {
		t.Fatalf("resolved: %+v %v", o, err)
	}
	if c := f.count(`SELECT count(*) FROM communication_log WHERE message_number = $1 AND level = 'I' AND description LIKE 'ops resolved unknown reply%'
		AND memo = 'test traffic of the other system'`, n); c != 1 {
		t.Fatalf("one I line: %d", c)
	}
	if again, err := f.ResolveONB(ctx, n, "ops", "again"); err != nil || !again.Already {
		t.Fatalf("resolve again: %+v %v", again, err)
	}
	if _, err := f.LinkONB(ctx, n, q.Number, "ops", ""); !errors.Is(err, store.ErrRefused) {
		t.Fatalf("link a resolved reply: %v", err)
	}
	if _, err := f.ResolveONB(ctx, q.Number, "ops", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resolve an outgoing message: %v", err)
	}
	if open, _ := f.UnknownReplies(ctx, false, 10); len(open) != 0 {
		t.Fatalf("nothing open: %+v", open)
	}
	if all, _ := f.UnknownReplies(ctx, true, 10); len(all) != 1 {
		t.Fatalf("--all lists the resolved one: %+v", all)
	}
}

// The replies a run just stored are read in one query: open and resolved ones, and
// nothing for an outgoing message or a number that is gone.
func TestUnknownRepliesOf(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	open := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-a", Berichtkenmerk: "r-a", Content: []byte("a")})
	resolved := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-b", Berichtkenmerk: "r-b", Content: []byte("b")})
	if _, err := f.ResolveONB(ctx, resolved, "ops", "test traffic"); err != nil {
		t.Fatal(err)
	}
	got, err := f.UnknownRepliesOf(ctx, []int64{resolved, q.Number, open, 999999999})
	if err != nil || len(got) != 2 || got[0].Number != open || got[1].Number != resolved || got[0].PickupKenmerk != "K-a" ||
		!got[0].Open || got[1].Open {
		t.Fatalf("want the open %d and the resolved %d, got %+v %v", open, resolved, got, err)
	}
	if none, err := f.UnknownRepliesOf(ctx, nil); err != nil || len(none) != 0 {
		t.Fatalf("no numbers: %+v %v", none, err)
	}
}

// Rule 8: an open unknown reply is never cleaned up; a resolved one is, once it is as
// old as the retention counted from its resolution, by selection and by the sweep; a
// linked one goes with its message.
func TestCleanupUnknownReplies(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	open := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-1", Berichtkenmerk: "b1", Content: []byte("<a/>")})
	resolvedOld := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-2", Berichtkenmerk: "b2", Content: []byte("<b/>")})
	resolvedNew := f.storeONB(store.IncomingDoc{PickupKenmerk: "K-3", Berichtkenmerk: "b3", Content: []byte("<c/>")})
	for _, n := range []int64{resolvedOld, resolvedNew} {
		if _, err := f.ResolveONB(ctx, n, "ops", "noise"); err != nil {
			t.Fatal(err)
		}
	}
	f.age(open, 40, domain.StatusReceived)
	f.age(resolvedOld, 40, domain.StatusReceived)

	sel, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{open, resolvedNew}, DryRun: true})
	if err != nil || len(sel.Refused) != 2 || !strings.Contains(sel.Refused[0].Reason, "open unknown reply") ||
		!strings.Contains(sel.Refused[1].Reason, "less than the retention") {
		t.Fatalf("open and freshly resolved replies must be refused with the reason: %+v %v", sel, err)
	}
	sweep, err := f.Cleanup(ctx, pipeline.CleanupRequest{})
	if err != nil || len(sweep.Removed) != 1 || sweep.Removed[0] != resolvedOld || sweep.Attachments != 1 {
		t.Fatalf("the sweep removes the old resolved reply only: %+v %v", sweep, err)
	}
	for _, n := range []int64{open, resolvedNew} {
		if c := f.count(`SELECT count(*) FROM messages WHERE number = $1`, n); c != 1 {
			t.Fatalf("message %d must stay", n)
		}
	}

	// Linked, it is the message's reply document and leaves with it.
	q := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	f.deliver(q.Number, "K-mine")
	if _, err := f.LinkONB(ctx, open, q.Number, "ops", ""); err != nil {
		t.Fatal(err)
	}
	f.age(q.Number, 40, domain.StatusSent)
	out, err := f.Cleanup(ctx, pipeline.CleanupRequest{Numbers: []int64{q.Number}})
	if err != nil || len(out.Removed) != 1 {
		t.Fatalf("clean up the message: %+v %v", out, err)
	}
	if c := f.count(`SELECT count(*) FROM messages WHERE number = $1`, open); c != 0 {
		t.Fatal("the linked reply must go with its message")
	}
}
