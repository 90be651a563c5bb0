package mail

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// dialTimeout bounds connecting when the caller's context has no deadline.
const dialTimeout = 30 * time.Second

// The outcome classes of Submit. A caller decides on them, never on error text.
var (
	// ErrNotSent: the server certainly did not accept the message; it may be
	// submitted again.
	ErrNotSent = errors.New("not sent")
	// ErrUncertain: the whole message was handed over but the server's answer
	// was lost. The server may have accepted it, so it must not be sent again
	// blindly: look for its Message-ID in the Sent folder first.
	ErrUncertain = errors.New("delivery uncertain: the message was handed over but the server's reply was lost; look for its Message-ID in the Sent folder before sending it again")
	// ErrAuth: the server refused the user name or password.
	ErrAuth = errors.New("the server refused the user name or password; check the profile's user and password")
	// ErrTLS: no trusted TLS connection could be made (unknown certificate
	// authority, wrong host name, no TLS on that port). Retrying will not help
	// until the profile or the server changes.
	ErrTLS = errors.New("no trusted TLS connection")
	// ErrNoMailbox: the profile has no IMAP mailbox.
	ErrNoMailbox = errors.New("the e-mail profile has no IMAP mailbox")
	// ErrNoFolder: the server refused to open a folder the profile names (it does
	// not exist under that name). Waiting will not help until the profile changes.
	ErrNoFolder = errors.New("no such folder")
)

// SMTPError is a 4xx or 5xx reply of the SMTP server.
type SMTPError struct {
	Code     int
	Enhanced string // "5.1.1", "" when the server gave none
	Message  string
	Stage    string // the command it answered: "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "end of DATA"
}

func (e *SMTPError) Error() string {
	code := fmt.Sprint(e.Code)
	if e.Enhanced != "" {
		code += " " + e.Enhanced
	}
	return fmt.Sprintf("server replied %s to %s: %s", code, e.Stage, e.Message)
}

// Permanent reports a 5xx reply: sending the same message again will fail again.
func (e *SMTPError) Permanent() bool { return e.Code >= 500 && e.Code < 600 }

// Temporary reports a 4xx reply: the server asks to try again later.
func (e *SMTPError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Submit sends raw from o.From (p.From when empty) to o.To through the
// profile's SMTP server. See the Err* variables and SMTPError for how a
// failure is reported; nil means the server accepted the message (250).
func Submit(ctx context.Context, p Profile, o Outgoing, raw []byte) error {
	from := o.From
	if from == "" {
		from = p.From
	}
	fail := func(err error) error {
		return fmt.Errorf("submit message %s to %s via %s: %w", o.MessageID, o.To, p.SMTP, err)
	}
	if errs := p.SMTP.validate("SMTP", false); len(errs) > 0 {
		return fail(fmt.Errorf("%w: invalid profile: %w", ErrNotSent, errors.Join(errs...)))
	}
	fromAddr, err := mail.ParseAddress(from)
	if err != nil {
		return fail(fmt.Errorf("%w: sender %q is not an e-mail address: %w", ErrNotSent, from, err))
	}
	toAddr, err := mail.ParseAddress(o.To)
	if err != nil {
		return fail(fmt.Errorf("%w: recipient %q is not an e-mail address: %w", ErrNotSent, o.To, err))
	}
	if err := checkMessageID(raw, o.MessageID); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotSent, err))
	}
	return wrapIfErr(fail, submit(ctx, p, fromAddr.Address, toAddr.Address, raw))
}

// checkMessageID makes sure the message carries the Message-ID the caller
// recorded: it is how a bounce, a reply or the Sent folder is matched to it
// later.
func checkMessageID(raw []byte, id string) error {
	if len(raw) == 0 {
		return errors.New("empty message")
	}
	if id == "" {
		return nil
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return fmt.Errorf("message header: %w", err)
	}
	if got := first(msgIDs(h.Get("Message-Id"))); got != id {
		return fmt.Errorf("the message carries Message-ID %q, not %q", got, id)
	}
	return nil
}

func wrapIfErr(wrap func(error) error, err error) error {
	if err == nil {
		return nil
	}
	return wrap(err)
}

