package devserver_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"koerier/mail/devserver"
)

const password = "dev-secret"

type env struct {
	srv   *devserver.Server
	roots *x509.CertPool
	certs devserver.Certs
}

func start(t *testing.T, useTLS bool, mutate ...func(*devserver.Config)) env {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := devserver.Config{Password: password, WebAddr: "127.0.0.1:0", BounceDelay: 50 * time.Millisecond, Log: log}
	var e env
	if useTLS {
		certs, err := devserver.EnsureCerts(t.TempDir())
		require.NoError(t, err)
		cfg.TLS, err = certs.ServerTLS()
		require.NoError(t, err)
		e.roots, err = certs.RootCAs()
		require.NoError(t, err)
		e.certs = certs
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := devserver.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, srv.Close()) })
	e.srv = srv
	return e
}

func (e env) clientTLS() *tls.Config {
	return &tls.Config{RootCAs: e.roots, ServerName: "127.0.0.1"}
}

// dial opens an SMTP connection, upgraded with STARTTLS when the server has TLS.
func (e env) dial(t *testing.T) *smtp.Client {
	t.Helper()
	var c *smtp.Client
	var err error
	if e.roots != nil {
		c, err = smtp.DialStartTLS(e.srv.SMTPAddr(), e.clientTLS())
	} else {
		c, err = smtp.Dial(e.srv.SMTPAddr())
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func send(c *smtp.Client, from string, to []string, raw []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(raw); err != nil {
		return err
	}
	return w.Close()
}

func mailText(from, to, subject, id string) []byte {
	return fmt.Appendf(nil, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n",
		from, to, subject, id, time.Now().Format(time.RFC1123Z))
}

func mailWithAttachment(from, to, subject, id, name string, content []byte) []byte {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain"}})
	io.WriteString(p, "see attached\r\n")
	p, _ = mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":        {"application/xml"},
		"Content-Disposition": {fmt.Sprintf("attachment; filename=%q", name)},
	})
	p.Write(content)
	mw.Close()
	return append(fmt.Appendf(nil, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%q\r\n\r\n",
		from, to, subject, id, mw.Boundary()), body.Bytes()...)
}

func smtpErr(t *testing.T, err error) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	return se
}

func eventually(t *testing.T, f func() bool) {
	t.Helper()
	require.Eventually(t, f, 5*time.Second, 20*time.Millisecond)
}

func TestSMTPStartTLSAndAuth(t *testing.T) {
	e := start(t, true)

	plain, err := smtp.Dial(e.srv.SMTPAddr())
	require.NoError(t, err)
	defer plain.Close()
	require.NoError(t, plain.Hello("test"))
	ok, _ := plain.Extension("STARTTLS")
	assert.True(t, ok, "STARTTLS offered")
	assert.Error(t, plain.Auth(sasl.NewPlainClient("", "a@koerier.test", password)), "AUTH before TLS must be refused")

	c := e.dial(t)
	require.NoError(t, c.Noop()) // the client's handshake is lazy
	state, isTLS := c.TLSConnectionState()
	require.True(t, isTLS)
	assert.True(t, state.HandshakeComplete)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", "a@koerier.test", "wrong")))
	assert.Equal(t, 535, se.Code)
	assert.Equal(t, smtp.EnhancedCode{5, 7, 8}, se.EnhancedCode)

	c2 := e.dial(t)
	require.NoError(t, c2.Auth(sasl.NewPlainClient("", "a@koerier.test", password)))
	require.NoError(t, send(c2, "a@koerier.test", []string{"b@koerier.test"}, mailText("a@koerier.test", "b@koerier.test", "hi", "auth-1@test")))
	assert.Len(t, e.srv.Messages("b@koerier.test", "INBOX"), 1)

	c3 := e.dial(t)
	se = smtpErr(t, c3.Auth(sasl.NewPlainClient("", "someone@example.com", password)))
	assert.Equal(t, 535, se.Code, "only local addresses can log in")
}

