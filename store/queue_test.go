package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"koerier/domain"
	"koerier/store"
)

func TestQueueAssignsNumberAndVersions(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	q1 := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	if q1.Number < 1000001 || q1.Version != 1 || q1.Status != domain.StatusQueued || q1.Existing {
		t.Fatalf("first: %+v", q1)
	}
	q2 := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	if q2.Number == q1.Number || q2.Version != 2 {
		t.Fatalf("second version: %+v", q2)
	}
	other := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-11")
	if other.Version != 1 {
		t.Errorf("another period is another declaration: %+v", other)
	}
	atts, err := f.Attachments(ctx, q1.Number)
	if err != nil || len(atts) != 1 || atts[0].Size != int64(len(xbrl(1).Content)) || len(atts[0].SHA256) != 32 ||
		!bytes.Equal(atts[0].Content, xbrl(1).Content) {
		t.Fatalf("attachments: %+v %v", atts, err)
	}
}

// Rule 3 (docs/rules.md): queuing a newer version marks older unsent versions do-not-send, and only
// those.
func TestNewerVersionMarksOlderUnsentDoNotSend(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	sent := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.deliver(sent.Number, "K-sent")
	failed := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	f.exec(`UPDATE messages SET status = 'send_failed' WHERE number = $1`, failed.Number)
	queued := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	latest := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	if latest.Version != 4 {
		t.Fatalf("version %d", latest.Version)
	}
	want := map[int64]bool{sent.Number: false, failed.Number: true, queued.Number: true, latest.Number: false}
	for n, dns := range want {
		m, _ := f.Message(ctx, n)
		if m.DoNotSend != dns {
			t.Errorf("message %d (%s) do-not-send = %v, want %v", n, m.Status, m.DoNotSend, dns)
		}
	}
	if len(latest.Superseded) != 1 || latest.Superseded[0] != queued.Number {
		// failed was marked by the third version already
		t.Errorf("superseded by latest: %v", latest.Superseded)
	}
	due, _ := f.DueMessages(ctx, 0, 100)
	if len(due) != 1 || due[0].Number != latest.Number {
		t.Errorf("only the latest version is due: %+v", due)
	}
	logs, _ := f.ReadLog(ctx, store.LogFilter{Message: queued.Number})
	if len(logs) == 0 || !strings.Contains(logs[0].Description, "do-not-send") {
		t.Errorf("do-not-send must be logged with its reason: %+v", logs)
	}
}

// Rule 1: queue is idempotent per environment and client reference.
func TestQueueIdempotentPerClientReference(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("beta")
	req := store.QueueRequest{
		Environment:     "acme",
		Type:            domain.TypeICP,
		Subject:         "NL001000044B37",
		Period:          "2026-Q3",
		ClientReference: "boekhouding-42",
		Attachments:     []domain.Attachment{xbrl(1)},
	}
	a, err := f.Queue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Queue(ctx, req)
	if err != nil || !b.Existing || b.Number != a.Number || b.Version != 1 {
		t.Fatalf("again: %+v %v", b, err)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 1 {
		t.Fatalf("%d messages stored, want 1", n)
	}
	changed := req
	changed.Attachments = []domain.Attachment{xbrl(2)}
	if _, err := f.Queue(ctx, changed); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "other content") {
		t.Errorf("same reference, other content: %v", err)
	}
	otherMemo := req
	otherMemo.Memo = "another memo"
	if _, err := f.Queue(ctx, otherMemo); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same reference, another memo: %v", err)
	}
	otherEnv := req
	otherEnv.Environment = "beta"
	if c, err := f.Queue(ctx, otherEnv); err != nil || c.Existing {
		t.Errorf("the reference is per environment: %+v %v", c, err)
	}
}

