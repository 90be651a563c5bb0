package mail

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

const smtpPassword = "smtp-secret-pw"

func testInvoiceMail(t *testing.T) (Outgoing, []byte) {
	t.Helper()
	o := Outgoing{
		MessageID: "KOE-1000001@koerier.example",
		From:      "omgeving@koerier.test",
		To:        "crediteuren@klant.example",
		Subject:   "Factuur F2024-001",
		Text:      "Bijgaand factuur F2024-001.\r\n.Een regel die met een punt begint.\r\n",
		Attachments: []Attachment{
			{Name: "F2024-001.xml", MimeType: "application/xml", Content: []byte(`<?xml version="1.0" encoding="UTF-8"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"><ID>F2024-001</ID></Invoice>`)},
		},
	}
	raw, err := Compose(o, time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return o, raw
}

func profileFor(s Server, ca testCA) Profile {
	return Profile{From: "omgeving@koerier.test", SMTP: s, RootCAs: ca.Pool}
}

func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSubmitDeliversExactBytes(t *testing.T) {
	for _, security := range []string{"tls", "starttls"} {
		t.Run(security, func(t *testing.T) {
			ca := newTestCA(t, "127.0.0.1")
			be := &smtpBackend{User: "omgeving", Password: smtpPassword}
			p := profileFor(startSMTP(t, security, ca.Server, be), ca)
			o, raw := testInvoiceMail(t)

			if err := Submit(ctx10s(t), p, o, raw); err != nil {
				t.Fatalf("Submit: %v", err)
			}
			got := be.Received()
			if len(got) != 1 {
				t.Fatalf("server accepted %d messages, want 1", len(got))
			}
			m := got[0]
			if !bytes.Equal(m.Data, raw) {
				t.Errorf("server received other bytes than were submitted:\n got %q\nwant %q", m.Data, raw)
			}
			if m.From != o.From || len(m.To) != 1 || m.To[0] != o.To {
				t.Errorf("envelope = %s -> %v, want %s -> %s", m.From, m.To, o.From, o.To)
			}
			if !m.TLS || !m.Auth {
				t.Errorf("mail came in with TLS=%v AUTH=%v, want both", m.TLS, m.Auth)
			}
			parsed, err := Parse(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.MessageID != o.MessageID {
				t.Errorf("Message-ID = %q, want %q", parsed.MessageID, o.MessageID)
			}
		})
	}
}

func TestSubmitWrongPassword(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	be := &smtpBackend{User: "omgeving", Password: smtpPassword}
	s := startSMTP(t, "starttls", ca.Server, be)
	s.Password = "not-the-password"
	o, raw := testInvoiceMail(t)

	err := Submit(ctx10s(t), profileFor(s, ca), o, raw)
	if !errors.Is(err, ErrAuth) || !errors.Is(err, ErrNotSent) || errors.Is(err, ErrUncertain) {
		t.Fatalf("err = %v, want ErrAuth and ErrNotSent", err)
	}
	var se *SMTPError
	if !errors.As(err, &se) || se.Code != 535 || se.Stage != "AUTH" || !se.Permanent() {
		t.Errorf("SMTPError = %+v, want permanent 535 at AUTH", se)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Errorf("error shows the password: %v", err)
	}
	if n := len(be.DataSeen()); n != 0 {
		t.Errorf("server saw %d messages, want none", n)
	}
}

func TestSubmitRejectedRecipient(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	o, raw := testInvoiceMail(t)
	be := &smtpBackend{User: "omgeving", Password: smtpPassword, RejectRcpt: map[string]*smtp.SMTPError{
		o.To: {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"},
	}}
	p := profileFor(startSMTP(t, "tls", ca.Server, be), ca)

	err := Submit(ctx10s(t), p, o, raw)
	var se *SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want an *SMTPError", err)
	}
	if se.Code != 550 || se.Enhanced != "5.1.1" || se.Stage != "RCPT" || !se.Permanent() || se.Temporary() {
		t.Errorf("SMTPError = %+v, want permanent 550 5.1.1 at RCPT", se)
	}
	if !strings.Contains(err.Error(), "no such user here") {
		t.Errorf("error %q lacks the server's text", err)
	}
	if !errors.Is(err, ErrNotSent) || errors.Is(err, ErrUncertain) || errors.Is(err, ErrAuth) {
		t.Errorf("err = %v, want ErrNotSent only", err)
	}
	if n := len(be.DataSeen()); n != 0 {
		t.Errorf("server saw %d messages, want none", n)
	}
}

func TestSubmitTemporaryFailureAtEndOfData(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	be := &smtpBackend{User: "omgeving", Password: smtpPassword,
		DataReply: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}}
	p := profileFor(startSMTP(t, "tls", ca.Server, be), ca)
	o, raw := testInvoiceMail(t)

	err := Submit(ctx10s(t), p, o, raw)
	var se *SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.Stage != "end of DATA" || !se.Temporary() || se.Permanent() {
		t.Fatalf("err = %v (%+v), want temporary 451 at end of DATA", err, se)
	}
	if !errors.Is(err, ErrNotSent) || errors.Is(err, ErrUncertain) {
		t.Errorf("err = %v, want ErrNotSent, not ErrUncertain", err)
	}
	if seen := be.DataSeen(); len(seen) != 1 || !bytes.Equal(seen[0].Data, raw) {
		t.Errorf("server read %d messages; want the whole message once before replying 451", len(seen))
	}
	if n := len(be.Received()); n != 0 {
		t.Errorf("server accepted %d messages, want none", n)
	}
}

func TestSubmitDroppedAfterFinalDotIsUncertain(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	be := &smtpBackend{User: "omgeving", Password: smtpPassword, DropAfterData: true}
	p := profileFor(startSMTP(t, "tls", ca.Server, be), ca)
	o, raw := testInvoiceMail(t)

	err := Submit(ctx10s(t), p, o, raw)
	if !errors.Is(err, ErrUncertain) || errors.Is(err, ErrNotSent) {
		t.Fatalf("err = %v, want ErrUncertain and not ErrNotSent", err)
	}
	var se *SMTPError
	if errors.As(err, &se) {
		t.Errorf("err carries an SMTP reply %+v, but the server never replied", se)
	}
	if seen := be.DataSeen(); len(seen) != 1 || !bytes.Equal(seen[0].Data, raw) {
		t.Errorf("the server should hold the whole message (it read the final dot); it read %d", len(seen))
	}
}

func TestSubmitUntrustedCertificate(t *testing.T) {
	for _, security := range []string{"tls", "starttls"} {
		t.Run(security+"/unknown authority", func(t *testing.T) {
			serverCA := newTestCA(t, "127.0.0.1")
			otherCA := newTestCA(t, "127.0.0.1")
			be := &smtpBackend{User: "omgeving", Password: smtpPassword}
			p := profileFor(startSMTP(t, security, serverCA.Server, be), otherCA)
			o, raw := testInvoiceMail(t)

			err := Submit(ctx10s(t), p, o, raw)
			if !errors.Is(err, ErrTLS) || !errors.Is(err, ErrNotSent) || errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrTLS and ErrNotSent", err)
			}
			if !strings.Contains(err.Error(), "CA certificate") {
				t.Errorf("error %q does not tell to configure the CA", err)
			}
			if n := len(be.DataSeen()); n != 0 {
				t.Errorf("server saw %d messages, want none", n)
			}
		})
	}
	t.Run("tls/wrong host name", func(t *testing.T) {
		ca := newTestCA(t, "smtp.elders.example")
		be := &smtpBackend{User: "omgeving", Password: smtpPassword}
		p := profileFor(startSMTP(t, "tls", ca.Server, be), ca)
		o, raw := testInvoiceMail(t)

		err := Submit(ctx10s(t), p, o, raw)
		if !errors.Is(err, ErrTLS) || !errors.Is(err, ErrNotSent) {
			t.Fatalf("err = %v, want ErrTLS and ErrNotSent", err)
		}
		if !strings.Contains(err.Error(), "host name") {
			t.Errorf("error %q does not tell to check the host name", err)
		}
	})
}