func TestLocalDeliveryInboxSentAndOutbound(t *testing.T) {
	e := start(t, true)
	c := e.dial(t) // from 127.0.0.1, without AUTH
	raw := mailText("sender@koerier.test", "rcpt@koerier.test", "Invoice 42", "inv-42@koerier.test")
	require.NoError(t, send(c, "Sender@Koerier.test", []string{"rcpt@koerier.test", "buyer@example.com"}, raw))

	inbox := e.srv.Messages("rcpt@koerier.test", "INBOX")
	require.Len(t, inbox, 1)
	assert.Equal(t, "inv-42@koerier.test", inbox[0].MessageID)
	assert.Equal(t, "Invoice 42", inbox[0].Subject)
	assert.Equal(t, "sender@koerier.test", inbox[0].From)
	assert.True(t, bytes.HasPrefix(inbox[0].Raw, []byte("Return-Path: <sender@koerier.test>\r\nReceived: ")), "trace headers prepended")
	assert.True(t, bytes.HasSuffix(inbox[0].Raw, raw), "original kept intact")
	assert.WithinDuration(t, time.Now(), inbox[0].Received, time.Minute)

	sent := e.srv.Messages("sender@koerier.test", "Sent")
	require.Len(t, sent, 1)
	assert.Equal(t, raw, sent[0].Raw, "Sent holds the message as submitted")

	out := e.srv.Outbound()
	require.Len(t, out, 1)
	assert.Equal(t, []string{"buyer@example.com"}, out[0].To)
	assert.Equal(t, "sender@koerier.test", out[0].From)
	assert.Equal(t, "inv-42@koerier.test", out[0].MessageID)
	assert.Equal(t, 1, e.srv.Accepted())

	assert.Empty(t, e.srv.Messages("nobody@koerier.test", "INBOX"))
	assert.Empty(t, e.srv.Messages("rcpt@koerier.test", "NoSuchFolder"))
}

func TestNonLoopbackNeedsAuth(t *testing.T) {
	ip := nonLoopbackIP(t)
	e := start(t, false, func(c *devserver.Config) { c.SMTPAddr = net.JoinHostPort(ip, "0") })
	c, err := smtp.Dial(e.srv.SMTPAddr())
	require.NoError(t, err)
	defer c.Close()
	se := smtpErr(t, c.Mail("a@koerier.test", nil))
	assert.Equal(t, 530, se.Code)
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "a@koerier.test", password)))
	require.NoError(t, send(c, "a@koerier.test", []string{"b@koerier.test"}, mailText("a@koerier.test", "b@koerier.test", "x", "nl-1@test")))
	assert.Len(t, e.srv.Messages("b@koerier.test", "INBOX"), 1)
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no non-loopback IPv4 address to connect from")
	return ""
}

func TestBounceScenario(t *testing.T) {
	e := start(t, true)
	c := e.dial(t)
	raw := mailText("shop@koerier.test", "bounce-1@example.com", "Invoice 7", "inv-7@koerier.test")
	require.NoError(t, send(c, "shop@koerier.test", []string{"bounce-1@example.com"}, raw))
	assert.Equal(t, 1, e.srv.Accepted())

	var dsn devserver.Stored
	eventually(t, func() bool {
		in := e.srv.Messages("shop@koerier.test", "INBOX")
		if len(in) == 1 {
			dsn = in[0]
		}
		return len(in) == 1
	})
	ent, err := message.Read(bytes.NewReader(dsn.Raw))
	require.NoError(t, err)
	mt, params, err := ent.Header.ContentType()
	require.NoError(t, err)
	assert.Equal(t, "multipart/report", mt)
	assert.Equal(t, "delivery-status", params["report-type"])
	assert.Equal(t, "auto-replied", ent.Header.Get("Auto-Submitted"))

	parts := map[string]string{}
	mr := ent.MultipartReader()
	require.NotNil(t, mr)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		pt, _, _ := p.Header.ContentType()
		b, _ := io.ReadAll(p.Body)
		parts[pt] = string(b)
	}
	status := parts["message/delivery-status"]
	assert.Contains(t, status, "Final-Recipient: rfc822; bounce-1@example.com")
	assert.Contains(t, status, "Action: failed")
	assert.Contains(t, status, "Status: 5.1.1")
	assert.Contains(t, status, "Diagnostic-Code: smtp; 550 5.1.1")
	assert.Contains(t, parts["text/rfc822-headers"], "Message-ID: <inv-7@koerier.test>")
	assert.Contains(t, parts["text/plain"], "bounce-1@example.com")
}