func TestConcurrentQueueSameReferenceStoresOnce(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	req := store.QueueRequest{
		Environment:     "acme",
		Type:            domain.TypeVAT,
		Subject:         "001000044B37",
		Period:          "2026-10",
		ClientReference: "ref",
		Attachments:     []domain.Attachment{xbrl(1)},
	}
	const n = 12
	var wg sync.WaitGroup
	numbers := make([]int64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q, err := f.Queue(ctx, req)
			numbers[i], errs[i] = q.Number, err
		}(i)
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if numbers[i] != numbers[0] {
			t.Fatalf("callers got different messages: %v", numbers)
		}
	}
	if c := f.count(`SELECT count(*) FROM messages`); c != 1 {
		t.Fatalf("%d messages stored", c)
	}
}

func TestConcurrentVersionsAreUnique(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	const n = 10
	var wg sync.WaitGroup
	versions := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, err := f.Queue(
				ctx,
				store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "001000044B37", Period: "2026-10",
					Attachments: []domain.Attachment{xbrl(1)}},
			)
			if err != nil {
				t.Error(err)
				return
			}
			versions <- q.Version
		}()
	}
	wg.Wait()
	close(versions)
	seen := map[int]bool{}
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %d given twice", v)
		}
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Errorf("version %d missing", v)
		}
	}
	if c := f.count(`SELECT count(*) FROM messages WHERE NOT do_not_send`); c != 1 {
		t.Errorf("%d versions may be sent, want only the latest", c)
	}
}

func TestQueueRefusesBadInputAndStoresNothing(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	f.env("old")
	if _, err := f.RemoveEnvironment(ctx, "old"); err != nil {
		t.Fatal(err)
	}
	ok := store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "001000044B37", Period: "2026-10", Attachments: []domain.Attachment{xbrl(1)}}
	mod := func(fn func(r *store.QueueRequest)) store.QueueRequest {
		r := ok
		r.Attachments = append([]domain.Attachment(nil), ok.Attachments...)
		fn(&r)
		return r
	}
	cases := []struct {
		name string
		req  store.QueueRequest
		kind error
		want string
	}{
		{"unknown environment", mod(func(r *store.QueueRequest) { r.Environment = "nope" }), store.ErrNotFound, "does not exist"},
		{"removed environment", mod(func(r *store.QueueRequest) { r.Environment = "old" }), store.ErrRefused, "was removed"},
		{"unknown type", mod(func(r *store.QueueRequest) { r.Type = "btw2" }), store.ErrInvalid, "unknown message type"},
		{"e-invoice that is no UBL", mod(func(r *store.QueueRequest) { r.Type = domain.TypeEInvoice }), store.ErrInvalid, "ubl.namespace"},
		{"empty file", mod(func(r *store.QueueRequest) { r.Attachments[0].Content = nil }), store.ErrInvalid, "is empty"},
		{"oversized file", mod(func(r *store.QueueRequest) {
			r.Attachments[0] = domain.Attachment{FileName: "a.pdf", MimeType: "application/pdf", Content: make([]byte, domain.MaxAttachmentSize+1)}
		}), store.ErrInvalid, "20 MiB"},
		{"malformed xml", mod(func(r *store.QueueRequest) { r.Attachments[0].Content = []byte("<xbrl><a></xbrl>") }), store.ErrInvalid, "not well-formed"},
		{"truncated xml", mod(func(r *store.QueueRequest) { r.Attachments[0].Content = xbrl(1).Content[:40] }), store.ErrInvalid, "not well-formed"},
		{"invalid utf-8", mod(func(r *store.QueueRequest) { r.Attachments[0].Content = []byte("<a>\xc3\x28</a>") }), store.ErrInvalid, "UTF-8"},
		{"no attachment", mod(func(r *store.QueueRequest) { r.Attachments = nil }), store.ErrInvalid, "at least one file"},
		{"long subject", mod(func(r *store.QueueRequest) { r.Subject = strings.Repeat("1", 36) }), store.ErrInvalid, "at most 35"},
		{"empty period", mod(func(r *store.QueueRequest) { r.Period = "" }), store.ErrInvalid, "period is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.Queue(ctx, c.req)
			if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %v containing %q", err, c.kind, c.want)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM messages`) + f.count(`SELECT count(*) FROM attachments`); n != 0 {
		t.Fatalf("%d rows stored by refused queue calls", n)
	}
	unconfigured, _ := domain.DefaultCatalog().Lookup(domain.TypeIncomeTax)
	if err := unconfigured.ReadyToQueue(domain.Profile{}); err == nil {
		t.Fatal("default catalog must not know ib's berichtsoort")
	}
}