func TestSubmitRefusesWithoutSTARTTLS(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	be := &smtpBackend{}
	s := startSMTP(t, "plain", nil, be)
	o, raw := testInvoiceMail(t)

	err := Submit(ctx10s(t), profileFor(s, ca), o, raw)
	if !errors.Is(err, ErrNotSent) || !errors.Is(err, ErrTLS) {
		t.Fatalf("err = %v, want ErrNotSent and ErrTLS", err)
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("error %q does not name STARTTLS", err)
	}
	if n := len(be.DataSeen()); n != 0 {
		t.Errorf("server saw %d messages in the clear, want none", n)
	}
}

func TestSubmitConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	o, raw := testInvoiceMail(t)
	p := Profile{From: o.From, SMTP: Server{Host: "127.0.0.1", Port: port, Security: SecurityTLS}}

	err = Submit(ctx10s(t), p, o, raw)
	if !errors.Is(err, ErrNotSent) || errors.Is(err, ErrUncertain) {
		t.Fatalf("err = %v, want ErrNotSent", err)
	}
}

func TestSubmitNoSecurityToLoopbackWithoutAuth(t *testing.T) {
	// The local dev mail server: plain SMTP on 127.0.0.1, no login.
	be := &smtpBackend{}
	srv := smtp.NewServer(be)
	srv.Domain, srv.ErrorLog = "localhost", quietLog
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	o, raw := testInvoiceMail(t)
	p := Profile{From: o.From, SMTP: Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: SecurityNone}}

	if err := Submit(ctx10s(t), p, o, raw); err != nil {
		t.Fatal(err)
	}
	if got := be.Received(); len(got) != 1 || !bytes.Equal(got[0].Data, raw) {
		t.Fatalf("received %d messages, want the one submitted", len(got))
	}
}