func TestRejectScenario(t *testing.T) {
	e := start(t, true)
	c := e.dial(t)
	require.NoError(t, c.Mail("shop@koerier.test", nil))
	se := smtpErr(t, c.Rcpt("reject-1@example.com", nil))
	assert.Equal(t, 550, se.Code)
	assert.Equal(t, smtp.EnhancedCode{5, 1, 1}, se.EnhancedCode)
	assert.Equal(t, 0, e.srv.Accepted())
}

func TestAutoreplyScenario(t *testing.T) {
	e := start(t, true)
	c := e.dial(t)
	raw := mailText("shop@koerier.test", "autoreply-1@koerier.test", "Invoice 9", "inv-9@koerier.test")
	require.NoError(t, send(c, "shop@koerier.test", []string{"autoreply-1@koerier.test"}, raw))
	var reply devserver.Stored
	eventually(t, func() bool {
		in := e.srv.Messages("shop@koerier.test", "INBOX")
		if len(in) == 1 {
			reply = in[0]
		}
		return len(in) == 1
	})
	ent, err := message.Read(bytes.NewReader(reply.Raw))
	require.NoError(t, err)
	assert.Equal(t, "auto-replied", ent.Header.Get("Auto-Submitted"))
	assert.Equal(t, "<inv-9@koerier.test>", ent.Header.Get("In-Reply-To"))
	assert.Equal(t, "Automatic reply: Invoice 9", reply.Subject)
	assert.Equal(t, "autoreply-1@koerier.test", reply.From)
	assert.NotContains(t, e.srv.Mailboxes(), "autoreply-1@koerier.test", "scenario addresses get no mailbox")
}

func TestFailNext(t *testing.T) {
	e := start(t, true)
	e.srv.FailNext(1, 451, "4.3.0", "Try again later", "data")
	c := e.dial(t)
	raw := mailText("shop@koerier.test", "buyer@koerier.test", "Invoice 1", "inv-1@koerier.test")
	se := smtpErr(t, send(c, "shop@koerier.test", []string{"buyer@koerier.test"}, raw))
	assert.Equal(t, 451, se.Code)
	assert.Equal(t, smtp.EnhancedCode{4, 3, 0}, se.EnhancedCode)
	assert.Equal(t, 0, e.srv.Accepted())
	assert.Empty(t, e.srv.Messages("buyer@koerier.test", "INBOX"))
	assert.Empty(t, e.srv.Messages("shop@koerier.test", "Sent"))

	require.NoError(t, send(c, "shop@koerier.test", []string{"buyer@koerier.test"}, raw), "only the next transaction fails")
	assert.Equal(t, 1, e.srv.Accepted())
	assert.Len(t, e.srv.Messages("buyer@koerier.test", "INBOX"), 1)

	e.srv.FailNext(1, 550, "5.7.1", "Relay denied", "rcpt")
	require.NoError(t, c.Mail("shop@koerier.test", nil))
	se = smtpErr(t, c.Rcpt("buyer@koerier.test", nil))
	assert.Equal(t, 550, se.Code)
	assert.Equal(t, "Relay denied", se.Message)
}

func TestDropNext(t *testing.T) {
	e := start(t, true)
	e.srv.DropNext(1)
	c := e.dial(t)
	raw := mailText("shop@koerier.test", "buyer@koerier.test", "Invoice 2", "inv-2@koerier.test")
	err := send(c, "shop@koerier.test", []string{"buyer@koerier.test"}, raw)
	require.Error(t, err, "the client must not see a 250")
	var se *smtp.SMTPError
	assert.False(t, errors.As(err, &se), "the connection closes rather than replying: %v", err)
	assert.Error(t, c.Noop(), "connection is closed")

	assert.Equal(t, 1, e.srv.Accepted())
	require.Len(t, e.srv.Messages("buyer@koerier.test", "INBOX"), 1)
	sent := e.srv.Messages("shop@koerier.test", "Sent")
	require.Len(t, sent, 1)
	assert.Equal(t, "inv-2@koerier.test", sent[0].MessageID, "a client can find the lost delivery in Sent")

	c2 := e.dial(t)
	require.NoError(t, send(c2, "shop@koerier.test", []string{"buyer@koerier.test"}, raw), "only the next transaction is dropped")
	assert.Equal(t, 2, e.srv.Accepted())
}