func submit(ctx context.Context, p Profile, from, to string, raw []byte) error {
	s := p.SMTP
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "tcp", s.addr())
	if err != nil {
		return fmt.Errorf("%w: connect: %w", ErrNotSent, err)
	}
	wc := &watchedConn{Conn: conn}
	// go-smtp has no context support: closing the connection is what ends a
	// blocked read or write when ctx is done.
	stop := context.AfterFunc(ctx, func() { wc.Close() })
	defer stop()
	defer wc.Close()

	var c *smtp.Client
	switch s.Security {
	case SecurityTLS:
		tc := tls.Client(wc, p.tlsConfig(s.Host))
		if err := tc.HandshakeContext(ctx); err != nil {
			return notSent("TLS handshake", err)
		}
		c = smtp.NewClient(tc)
	case SecurityStartTLS:
		c, err = smtp.NewClientStartTLS(wc, p.tlsConfig(s.Host))
		if err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) && !isNetErr(err) && !isTLSErr(err) {
				// go-smtp's only other failure here: STARTTLS is not offered.
				return fmt.Errorf("%w: %w: the server does not offer STARTTLS (%v); refusing to send the password and the message in the clear; check the port or use security %q",
					ErrNotSent, ErrTLS, err, SecurityTLS)
			}
			return notSent("STARTTLS", err)
		}
	default:
		c = smtp.NewClient(wc)
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		c.CommandTimeout = min(c.CommandTimeout, left)
		c.SubmissionTimeout = min(c.SubmissionTimeout, left)
	}

	// Saying hello explicitly puts greeting, EHLO and (for STARTTLS) the
	// handshake failures under their own stage instead of the next command.
	if err := c.Hello("localhost"); err != nil {
		return notSent("EHLO", err)
	}
	if s.User != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("%w: the server offers no AUTH, but the profile has a user; check the port and security", ErrNotSent)
		}
		if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
			return notSent("AUTH", err)
		}
	}
	var opts *smtp.MailOptions
	if !isASCII(from) || !isASCII(to) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	if err := c.Mail(from, opts); err != nil {
		return notSent("MAIL", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return notSent("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return notSent("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		return notSent("DATA", err)
	}
	// From here a failed write means the final "." never fully left this
	// machine (it is the last thing written); a failed read after a good
	// write means the server may have it.
	wc.markFinal()
	if _, err := w.CloseWithResponse(); err != nil {
		var se *smtp.SMTPError
		switch {
		case errors.As(err, &se):
			return notSent("end of DATA", err)
		case wc.writeFailedAfterMark():
			return notSent("end of DATA", err)
		default:
			return fmt.Errorf("%w: %w", ErrUncertain, err)
		}
	}
	// Accepted: a failing QUIT changes nothing about that.
	_ = c.Quit()
	return nil
}

// notSent classifies a failure before the server took responsibility.
func notSent(stage string, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e := &SMTPError{Code: se.Code, Enhanced: enhanced(se.EnhancedCode), Message: se.Message, Stage: stage}
		if stage == "AUTH" && e.Permanent() {
			return fmt.Errorf("%w: %w: %w", ErrNotSent, ErrAuth, e)
		}
		return fmt.Errorf("%w: %w", ErrNotSent, e)
	}
	if isTLSErr(err) {
		return fmt.Errorf("%w: %w at %s: %w; %s", ErrNotSent, ErrTLS, stage, err, tlsAdvice(err))
	}
	return fmt.Errorf("%w: %s: %w", ErrNotSent, stage, err)
}

func enhanced(c smtp.EnhancedCode) string {
	if c == (smtp.EnhancedCode{}) || c == smtp.NoEnhancedCode {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

func isTLSErr(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
		alert    tls.AlertError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.As(err, &alert)
}

func tlsAdvice(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &hostname):
		return "the certificate is for another host name: check the host name in the profile"
	case errors.As(err, &unknown):
		return "the certificate is not signed by a trusted authority: check the host name, or configure the server's CA certificate"
	case errors.As(err, &record):
		return "the server does not speak TLS on this port: check the port and the security setting (tls for 465/993, starttls for 587/143)"
	default:
		return "check the host name, or configure the server's CA certificate"
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] > 127 {
			return false
		}
	}
	return true
}

// watchedConn remembers whether a write failed after markFinal, which tells
// a lost final "." (not sent) from a lost reply (uncertain).
type watchedConn struct {
	net.Conn
	mu          sync.Mutex
	final       bool
	failedFinal bool
}

func (c *watchedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.mu.Lock()
		if c.final {
			c.failedFinal = true
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *watchedConn) markFinal() {
	c.mu.Lock()
	c.final = true
	c.mu.Unlock()
}

func (c *watchedConn) writeFailedAfterMark() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failedFinal
}