func TestValidate(t *testing.T) {
	good := Profile{
		From: "omgeving@koerier.test",
		SMTP: Server{Host: "smtp.example.com", Port: 587, Security: SecurityStartTLS, User: "u", Password: "pw-smtp"},
		IMAP: Server{Host: "imap.example.com", Port: 993, Security: SecurityTLS, User: "u", Password: "pw-imap"},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid profile: %v", err)
	}

	none := good
	none.SMTP.Security = SecurityNone
	err := none.Validate()
	if err == nil || !strings.Contains(err.Error(), "SMTP.Security") || !strings.Contains(err.Error(), "smtp.example.com") {
		t.Errorf(`"none" to a remote host: err = %v, want a refusal naming SMTP.Security and the host`, err)
	}
	for _, host := range []string{"127.0.0.1", "localhost", "::1"} {
		local := good
		local.SMTP = Server{Host: host, Port: 1025, Security: SecurityNone}
		local.IMAP = Server{}
		if err := local.Validate(); err != nil {
			t.Errorf(`"none" to %s refused: %v`, host, err)
		}
	}

	bad := Profile{SMTP: Server{Port: 70000, Security: "ssl"}, IMAP: Server{Host: "imap.example.com", Port: 993, Security: SecurityTLS}}
	err = bad.Validate()
	for _, field := range []string{"From", "SMTP.Host", "SMTP.Port", "SMTP.Security", "IMAP.User"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}

	s := good.String()
	if strings.Contains(s, "pw-smtp") || strings.Contains(s, "pw-imap") {
		t.Errorf("String() shows a password: %s", s)
	}
	if !strings.Contains(s, "u@smtp.example.com:587 starttls") {
		t.Errorf("String() = %q, want the SMTP server as user@host:port security", s)
	}
}

func TestSubmitEnvelopeAndMessageIDCheck(t *testing.T) {
	ca := newTestCA(t, "127.0.0.1")
	be := &smtpBackend{User: "omgeving", Password: smtpPassword}
	p := profileFor(startSMTP(t, "tls", ca.Server, be), ca)
	o, raw := testInvoiceMail(t)

	// A Message-ID other than the one in the message would make the Sent
	// look-up and bounce matching miss it: refused before connecting.
	wrong := o
	wrong.MessageID = "KOE-9999999@koerier.example"
	if err := Submit(ctx10s(t), p, wrong, raw); !errors.Is(err, ErrNotSent) || !strings.Contains(err.Error(), "KOE-1000001@koerier.example") {
		t.Errorf("mismatched Message-ID: err = %v, want ErrNotSent naming the message's own id", err)
	}

	named := o
	named.From = "Omgeving Eén <omgeving@koerier.test>"
	named.To = "Crediteuren <crediteuren@klant.example>"
	if err := Submit(ctx10s(t), p, named, raw); err != nil {
		t.Fatal(err)
	}
	got := be.Received()
	if len(got) != 1 || got[0].From != "omgeving@koerier.test" || !slices.Equal(got[0].To, []string{"crediteuren@klant.example"}) {
		t.Errorf("envelope = %+v, want the bare addresses", got)
	}
}