func TestMessageTooLarge(t *testing.T) {
	e := start(t, false)
	c := e.dial(t)
	raw := append(mailText("a@koerier.test", "b@koerier.test", "big", "big@test"), bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), devserver.MaxMessageBytes/64+10)...)
	se := smtpErr(t, send(c, "a@koerier.test", []string{"b@koerier.test"}, raw))
	assert.Equal(t, 552, se.Code)
	assert.Equal(t, 0, e.srv.Accepted())
}

func TestIMAP(t *testing.T) {
	e := start(t, true)
	bad, err := imapclient.DialTLS(e.srv.IMAPAddr(), &imapclient.Options{TLSConfig: e.clientTLS()})
	require.NoError(t, err)
	defer bad.Close()
	assert.Error(t, bad.Login("env1@koerier.test", "wrong").Wait())
	assert.Error(t, bad.Login("env1@example.com", password).Wait(), "only local addresses")

	// An address never seen before logs in and gets a mailbox.
	c, err := imapclient.DialTLS(e.srv.IMAPAddr(), &imapclient.Options{TLSConfig: e.clientTLS()})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login("env1@koerier.test", password).Wait())
	list, err := c.List("", "*", nil).Collect()
	require.NoError(t, err)
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	assert.Subset(t, names, []string{"INBOX", "Sent", "Archive", "Trash"})

	ubl := []byte("<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>")
	require.NoError(t, e.srv.Deliver("env1@koerier.test", mailWithAttachment("s@example.com", "env1@koerier.test", "Factuur 1", "in-1@example.com", "invoice.xml", ubl)))
	require.NoError(t, e.srv.Deliver("env1@koerier.test", mailText("s@example.com", "env1@koerier.test", "Other", "in-2@example.com")))
	assert.Error(t, e.srv.Deliver("x@example.com", []byte("Subject: x\r\n\r\n")), "Deliver is for local mailboxes")

	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	found, err := c.UIDSearch(&imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: "in-1@example.com"}}}, nil).Wait()
	require.NoError(t, err)
	uids := found.AllUIDs()
	require.Len(t, uids, 1)

	msgs, err := c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Contains(t, string(msgs[0].BodySection[0].Bytes), string(ubl))

	_, err = c.Move(imap.UIDSetNum(uids...), "Archive").Wait()
	require.NoError(t, err)
	inbox := e.srv.Messages("env1@koerier.test", "INBOX")
	require.Len(t, inbox, 1)
	assert.Equal(t, "in-2@example.com", inbox[0].MessageID)
	archive := e.srv.Messages("env1@koerier.test", "Archive")
	require.Len(t, archive, 1)
	assert.Equal(t, "in-1@example.com", archive[0].MessageID)

	// Looking through Messages did not mark anything read.
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	unseen, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	require.NoError(t, err)
	assert.Len(t, unseen.AllUIDs(), 1)
}

func TestPlainConnections(t *testing.T) {
	e := start(t, false)
	c := e.dial(t)
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "a@koerier.test", password)), "without TLS, AUTH works in the clear")
	ic, err := imapclient.DialInsecure(e.srv.IMAPAddr(), nil)
	require.NoError(t, err)
	defer ic.Close()
	require.NoError(t, ic.Login("a@koerier.test", password).Wait())
}

