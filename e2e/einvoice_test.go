package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/internal/service"
	"koerier/internal/testenv"
	"koerier/mail"
	"koerier/pipeline"
	"koerier/store"
)

// exampleInvoice is the Peppol BIS Billing 3.0 example kept in the repository.
func exampleInvoice(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "domain", "testdata", "einvoice", "example-invoice.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localMail gives an environment a profile on the stack's mail server, as `starter
// environments add NAME --local-mail` does.
func localMail(t *testing.T, s *testenv.Stack, env string) store.MailProfile {
	t.Helper()
	host, port := splitHostPort(t, s.Mail.SMTPAddr())
	ihost, iport := splitHostPort(t, s.Mail.IMAPAddr())
	addr := env + "@koerier.test"
	pw := os.Getenv("KOERIER_DEV_MAIL_PASSWORD")
	p := store.MailProfile{From: addr, Local: true,
		SMTP: store.MailServer{Host: host, Port: port, Security: store.SecurityStartTLS, User: addr, Password: pw},
		IMAP: store.MailServer{Host: ihost, Port: iport, Security: store.SecurityTLS, User: addr, Password: pw}}
	if err := s.Store.SetMailProfile(context.Background(), env, p, "test"); err != nil {
		t.Fatal(err)
	}
	return p
}

func splitHostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	h, p, ok := strings.Cut(hp, ":")
	var port int
	if _, err := fmt.Sscanf(p, "%d", &port); !ok || err != nil {
		t.Fatalf("address %q", hp)
	}
	return h, port
}

// queueAndStart queues a message and starts its workflow, as the API and `starter queue`
// do.
func queueAndStart(t *testing.T, s *testenv.Stack, req store.QueueRequest) store.Queued {
	t.Helper()
	q, err := s.Store.Queue(context.Background(), req)
	if err != nil {
		t.Fatalf("queue %s: %v", req.Type, err)
	}
	if err := service.Starter(s.Config, s.Temporal).Start(context.Background(), q.Declaration()); err != nil {
		t.Fatal(err)
	}
	return q
}

// queueInvoice queues an e-invoice and starts its workflow.
func queueInvoice(t *testing.T, s *testenv.Stack, env string, doc []byte, to string) store.Queued {
	t.Helper()
	return queueAndStart(t, s, store.QueueRequest{Environment: env, Type: domain.TypeEInvoice, Recipient: to,
		Attachments: []domain.Attachment{{FileName: "factuur.xml", MimeType: "application/xml", Content: doc}}})
}

// runNow runs a workflow (an environment's e-mail or bank send/receive, as `starter mail|bank
// send-receive` does) and waits at most a minute for its result in out (nil: none);
// a failed start fails the test, the run's own error is returned.
func runNow(t *testing.T, s *testenv.Stack, id, workflowType string, in, out any) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.ControlQueue(s.Config.TaskQueue)}, workflowType, in)
	if err != nil {
		t.Fatal(err)
	}
	return run.Get(ctx, out)
}

// mailSendReceive runs an environment's e-mail send/receive now and waits for it.
func mailSendReceive(t *testing.T, s *testenv.Stack, env string) pipeline.MailSendReceiveResult {
	t.Helper()
	var res pipeline.MailSendReceiveResult
	if err := runNow(t, s, pipeline.MailRunID(env), pipeline.MailSendReceiveWorkflowType,
		pipeline.MailSendReceiveInput{Environment: env, Trigger: "test"}, &res); err != nil {
		t.Fatalf("mail send/receive of %s: %v", env, err)
	}
	return res
}