// See "Further files" in docs/rules.md: further files go as berichtBijlagen where the type's
// process takes them, and are refused, never dropped, where it does not.
func TestQueueManyAttachments(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	var atts []domain.Attachment
	for i := 0; i < 3; i++ {
		atts = append(atts, domain.Attachment{FileName: fmt.Sprintf("bijlage-%d.pdf", i), MimeType: "application/pdf", Content: []byte{byte(i + 1)}})
	}
	req := store.QueueRequest{Environment: "acme", Type: domain.TypeKvK, Subject: "12345678", Period: "2025",
		Attachments: append([]domain.Attachment{xbrl(1)}, atts...)}
	_, err := f.Queue(ctx, req)
	if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "bijlage-0.pdf, bijlage-1.pdf, bijlage-2.pdf") ||
		!strings.Contains(err.Error(), "KOERIER_BIJLAGEN=kvk=yes") || !strings.Contains(err.Error(), "never drops a file") {
		t.Fatalf("kvk takes no attachments by default: got %v", err)
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("a refused message was stored")
	}

	cat, err := domain.DefaultCatalog().WithBerichtsoorten("kvk=KVK_TEST")
	if err == nil {
		cat, err = cat.WithAttachments("kvk=yes")
	}
	if err != nil {
		t.Fatal(err)
	}
	q, err := newStoreWith(t, f.url, cat).Queue(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := f.Attachments(ctx, q.Number)
	if len(got) != 4 || got[0].FileName != "aangifte.xbrl" || got[3].FileName != "bijlage-2.pdf" {
		t.Fatalf("attachments: %d", len(got))
	}
	m, _ := f.Message(ctx, q.Number)
	if m.Berichtsoort != "KVK_TEST" || m.IdentityType != "kvk" || m.Fiscal {
		t.Errorf("type spec not stored: %+v", m)
	}
}