func TestWeb(t *testing.T) {
	e := start(t, true)
	c := e.dial(t)
	ubl := bytes.Repeat([]byte("x"), 1234)
	raw := mailWithAttachment("shop@koerier.test", "buyer@koerier.test", "Factuur <2026-001>", "web-1@koerier.test", "invoice-2026-001.xml", ubl)
	require.NoError(t, send(c, "shop@koerier.test", []string{"buyer@koerier.test", "out@example.com"}, raw))
	base := e.srv.WebURL()

	body := get(t, base+"/", http.StatusOK)
	assert.Contains(t, body, "buyer@koerier.test")
	assert.Contains(t, body, "Factuur &lt;2026-001&gt;", "escaped by html/template")
	assert.Contains(t, body, "invoice-2026-001.xml (1234 bytes)")
	assert.Contains(t, body, "web-1@koerier.test")

	var ov devserver.Overview
	require.NoError(t, json.Unmarshal([]byte(get(t, base+"/api/messages", http.StatusOK)), &ov))
	var inbox []devserver.MessageSummary
	for _, mb := range ov.Mailboxes {
		for _, f := range mb.Folders {
			if mb.Address == "buyer@koerier.test" && f.Name == "INBOX" {
				inbox = f.Messages
			}
		}
	}
	require.Len(t, inbox, 1)
	assert.Equal(t, "web-1@koerier.test", inbox[0].MessageID)
	assert.Equal(t, []devserver.Attachment{{Name: "invoice-2026-001.xml", ContentType: "application/xml", Size: 1234}}, inbox[0].Attachments)
	require.Len(t, ov.Outbound, 1)
	assert.Equal(t, []string{"out@example.com"}, ov.Outbound[0].To)

	page := get(t, fmt.Sprintf("%s/message?mailbox=buyer@koerier.test&folder=INBOX&uid=%d", base, inbox[0].UID), http.StatusOK)
	assert.Contains(t, page, "Message-Id")
	assert.Contains(t, page, "download .eml")
	eml := get(t, fmt.Sprintf("%s/message?mailbox=shop@koerier.test&folder=Sent&uid=1&raw=1", base), http.StatusOK)
	assert.Equal(t, string(raw), eml)
	get(t, base+"/message?mailbox=buyer@koerier.test&folder=INBOX&uid=99", http.StatusNotFound)
	assert.Equal(t, "ok\n", get(t, base+"/healthz", http.StatusOK))

	post(t, base+"/control/fail-next", `{"n":1,"code":451,"enhanced":"4.3.0","text":"busy","stage":"data"}`, http.StatusOK)
	se := smtpErr(t, send(c, "shop@koerier.test", []string{"buyer@koerier.test"}, raw))
	assert.Equal(t, 451, se.Code)
	post(t, base+"/control/fail-next", `{"n":1,"code":250,"stage":"data"}`, http.StatusBadRequest)
	post(t, base+"/control/fail-next", `{"n":1,"code":451,"stage":"helo"}`, http.StatusBadRequest)

	post(t, base+"/control/drop-next", `{"n":1}`, http.StatusOK)
	assert.Error(t, send(c, "shop@koerier.test", []string{"buyer@koerier.test"}, raw))
	assert.Equal(t, 2, e.srv.Accepted())
	post(t, base+"/control/drop-next", `{"count":1}`, http.StatusBadRequest)
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, want, resp.StatusCode, "GET %s: %s", url, b)
	return string(b)
}

func post(t *testing.T, url, body string, want int) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, want, resp.StatusCode, "POST %s: %s", url, b)
}

func TestEnsureCertsReusesAndVerifies(t *testing.T) {
	dir := t.TempDir()
	certs, err := devserver.EnsureCerts(dir)
	require.NoError(t, err)
	first, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	info, err := os.Stat(certs.KeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	again, err := devserver.EnsureCerts(dir)
	require.NoError(t, err)
	second, err := os.ReadFile(again.CAFile)
	require.NoError(t, err)
	assert.Equal(t, first, second, "existing certificates are reused")

	roots, err := certs.RootCAs()
	require.NoError(t, err)
	serverTLS, err := certs.ServerTLS()
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(serverTLS.Certificates[0].Certificate[0])
	require.NoError(t, err)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots})
		assert.NoError(t, err, host)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots})
	assert.Error(t, err)

	// A broken file is replaced rather than served.
	require.NoError(t, os.WriteFile(certs.CertFile, []byte("garbage"), 0o644))
	_, err = devserver.EnsureCerts(dir)
	require.NoError(t, err)
	third, err := os.ReadFile(certs.CAFile)
	require.NoError(t, err)
	assert.NotEqual(t, first, third)
}

func TestStartNeedsPassword(t *testing.T) {
	_, err := devserver.Start(devserver.Config{})
	assert.ErrorContains(t, err, "password")
}
