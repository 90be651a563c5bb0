package store_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/store"
)

// exampleInvoice is the Peppol BIS Billing 3.0 example (invoice 2026-0417 of Drukkerij
// Voorbeeld B.V. to crediteuren@klant.example, EUR 447.70), with the edits given as
// old, new pairs.
func exampleInvoice(t *testing.T, edits ...string) []byte {
	t.Helper()
	b, err := os.ReadFile("../domain/testdata/einvoice/example-invoice.xml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("the example has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	return []byte(s)
}

func renumbered(t *testing.T, number string) []byte {
	return exampleInvoice(t, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>"+number+"</cbc:ID>")
}

func invoiceFile(content []byte) []domain.Attachment {
	return []domain.Attachment{{FileName: "factuur.xml", MimeType: "text/xml", Content: content}}
}

// mailEnv adds an environment with an e-mail profile on the local server.
func (f *fixture) mailEnv(name string) store.Environment {
	f.t.Helper()
	e := f.env(name)
	if err := f.SetMailProfile(ctx, name, store.MailProfile{From: name + "@koerier.test",
		SMTP: store.MailServer{Host: "127.0.0.1", Port: 2525, Security: "none"},
		IMAP: store.MailServer{Host: "127.0.0.1", Port: 1143, Security: "none", User: name}, Local: true}, "tester"); err != nil {
		f.t.Fatal(err)
	}
	return e
}

// Issue 13: an e-invoice is checked before it is queued, goes under its own number and
// month to the customer's address, and is refused (nothing stored) when the check fails.
func TestQueueEInvoice(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	f.env("plain")
	acme := f.mailEnv("acme")

	_, err := f.Queue(ctx, store.QueueRequest{Environment: "plain", Type: domain.TypeEInvoice, Attachments: invoiceFile(exampleInvoice(t))})
	if !errors.Is(err, store.ErrRefused) || !strings.Contains(err.Error(), "environment plain has none") ||
		!strings.Contains(err.Error(), "starter environments set plain --local-mail") {
		t.Fatalf("environment without profile: %v", err)
	}

	q, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeEInvoice, Attachments: invoiceFile(exampleInvoice(t))})
	if err != nil {
		t.Fatal(err)
	}
	if q.Subject != "2026-0417" || q.Period != "2026-11" || q.Version != 1 {
		t.Fatalf("queued: %+v", q)
	}
	m, err := f.Message(ctx, q.Number)
	if err != nil || m.Channel != domain.ChannelEmail || m.Recipient == nil || *m.Recipient != "crediteuren@klant.example" {
		t.Fatalf("message: %+v %v", m, err)
	}
	atts, err := f.Attachments(ctx, q.Number)
	if err != nil || len(atts) != 1 || atts[0].MimeType != "application/xml" || atts[0].FileName != "factuur.xml" {
		t.Fatalf("attachment: %+v %v", atts, err)
	}
	plan, err := f.BeginDelivery(ctx, q.Number)
	if err != nil || plan.Refused != "" || plan.Wait != "" || plan.Channel != domain.ChannelEmail || plan.Recipient != "crediteuren@klant.example" ||
		plan.EnvironmentID != acme.ID || plan.MessageType != string(domain.TypeEInvoice) {
		t.Fatalf("delivery plan: %+v %v", plan, err)
	}

	// An address given at queue time goes first; a Digipoort type has none.
	q2, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeEInvoice, Recipient: "Boekhouding <boekhouding@klant.example>",
		Attachments: invoiceFile(renumbered(t, "2026-0418"))})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := f.Message(ctx, q2.Number); m.Recipient == nil || *m.Recipient != "boekhouding@klant.example" {
		t.Fatalf("given recipient: %+v", m.Recipient)
	}
	vat := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	if m, _ := f.Message(ctx, vat.Number); m.Channel != domain.ChannelDigipoort || m.Recipient != nil {
		t.Fatalf("a VAT return: channel %s recipient %v", m.Channel, m.Recipient)
	}
	if _, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeVAT, Subject: "001000044B37", Period: "2026-10",
		Recipient: "x@y.example", Attachments: []domain.Attachment{xbrl(1)}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a recipient for a VAT return: %v", err)
	}

	messages, attachments := f.count(`SELECT count(*) FROM messages`), f.count(`SELECT count(*) FROM attachments`)
	for name, c := range map[string]struct {
		req  store.QueueRequest
		rule string
	}{
		"sums": {store.QueueRequest{Attachments: invoiceFile(exampleInvoice(t,
			`<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`, `<cbc:PayableAmount currencyID="EUR">457.70</cbc:PayableAmount>`))}, ""},
		"not UBL":          {store.QueueRequest{Attachments: []domain.Attachment{xbrl(1)}}, ""},
		"not XML":          {store.QueueRequest{Attachments: invoiceFile([]byte("%PDF-1.7 not an invoice"))}, "ubl.well-formed"},
		"customer address": {store.QueueRequest{Attachments: invoiceFile(customerWithoutAddress(t))}, "ubl.customer-address"},
		"bad address given": {store.QueueRequest{Recipient: "niet een adres",
			Attachments: invoiceFile(exampleInvoice(t))}, "ubl.customer-address"},
	} {
		c.req.Environment, c.req.Type = "acme", domain.TypeEInvoice
		_, err := f.Queue(ctx, c.req)
		var ee *domain.EInvoiceError
		if !errors.Is(err, store.ErrInvalid) || !errors.As(err, &ee) || !strings.HasPrefix(err.Error(), ee.Rule+": ") ||
			(c.rule != "" && ee.Rule != c.rule) {
			t.Errorf("%s: %v (rule %+v)", name, err, ee)
		}
	}
	// A subject or period that is not the invoice's is refused; the invoice's own are fine.
	for _, req := range []store.QueueRequest{{Subject: "2026-0999"}, {Period: "2026-10"}, {Attachments: append(invoiceFile(exampleInvoice(t)), xbrl(1))}} {
		req.Environment, req.Type = "acme", domain.TypeEInvoice
		if req.Attachments == nil {
			req.Attachments = invoiceFile(renumbered(t, "2026-0500"))
		}
		if _, err := f.Queue(ctx, req); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%+v: %v", req.Subject+req.Period, err)
		}
	}
	if n, a := f.count(`SELECT count(*) FROM messages`), f.count(`SELECT count(*) FROM attachments`); n != messages || a != attachments {
		t.Fatalf("a refused e-invoice stored something: messages %d → %d, attachments %d → %d", messages, n, attachments, a)
	}
	if _, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeEInvoice, Subject: "2026-0600", Period: "2026-11",
		Attachments: invoiceFile(renumbered(t, "2026-0600"))}); err != nil {
		t.Fatalf("the invoice's own subject and period: %v", err)
	}
}

