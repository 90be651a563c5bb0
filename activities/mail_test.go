package activities_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/activities"
	"koerier/domain"
	"koerier/internal/secrets"
	"koerier/internal/testdb"
	"koerier/mail"
	"koerier/mail/devserver"
	"koerier/pipeline"
	"koerier/store"
)

// One mail that cannot be stored as it came (here: larger than a stored file may be)
// does not stop the mailbox (rule 22): it is kept as an unknown incoming message with
// its headers only and moved, and the invoice after it in the folder is received in the
// same run. Real Postgres, a real IMAP server over a socket.
// mailHarness is a real Postgres store whose environment testEnv has an e-mail profile
// on a development mail server over real sockets (sent folder: sent, "" for the
// default), and the activities on it.
type mailHarness struct {
	st   *store.Store
	acts *activities.Activities
	srv  *devserver.Server
	env  int64
	addr string
}

func newMailHarness(t *testing.T, sent string) *mailHarness {
	t.Helper()
	t.Parallel()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	const password = "dev-mail-password"
	srv, err := devserver.Start(devserver.Config{Password: password, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })

	box, err := secrets.Parse(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	cat := domain.DefaultCatalog()
	st, err := store.Open(ctx, testdb.New(t), store.Options{Migrate: true, Catalog: &cat, Secrets: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := st.AddEnvironment(ctx, store.Environment{Name: testEnv})
	if err != nil {
		t.Fatal(err)
	}
	addr := testEnv + "@" + srv.Domain()
	server := func(hostPort string) store.MailServer {
		host, port := splitHostPort(t, hostPort)
		return store.MailServer{Host: host, Port: port, Security: store.SecurityNone, User: addr, Password: password}
	}
	if err := st.SetMailProfile(ctx, testEnv, store.MailProfile{From: addr, SMTP: server(srv.SMTPAddr()), IMAP: server(srv.IMAPAddr()),
		Sent: sent}, "test"); err != nil {
		t.Fatal(err)
	}
	acts := &activities.Activities{Store: st, Log: quiet, Config: activities.Config{
		Starter: pipeline.Starter{Client: &fakeClient{}, TaskQueue: taskQueue}, UncertainWait: time.Hour}}
	return &mailHarness{st: st, acts: acts, srv: srv, env: e.ID, addr: addr}
}

func exampleUBL(t *testing.T) []byte {
	t.Helper()
	ubl, err := os.ReadFile(filepath.Join("..", "domain", "testdata", "einvoice", "example-invoice.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return ubl
}

func TestReceiveMailKeepsUnstorableMailAndReadsOn(t *testing.T) {
	h := newMailHarness(t, "")
	st, acts, srv, addr := h.st, h.acts, h.srv, h.addr
	ubl := exampleUBL(t)
	compose := func(id string, att mail.Attachment) []byte {
		raw, err := mail.Compose(mail.Outgoing{MessageID: id, From: "leverancier@example.nl", To: addr, Subject: "Factuur " + id,
			Text: "Zie bijlage.\r\n", Attachments: []mail.Attachment{att}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	big := compose("too-big@example.nl", mail.Attachment{Name: "factuur.xml", MimeType: "application/xml",
		Content: bytes.Repeat([]byte("<x/>"), domain.MaxAttachmentSize/4+1)})
	good := compose("good@example.nl", mail.Attachment{Name: "factuur.xml", MimeType: "application/xml", Content: ubl})
	for _, raw := range [][]byte{big, good} {
		if err := srv.Deliver(addr, raw); err != nil {
			t.Fatal(err)
		}
	}

	res, err := acts.ReceiveMail(ctx, testEnv)
	if err != nil {
		t.Fatalf("one unstorable mail stopped the mailbox: %v", err)
	}
	if res.Read != 2 || res.Moved != 2 || res.Invoices != 1 || res.Unknown != 1 || len(res.UnknownNumbers) != 1 {
		t.Fatalf("read %d, moved %d, invoices %d, unknown %d %v; want 2, 2, 1, 1", res.Read, res.Moved, res.Invoices, res.Unknown,
			res.UnknownNumbers)
	}
	if in := srv.Messages(addr, store.DefaultMailFolder); len(in) != 0 {
		t.Errorf("%d mails left in %s, want none", len(in), store.DefaultMailFolder)
	}
	if done := srv.Messages(addr, store.DefaultProcessedFolder); len(done) != 2 {
		t.Errorf("%d mails in %s, want both, kept whole", len(done), store.DefaultProcessedFolder)
	}
	invs, err := st.IncomingInvoices(ctx, h.env, 0, 10)
	if err != nil || len(invs) != 1 {
		t.Fatalf("received invoices %v, %v; want the one after the unstorable mail", invs, err)
	}

	n := res.UnknownNumbers[0]
	m, err := st.Message(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "could not be stored as it came") {
		t.Errorf("unknown message %d: needs action %v, reason %q", n, m.NeedsAction, m.NeedsActionReason)
	}
	atts, err := st.Attachments(ctx, n)
	if err != nil || len(atts) != 1 {
		t.Fatalf("attachments of %d: %v, %v", n, atts, err)
	}
	if head := atts[0].Content; len(head) > 64<<10 || !bytes.Contains(head, []byte("<too-big@example.nl>")) ||
		bytes.Contains(head, []byte("<x/>")) {
		t.Errorf("kept %d bytes of the unstorable mail; want its headers only:\n%s", len(head), head)
	}

	// Read again: nothing is left, nothing is stored twice.
	again, err := acts.ReceiveMail(ctx, testEnv)
	if err != nil || again.Read != 0 {
		t.Fatalf("second run: %+v, %v", again, err)
	}
}

// A send whose answer was lost is looked up in the Sent folder; a profile that names a
// Sent folder the server does not have (Exchange keeps "Sent Items") makes an operator
// decide at once, saying how to correct the profile, instead of asking the server again
// and again for a folder that waiting will not bring. The invoice is not sent twice.
func TestUncertainMailWithoutTheSentFolderAsksAnOperatorAtOnce(t *testing.T) {
	h := newMailHarness(t, "Verzonden items")
	q, err := h.st.Queue(ctx, store.QueueRequest{Environment: testEnv, Type: domain.TypeEInvoice, Recipient: "klant@" + h.srv.Domain(),
		Attachments: []domain.Attachment{{FileName: "factuur.xml", MimeType: "application/xml", Content: exampleUBL(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.DropNext(1)
	if _, err := h.acts.Deliver(ctx, q.Number); !errors.Is(err, mail.ErrUncertain) {
		t.Fatalf("a send whose 250 was lost: %v, want uncertain", err)
	}
	res, err := h.acts.Deliver(ctx, q.Number)
	if err != nil || res.Outcome != pipeline.OutcomeUncertain {
		t.Fatalf("the look-up in a Sent folder the server does not have: %+v, %v; want an operator's decision now", res, err)
	}
	m, err := h.st.Message(ctx, q.Number)
	if err != nil {
		t.Fatal(err)
	}
	if !m.NeedsAction || !strings.Contains(m.NeedsActionReason, "--sent-folder") || !strings.Contains(m.NeedsActionReason, "Verzonden items") {
		t.Errorf("needs action %v, reason %q; want how to name the Sent folder", m.NeedsAction, m.NeedsActionReason)
	}
	if h.srv.Accepted() != 1 {
		t.Errorf("the server accepted %d mails, want the one", h.srv.Accepted())
	}
}

func splitHostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}