// See "One form for subject and period" in docs/rules.md: two spellings of one subject or
// period are one declaration: one version numbering, and one delivery in flight at a time.
func TestSpellingsOfOneSubjectAreOneDeclaration(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	req := func(subject, period string) store.QueueRequest {
		return store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: subject, Period: period, Attachments: []domain.Attachment{xbrl(1)}}
	}
	v1, err := f.Queue(ctx, req("001000044B37", "2026-q3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.BeginDelivery(ctx, v1.Number); err != nil { // its answer is lost: the outcome is not known
		t.Fatal(err)
	}
	v2, err := f.Queue(ctx, req("ＮＬ 0010.00.044.b37\u200b", "\u00a02026-Q3 "))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.DeclarationKey != v1.DeclarationKey || v2.Subject != "001000044B37" || v2.Period != "2026-Q3" {
		t.Fatalf("another spelling must be version 2 of the same declaration: v1 %+v, v2 %+v", v1, v2)
	}
	m, _ := f.Message(ctx, v2.Number)
	if m.Subject != "001000044B37" || m.Period != "2026-Q3" || *m.DeclarationKey != "acme/btw/001000044B37/2026-Q3" {
		t.Errorf("stored: subject %q period %q key %q", m.Subject, m.Period, *m.DeclarationKey)
	}
	plan, err := f.BeginDelivery(ctx, v2.Number)
	if err != nil || !strings.Contains(plan.Wait, fmt.Sprint(v1.Number)) {
		t.Fatalf("version 2 must wait for version 1's open delivery: %+v %v", plan, err)
	}
	for name, r := range map[string]store.QueueRequest{
		"bell in subject":      req("001000044B37\a", "2026-Q3"),
		"line break in period": req("001000044B37", "2026\nQ3"),
		"bidi override":        req("\u202e001000044B37", "2026-Q3"),
	} {
		if _, err := f.Queue(ctx, r); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), "control character") {
			t.Errorf("%s: %v, want ErrInvalid naming the control character", name, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 2 {
		t.Errorf("%d messages, want the two versions", n)
	}
}

// See "Identity of the belanghebbende" and "One form for subject and period" in docs/rules.md:
// a subject that does not fit the type's identity, and a first file that is not the
// declaration the type expects, are refused at queue time with what was expected and what was
// found.
func TestQueueRefusesWhatCannotBeFiled(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	png := domain.Attachment{FileName: "aangifte.png", MimeType: "image/png",
		Content: []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")}
	pngAsXML := png
	pngAsXML.MimeType = "application/xml"
	notXBRL := domain.Attachment{FileName: "a.xml", MimeType: "application/xml", Content: []byte(`<aangifte><omzet>1</omzet></aangifte>`)}
	for _, c := range []struct {
		name    string
		typ     domain.MessageType
		subject string
		file    domain.Attachment
		want    []string
	}{
		{"png", domain.TypeVAT, "001000044B37", png, []string{"aangifte.png", "declared as image/png", "XBRL instance"}},
		{"png declared xml", domain.TypeVAT, "001000044B37", pngAsXML, []string{"looks like image/png"}},
		{"not xbrl", domain.TypeICP, "001000044B37", notXBRL, []string{"root element is <aangifte> in no namespace", "xbrli:xbrl"}},
		{"vat subject", domain.TypeVAT, "12345", xbrl(1), []string{`subject "12345"`, "identity type BTW", "NL, 9 digits, B, 2 digits"}},
		{"bsn subject", domain.TypeIncomeTax, "123456789", xbrl(1), []string{"elfproef", "identity type Fi"}},
		{"kvk subject", domain.TypeKvK, "NL001000044B37", xbrl(1), []string{"KvK number: 8 digits"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: c.typ, Subject: c.subject, Period: "2026",
				Attachments: []domain.Attachment{c.file}})
			for _, w := range c.want {
				if !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), w) {
					t.Fatalf("got %v, want ErrInvalid containing %q", err, w)
				}
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM messages`); n != 0 {
		t.Fatalf("%d messages stored by refused calls", n)
	}
}

// See "Identity of the belanghebbende" in docs/rules.md: the identity type is kept with each
// message when it is queued; a change of setting changes what is queued afterwards, never a
// message in flight.
func TestIdentityTypeIsKeptWithTheMessage(t *testing.T) {
	f := newStore(t)
	f.env("acme")
	btw := f.queue("acme", domain.TypeVAT, "001000044B37", "2026-10")
	cat, err := domain.DefaultCatalog().WithIdentityTypes("btw=Fi")
	if err != nil {
		t.Fatal(err)
	}
	after := newStoreWith(t, f.url, cat) // the service restarted with KOERIER_IDENTITY_TYPES=btw=Fi
	fi, err := after.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "NL001000044B37", Period: "2026-11",
		Attachments: []domain.Attachment{xbrl(1)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		number         int64
		idType, nummer string
	}{{btw.Number, domain.IdentityBTW, "NL001000044B37"}, {fi.Number, domain.IdentityFi, "001000044B37"}} {
		plan, err := after.BeginDelivery(ctx, c.number)
		if err != nil || plan.IdentityType != c.idType || domain.IdentityNumber(plan.IdentityType, plan.Subject) != c.nummer {
			t.Fatalf("message %d: plan %+v %v; want identity %s %s", c.number, plan, err, c.idType, c.nummer)
		}
		if err := after.RecordDelivered(ctx, c.number, plan.Attempt, fmt.Sprintf("K-%d", c.number), ""); err != nil {
			t.Fatal(err)
		}
	}
	// A reply names the belanghebbende as it was sent; it finds the message either way.
	ref := domain.Aanleverkenmerk(domain.DefaultAanleverkenmerkPrefix, btw.Number, 1)
	res, err := after.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: "K-unknown", Berichtkenmerk: "b1", Aanleverkenmerk: ref,
		Berichtsoort: "Omzetbelasting", Subject: "NL001000044B37", Content: []byte("<ok/>")}})
	if err != nil || len(res.Linked[btw.Number]) != 1 {
		t.Fatalf("a reply about NL001000044B37 must link to the message about 001000044B37: %+v %v", res, err)
	}
}