func messageStatus(t *testing.T, s *testenv.Stack, number int64) store.Message {
	t.Helper()
	m, err := s.Store.Message(context.Background(), number)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Issue 13: an e-invoice goes out from the supplier environment's own mailbox, arrives
// in the customer environment's mailbox, is read there as a received invoice, and the
// sent one is delivered once the bounce window passes without a bounce.
func TestEInvoiceSentAndReceivedEndToEnd(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true, Env: map[string]string{"KOERIER_MAIL_BOUNCE_WINDOW": "3s"}})
	ctx := context.Background()
	for _, env := range []string{"leverancier", "inkoop"} {
		if _, err := s.Store.AddEnvironment(ctx, store.Environment{Name: env}); err != nil {
			t.Fatal(err)
		}
		localMail(t, s, env)
	}
	q := queueInvoice(t, s, "leverancier", exampleInvoice(t), "inkoop@koerier.test")
	if q.Subject != "2026-0417" || q.Period != "2026-11" {
		t.Errorf("subject and period from the invoice: %q %q", q.Subject, q.Period)
	}
	res := mailSendReceive(t, s, "leverancier")
	if res.Dispatched != 1 {
		t.Errorf("dispatched %d, want 1", res.Dispatched)
	}
	testenv.Eventually(t, 30*time.Second, "invoice sent", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusSent || m.Status == domain.StatusAccepted, string(m.Status) + " " + m.NeedsActionReason
	})
	inbox := s.Mail.Messages("inkoop@koerier.test", "INBOX")
	if len(inbox) != 1 || !strings.Contains(inbox[0].Subject, "2026-0417") || !strings.HasPrefix(inbox[0].MessageID, ak(q.Number)+"@") {
		t.Fatalf("inkoop's INBOX: %+v", inbox)
	}
	if s.Mail.Accepted() != 1 {
		t.Errorf("the mail server accepted %d messages, want 1", s.Mail.Accepted())
	}

	got := mailSendReceive(t, s, "inkoop")
	if got.Invoices != 1 || got.Moved != 1 {
		t.Fatalf("inkoop's receive: %+v", got)
	}
	env, _ := s.Store.Environment(ctx, "inkoop")
	invoices, err := s.Store.IncomingInvoices(ctx, env.ID, 0, 10)
	if err != nil || len(invoices) != 1 || invoices[0].InvoiceNumber != "2026-0417" || invoices[0].Amount != "447.70" {
		t.Fatalf("received invoices: %+v %v", invoices, err)
	}
	if again := mailSendReceive(t, s, "inkoop"); again.Read != 0 {
		t.Errorf("read mail must be moved out of INBOX: %+v", again)
	}

	testenv.Eventually(t, 30*time.Second, "delivered after the bounce window", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusAccepted, string(m.Status)
	})
}

// A bounce that names the invoice's Message-ID makes it failed and needing action, and
// is kept as its reply document.
func TestEInvoiceBounceLinkedBack(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true, Env: map[string]string{"KOERIER_MAIL_BOUNCE_WINDOW": "1h"}})
	ctx := context.Background()
	if _, err := s.Store.AddEnvironment(ctx, store.Environment{Name: "leverancier"}); err != nil {
		t.Fatal(err)
	}
	localMail(t, s, "leverancier")
	q := queueInvoice(t, s, "leverancier", exampleInvoice(t), "bounce-crediteuren@klant.example")
	mailSendReceive(t, s, "leverancier")
	testenv.Eventually(t, 30*time.Second, "invoice sent", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusSent, string(m.Status) + " " + m.NeedsActionReason
	})
	testenv.Eventually(t, 30*time.Second, "bounce read and linked", func() (bool, string) {
		r := mailSendReceive(t, s, "leverancier")
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusFailed && m.NeedsAction, fmt.Sprintf("%s %+v", m.Status, r)
	})
	replies, err := s.Store.Replies(ctx, q.Number)
	if err != nil || len(replies) == 0 || !strings.HasPrefix(replies[len(replies)-1].Code, "DSN 5.1.1") {
		t.Fatalf("replies: %+v %v", replies, err)
	}
	if onb, err := s.Store.UnknownReplies(ctx, true, 10); err != nil || len(onb) != 0 {
		t.Errorf("a linked bounce must not also be an unknown message: %+v %v", onb, err)
	}
	docs, err := s.Store.APIDocuments(ctx, deref(messageStatus(t, s, q.Number).EnvironmentID), q.Number)
	if err != nil || len(docs) == 0 {
		t.Errorf("the bounce is not kept as the invoice's reply document: %+v %v", docs, err)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// supplier makes an environment with a local mail profile.
func supplier(t *testing.T, s *testenv.Stack, env string) {
	t.Helper()
	if _, err := s.Store.AddEnvironment(context.Background(), store.Environment{Name: env}); err != nil {
		t.Fatal(err)
	}
	localMail(t, s, env)
}

// sendInvoice queues the example invoice to an address and runs the environment's
// e-mail send/receive until it is sent.
func sendInvoice(t *testing.T, s *testenv.Stack, env, to string) store.Queued {
	t.Helper()
	q := queueInvoice(t, s, env, exampleInvoice(t), to)
	mailSendReceive(t, s, env)
	testenv.Eventually(t, time.Minute, "invoice sent", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusSent, string(m.Status) + " " + m.NeedsActionReason
	})
	return q
}