func customerWithoutAddress(t *testing.T) []byte {
	return exampleInvoice(t,
		`<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`, ``,
		`<cac:Contact><cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>`, ``)
}

// Send/receive asks Digipoort only about Digipoort deliveries.
func TestInFlightLeavesOutEmail(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	f.mailEnv("acme")
	vat := f.queue("acme", domain.TypeVAT, "1", "2026-10")
	inv, err := f.Queue(ctx, store.QueueRequest{Environment: "acme", Type: domain.TypeEInvoice, Attachments: invoiceFile(exampleInvoice(t))})
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(vat.Number, "KM-VAT-1")
	f.deliver(inv.Number, "mail-1")
	if f.status(inv.Number) != domain.StatusSent {
		t.Fatalf("the e-invoice is not sent: %s", f.status(inv.Number))
	}
	got, err := f.InFlightDeliveries(ctx, 0, 100)
	if err != nil || len(got) != 1 || got[0].Number != vat.Number {
		t.Fatalf("in flight: %+v %v", got, err)
	}
	plan := f.explainer()(`SELECT m.number FROM messages m WHERE m.direction = 'out' AND m.channel = 'digipoort'
		AND m.status = ANY('{sent,receipt_confirmed,in_progress}') AND m.number > 0 ORDER BY m.number LIMIT 10`)
	if !strings.Contains(plan, "messages_in_flight") {
		t.Fatalf("the in-flight page does not use messages_in_flight:\n%s", plan)
	}
}

func received(t *testing.T, name string, content []byte) store.ReceivedInvoice {
	t.Helper()
	inv, err := domain.ReadEInvoice(content)
	if err != nil {
		t.Fatal(err)
	}
	return store.ReceivedInvoice{FileName: name, Content: content, Invoice: inv}
}

// Issue 13: received invoices are stored once per mail and once per supplier and number;
// a mail without a usable UBL is kept for an operator.
func TestStoreIncomingMail(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	acme := f.mailEnv("acme")
	beta := f.mailEnv("beta")

	first := store.IncomingMail{EnvironmentID: acme.ID, MessageID: "<a1@drukkerij.example>", From: "facturen@drukkerij.example",
		Subject: "Factuur 2026-0417", Raw: []byte("raw mail 1"), Invoices: []store.ReceivedInvoice{received(t, "2026-0417.xml", exampleInvoice(t))}}
	res, err := f.StoreIncomingMail(ctx, first)
	if err != nil || len(res.Stored) != 1 || len(res.Duplicates) != 0 || res.Unknown != 0 || res.AlreadySeen {
		t.Fatalf("first mail: %+v %v", res, err)
	}
	m, err := f.Message(ctx, res.Stored[0])
	if err != nil || m.Direction != domain.DirectionIn || m.Type != string(domain.TypeEInvoice) || m.Status != domain.StatusReceived ||
		m.Channel != domain.ChannelEmail || m.Subject != "2026-0417" || m.Period != "2026-11" || deref(m.EnvironmentID) != acme.ID {
		t.Fatalf("stored invoice: %+v %v", m, err)
	}
	messages := f.count(`SELECT count(*) FROM messages`)
	again, err := f.StoreIncomingMail(ctx, first)
	if err != nil || !again.AlreadySeen || len(again.Stored) != 0 || f.count(`SELECT count(*) FROM messages`) != messages {
		t.Fatalf("the same mail again: %+v %v", again, err)
	}

	// Two invoices in one mail, one of them received before.
	second := store.IncomingMail{EnvironmentID: acme.ID, MessageID: "<a2@drukkerij.example>", From: "facturen@drukkerij.example",
		Raw: []byte("raw mail 2"), Invoices: []store.ReceivedInvoice{received(t, "a.xml", exampleInvoice(t)), received(t, "b.xml", renumbered(t, "2026-0418"))}}
	res2, err := f.StoreIncomingMail(ctx, second)
	if err != nil || len(res2.Stored) != 1 || len(res2.Duplicates) != 1 {
		t.Fatalf("mail with a duplicate: %+v %v", res2, err)
	}
	wantDup := "invoice 2026-0417 from Drukkerij Voorbeeld B.V. is message " + strconv.FormatInt(res.Stored[0], 10) + " already"
	if res2.Duplicates[0] != wantDup {
		t.Fatalf("duplicate: %q, want %q", res2.Duplicates[0], wantDup)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE level = 'I' AND description LIKE '%' || $1 || '%'`, wantDup); n != 1 {
		t.Fatalf("duplicate log lines: %d", n)
	}
	third := store.IncomingMail{EnvironmentID: acme.ID, MessageID: "<a3@drukkerij.example>", Raw: []byte("raw mail 3"),
		Invoices: []store.ReceivedInvoice{received(t, "c.xml", renumbered(t, "2026-0419")), received(t, "d.xml", renumbered(t, "2026-0420"))}}
	if res3, err := f.StoreIncomingMail(ctx, third); err != nil || len(res3.Stored) != 2 {
		t.Fatalf("two new invoices in one mail: %+v %v", res3, err)
	}
	// A mail whose invoices were all stored before is still seen once.
	allDup := store.IncomingMail{EnvironmentID: acme.ID, MessageID: "<a4@drukkerij.example>", Raw: []byte("raw mail 4"),
		Invoices: []store.ReceivedInvoice{received(t, "c.xml", renumbered(t, "2026-0419"))}}
	if r, err := f.StoreIncomingMail(ctx, allDup); err != nil || len(r.Duplicates) != 1 || r.AlreadySeen {
		t.Fatalf("all duplicates: %+v %v", r, err)
	}
	if r, err := f.StoreIncomingMail(ctx, allDup); err != nil || !r.AlreadySeen || len(r.Duplicates) != 0 {
		t.Fatalf("all duplicates again: %+v %v", r, err)
	}
	// The same mail in another environment's mailbox is that environment's.
	first.EnvironmentID = beta.ID
	if r, err := f.StoreIncomingMail(ctx, first); err != nil || len(r.Stored) != 1 || r.AlreadySeen {
		t.Fatalf("the same mail to beta: %+v %v", r, err)
	}

	// No usable UBL: an unknown incoming message with the mail as .eml, needing action.
	longSubject := strings.Repeat("Offerte voor drukwerk ", 10)
	unknown := store.IncomingMail{EnvironmentID: acme.ID, From: "iemand@elders.example", Subject: longSubject,
		Raw: []byte("From: iemand@elders.example\r\nSubject: offerte\r\n\r\nzie bijlage (PDF)\r\n"), Unknown: "no UBL attachment, only a PDF"}
	ru, err := f.StoreIncomingMail(ctx, unknown)
	if err != nil || ru.Unknown == 0 || len(ru.Stored) != 0 {
		t.Fatalf("unknown mail: %+v %v", ru, err)
	}
	onbs, err := f.UnknownReplies(ctx, false, 10)
	if err != nil || len(onbs) != 1 || onbs[0].Number != ru.Unknown || !onbs[0].Open || !strings.Contains(onbs[0].Reason, "only a PDF") ||
		onbs[0].Attachments != 1 {
		t.Fatalf("unknown replies: %+v %v", onbs, err)
	}
	if um, _ := f.Message(ctx, ru.Unknown); um.Subtype != domain.SubtypeONB || deref(um.EnvironmentID) != acme.ID || !um.NeedsAction {
		t.Fatalf("unknown mail message: %+v", um)
	}
	atts, err := f.Attachments(ctx, ru.Unknown)
	if err != nil || len(atts) != 1 || !strings.HasSuffix(atts[0].FileName, ".eml") || len([]rune(atts[0].FileName)) > domain.MaxFileNameLen ||
		string(atts[0].Content) != string(unknown.Raw) || atts[0].MimeType != "message/rfc822" {
		t.Fatalf("unknown mail attachment: %+v %v", atts, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE level = 'F' AND message_number = $1`, ru.Unknown); n != 1 {
		t.Fatalf("F lines of the unknown mail: %d", n)
	}
	// Without Message-ID it is known by its content.
	if r, err := f.StoreIncomingMail(ctx, unknown); err != nil || !r.AlreadySeen {
		t.Fatalf("unknown mail again: %+v %v", r, err)
	}

	// The environment's list, page by page.
	page, err := f.IncomingInvoices(ctx, acme.ID, 0, 2)
	if err != nil || len(page) != 2 {
		t.Fatalf("first page: %+v %v", page, err)
	}
	p0 := page[0]
	if p0.Number != res.Stored[0] || p0.InvoiceNumber != "2026-0417" || p0.Supplier != "Drukkerij Voorbeeld B.V." || p0.Amount != "447.70" ||
		p0.Currency != "EUR" || p0.Status != "received" || p0.Kind != "Invoice" || p0.IssueDate != "2026-11-20" || p0.AttachmentID == 0 ||
		p0.ReceivedAt.IsZero() {
		t.Fatalf("listed invoice: %+v", p0)
	}
	rest, err := f.IncomingInvoices(ctx, acme.ID, page[1].Number, 10)
	if err != nil || len(rest) != 2 || rest[0].InvoiceNumber != "2026-0419" || rest[1].InvoiceNumber != "2026-0420" {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	if b, _ := f.IncomingInvoices(ctx, beta.ID, 0, 10); len(b) != 1 {
		t.Fatalf("beta sees %d invoices", len(b))
	}

	// A removed environment's mail is not stored.
	if _, err := f.RemoveEnvironment(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	second.EnvironmentID = beta.ID
	if _, err := f.StoreIncomingMail(ctx, second); !errors.Is(err, store.ErrRefused) {
		t.Fatalf("removed environment: %v", err)
	}
	if _, err := f.StoreIncomingMail(ctx, store.IncomingMail{EnvironmentID: acme.ID, MessageID: "<x>"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a mail with nothing and no reason: %v", err)
	}
}

func TestIncomingInvoicesUseTheirIndex(t *testing.T) {
	f := newMailStore(t, testdb.New(t), newBox(t))
	plan := f.explainer()(store.IncomingInvoicesQuery, 1, 0, 100)
	if !strings.Contains(plan, "incoming_invoices_environment") {
		t.Fatalf("IncomingInvoices does not use incoming_invoices_environment:\n%s", plan)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