// A temporary refusal at the end of the data (451) is retried, and the customer gets
// the invoice once: counted at the mail server.
func TestEInvoiceTemporaryFailureRetriedWithoutDuplicate(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "leverancier")
	s.Mail.FailNext(1, 451, "4.3.0", "mailbox busy, try again", "data")
	q := sendInvoice(t, s, "leverancier", "klant@koerier.test")
	if n := len(s.Mail.Messages("klant@koerier.test", "INBOX")); n != 1 || s.Mail.Accepted() != 1 {
		t.Fatalf("the customer got %d mails, the server accepted %d; want 1 and 1", n, s.Mail.Accepted())
	}
	if m := messageStatus(t, s, q.Number); m.NeedsAction {
		t.Errorf("a retried temporary failure needs no operator: %s", m.NeedsActionReason)
	}
}

// The server takes the invoice but its 250 is lost (the connection drops after the end
// of the data, as when the worker dies between DATA and recording it): Koerier finds the
// Message-ID in the Sent folder and adopts it, and does not send it again.
func TestEInvoiceLostAnswerFoundInSentNotResent(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "leverancier")
	s.Mail.DropNext(1)
	q := sendInvoice(t, s, "leverancier", "klant@koerier.test")
	if n := len(s.Mail.Messages("klant@koerier.test", "INBOX")); n != 1 || s.Mail.Accepted() != 1 {
		t.Fatalf("the customer got %d mails, the server accepted %d; want 1 and 1", n, s.Mail.Accepted())
	}
	lines := logLines(t, "--message", fmt.Sprint(q.Number))
	found := false
	for _, l := range lines {
		found = found || strings.Contains(l.Description, "Sent folder")
	}
	if !found {
		t.Errorf("the log does not say the delivery was found in the Sent folder: %+v", lines)
	}
}

// A profile the mail server refuses (wrong password) makes the invoice wait and need
// action once, naming the environment, with no retries against the server; the mailbox
// read fails the same way, once.
func TestEInvoiceWrongPasswordNeedsActionWithoutRetryStorm(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "leverancier")
	p := localMail(t, s, "leverancier")
	p.SMTP.Password, p.IMAP.Password = "wrong", "wrong"
	if err := s.Store.SetMailProfile(context.Background(), "leverancier", p, "test"); err != nil {
		t.Fatal(err)
	}
	q := queueInvoice(t, s, "leverancier", exampleInvoice(t), "klant@koerier.test")
	err := runNow(t, s, pipeline.MailRunID("leverancier"), pipeline.MailSendReceiveWorkflowType,
		pipeline.MailSendReceiveInput{Environment: "leverancier", Trigger: "test"}, nil)
	if err == nil || !strings.Contains(err.Error(), "environment leverancier") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("the mailbox read with a wrong password: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "the invoice needs action", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.NeedsAction && strings.Contains(m.NeedsActionReason, "environment leverancier"), string(m.Status) + " " + m.NeedsActionReason
	})
	time.Sleep(3 * time.Second) // room for retries that must not come
	if s.Mail.Accepted() != 0 {
		t.Fatalf("the server accepted %d mails with a wrong password", s.Mail.Accepted())
	}
	m := messageStatus(t, s, q.Number)
	if !m.Status.IsDue() {
		t.Errorf("the invoice must stay due for after the profile is mended: %s", m.Status)
	}
	hist := s.Temporal.GetWorkflowHistory(context.Background(), pipeline.MailRunID("leverancier"), "", false, 0)
	attempts := 0
	for hist.HasNext() {
		e, err := hist.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil {
			attempts = max(attempts, int(a.Attempt))
		}
	}
	if attempts != 1 {
		t.Errorf("the mailbox read was tried %d times; a refused login is not retried", attempts)
	}
}

// Incoming mail: two invoices in one mail are both stored; the same invoice in a later
// mail is recognised as a duplicate and not stored again; a mail without a usable UBL is
// kept as an unknown incoming message for an operator. Everything read is moved.
func TestEInvoiceIncomingTwoDuplicateAndNoUBL(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "inkoop")
	ctx := context.Background()
	first := exampleInvoice(t)
	second := []byte(strings.Replace(string(first), "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>2026-0418</cbc:ID>", 1))
	deliver := func(id string, atts ...mail.Attachment) {
		t.Helper()
		raw, err := mail.Compose(mail.Outgoing{MessageID: id + "@drukkerij.example", From: "facturen@drukkerij.example", To: "inkoop@koerier.test",
			Subject: "Facturen " + id, Text: "Zie bijlage.", Attachments: atts}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Mail.Deliver("inkoop@koerier.test", raw); err != nil {
			t.Fatal(err)
		}
	}
	deliver("twee", mail.Attachment{Name: "2026-0417.xml", MimeType: "application/xml", Content: first},
		mail.Attachment{Name: "2026-0418.xml", MimeType: "application/xml", Content: second})
	deliver("nogmaals", mail.Attachment{Name: "2026-0417.xml", MimeType: "application/xml", Content: first})
	deliver("geen-ubl", mail.Attachment{Name: "offerte.pdf", MimeType: "application/pdf", Content: []byte("%PDF-1.4 offerte")})

	res := mailSendReceive(t, s, "inkoop")
	if res.Read != 3 || res.Invoices != 2 || res.Duplicates != 1 || res.Unknown != 1 || res.Moved != 3 {
		t.Fatalf("receive: %+v", res)
	}
	env, _ := s.Store.Environment(ctx, "inkoop")
	invoices, err := s.Store.IncomingInvoices(ctx, env.ID, 0, 10)
	if err != nil || len(invoices) != 2 {
		t.Fatalf("received invoices: %+v %v", invoices, err)
	}
	onb, err := s.Store.UnknownRepliesOf(ctx, res.UnknownNumbers)
	if err != nil || len(onb) != 1 || !onb[0].Open || !strings.Contains(onb[0].Reason, "no UBL invoice") {
		t.Fatalf("the mail without UBL: %+v %v", onb, err)
	}
	if n := len(s.Mail.Messages("inkoop@koerier.test", "INBOX")); n != 0 {
		t.Errorf("%d mails left in INBOX; read mail is moved, not left", n)
	}
	if n := len(s.Mail.Messages("inkoop@koerier.test", "Koerier/Verwerkt")); n != 3 {
		t.Errorf("%d mails in the processed folder, want 3 (moved, not deleted)", n)
	}
}

// A try that never reached the mail server (the environment's profile was removed after
// the invoice was queued) is closed, not left open: the invoice waits for an operator with
// what to do, and once the profile is back it is sent — no look-up of mail that never
// left, no "adopt or redeliver" decision.
func TestEInvoiceWithoutProfileWaitsAndIsNotUncertain(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "leverancier")
	q := queueInvoice(t, s, "leverancier", exampleInvoice(t), "klant@koerier.test")
	ctx := context.Background()
	if err := s.Store.ClearMailProfile(ctx, "leverancier", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "send", fmt.Sprint(q.Number)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "the invoice waits for a profile", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.NeedsAction && strings.Contains(m.NeedsActionReason, "has no e-mail profile"), string(m.Status) + " " + m.NeedsActionReason
	})
	if m := messageStatus(t, s, q.Number); m.DeliveryOpen {
		t.Fatal("a try that never reached the server was left open (it would be looked up as uncertain)")
	}
	localMail(t, s, "leverancier")
	mailSendReceive(t, s, "leverancier") // tells the due invoice to send
	testenv.Eventually(t, time.Minute, "sent once the profile is back", func() (bool, string) {
		m := messageStatus(t, s, q.Number)
		return m.Status == domain.StatusSent, string(m.Status) + " " + m.NeedsActionReason
	})
	if n := len(s.Mail.Messages("klant@koerier.test", "INBOX")); n != 1 {
		t.Fatalf("the customer got %d mails, want 1", n)
	}
}

// A bounce in one environment's mailbox that names another environment's invoice is not
// linked to it (Message-IDs can be guessed): it is an ordinary incoming mail there.
func TestEInvoiceBounceForAnotherEnvironmentNotLinked(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true, Env: map[string]string{"KOERIER_MAIL_BOUNCE_WINDOW": "1h"}})
	supplier(t, s, "leverancier")
	supplier(t, s, "ander")
	q := sendInvoice(t, s, "leverancier", "klant@koerier.test")
	sent := s.Mail.Messages("klant@koerier.test", "INBOX")
	if len(sent) != 1 {
		t.Fatalf("klant's INBOX: %d", len(sent))
	}
	dsn, err := mail.ComposeDSN("mx.elders.example", sent[0].Raw, "klant@koerier.test", "5.1.1", "550 5.1.1 no such user", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Mail.Deliver("ander@koerier.test", dsn); err != nil {
		t.Fatal(err)
	}
	res := mailSendReceive(t, s, "ander")
	if res.Replies != 0 || res.Unknown != 1 {
		t.Fatalf("ander's receive: %+v", res)
	}
	if m := messageStatus(t, s, q.Number); m.Status != domain.StatusSent || m.NeedsAction {
		t.Fatalf("leverancier's invoice was touched by a mail to another environment: %s %s", m.Status, m.NeedsActionReason)
	}
}

// A send-only e-mail profile (SMTP, no mailbox) still has its e-mail send/receive: its
// due e-invoices go out (the service's own send/receive sends Digipoort messages only),
// and there is nothing to read.
func TestEInvoiceSendOnlyProfileIsSent(t *testing.T) {
	s := testenv.NewStack(t, testenv.StackOptions{Mail: true})
	supplier(t, s, "leverancier")
	p := localMail(t, s, "leverancier")
	p.IMAP = store.MailServer{}
	if err := s.Store.ClearMailProfile(context.Background(), "leverancier", "test"); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.SetMailProfile(context.Background(), "leverancier", p, "test"); err != nil {
		t.Fatal(err)
	}
	envs, err := s.Store.MailEnvironments(context.Background())
	if err != nil || len(envs) != 1 || envs[0].Name != "leverancier" {
		t.Fatalf("a send-only profile must have its e-mail send/receive: %+v %v", envs, err)
	}
	q := sendInvoice(t, s, "leverancier", "klant@koerier.test")
	if n := len(s.Mail.Messages("klant@koerier.test", "INBOX")); n != 1 {
		t.Fatalf("the customer got %d mails, want 1 (message %d)", n, q.Number)
	}
	if r := mailSendReceive(t, s, "leverancier"); r.Read != 0 {
		t.Errorf("a send-only profile has no mailbox to read: %+v", r)
	}
}
