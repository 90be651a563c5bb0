package devserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-smtp"
	"github.com/sirupsen/logrus"
)

// MaxMessageBytes is the largest message SMTP accepts (25 MiB, as common
// providers do).
const MaxMessageBytes = 25 << 20

// Config configures a Server.
type Config struct {
	// Domain is the local domain; every <anything>@Domain is a local mailbox.
	// Default "koerier.test".
	Domain string
	// Password is the one password of every local mailbox, for IMAP LOGIN and
	// SMTP AUTH. Required.
	Password string
	// SMTPAddr and IMAPAddr are listen addresses ("127.0.0.1:0" when empty).
	// WebAddr "" means no web page.
	SMTPAddr, IMAPAddr, WebAddr string
	// TLS holds the server certificate. With it SMTP offers STARTTLS and IMAP
	// listens with implicit TLS; nil means plain connections with
	// authentication allowed (for testing a profile with TLS "none").
	TLS *tls.Config
	// BounceDelay is how long after acceptance a scenario bounce or automatic
	// reply arrives. Default 1s.
	BounceDelay time.Duration
	// Log receives structured logs; never message bodies or passwords.
	Log logrus.FieldLogger
}

// Stored is one message as the server holds it.
type Stored struct {
	UID uint32
	// From and To are the header addresses for mailbox messages and the
	// envelope (MAIL FROM, non-local RCPT TO) for Outbound.
	From    string
	To      []string
	Subject string
	// MessageID is without angle brackets.
	MessageID string
	Received  time.Time
	Raw       []byte
}

// Server is a running development mail server. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	log logrus.FieldLogger

	smtp   *smtp.Server
	smtpLn net.Listener
	imap   *imapserver.Server
	imapLn net.Listener
	// inspect serves the same mailboxes over in-memory pipes, so that the
	// server can read its own mailboxes through imapmemserver's only read path.
	inspect *imapserver.Server
	pipe    *pipeListener
	web     *http.Server
	webLn   net.Listener

	done    chan struct{}
	serving sync.WaitGroup // the Serve loops
	wg      sync.WaitGroup // pending scenario mail

	mu       sync.Mutex
	users    map[string]*imapmemserver.User
	outbound []Stored
	accepted int
	fail     failure
	drop     int
	closed   bool
}

// failure is a pending FailNext.
type failure struct {
	n     int
	stage string
	err   *smtp.SMTPError
}

// Start listens on the configured addresses and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Password == "" {
		return nil, errors.New("start dev mail server: a password is required (every local mailbox uses it)")
	}
	if cfg.Domain == "" {
		cfg.Domain = "koerier.test"
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if cfg.SMTPAddr == "" {
		cfg.SMTPAddr = "127.0.0.1:0"
	}
	if cfg.IMAPAddr == "" {
		cfg.IMAPAddr = "127.0.0.1:0"
	}
	if cfg.BounceDelay <= 0 {
		cfg.BounceDelay = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	s := &Server{
		cfg:   cfg,
		log:   cfg.Log.WithField("component", "devmail"),
		done:  make(chan struct{}),
		users: make(map[string]*imapmemserver.User),
		pipe:  newPipeListener(),
	}

	var err error
	if s.smtpLn, err = net.Listen("tcp", cfg.SMTPAddr); err != nil {
		return nil, fmt.Errorf("start dev mail server: listen for SMTP on %s: %w", cfg.SMTPAddr, err)
	}
	if s.imapLn, err = net.Listen("tcp", cfg.IMAPAddr); err != nil {
		s.smtpLn.Close()
		return nil, fmt.Errorf("start dev mail server: listen for IMAP on %s: %w", cfg.IMAPAddr, err)
	}
	if cfg.WebAddr != "" {
		if s.webLn, err = net.Listen("tcp", cfg.WebAddr); err != nil {
			s.smtpLn.Close()
			s.imapLn.Close()
			return nil, fmt.Errorf("start dev mail server: listen for the web page on %s: %w", cfg.WebAddr, err)
		}
	}

	s.smtp = smtp.NewServer(smtp.BackendFunc(s.newSMTPSession))
	s.smtp.Domain = cfg.Domain
	s.smtp.MaxMessageBytes = MaxMessageBytes
	s.smtp.MaxRecipients = 100
	s.smtp.ReadTimeout = 5 * time.Minute
	s.smtp.WriteTimeout = time.Minute
	s.smtp.TLSConfig = cfg.TLS
	s.smtp.AllowInsecureAuth = cfg.TLS == nil
	s.smtp.ErrorLog = s.log.WithField("protocol", "smtp")

	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}}
	imapLn := s.imapLn
	if cfg.TLS != nil {
		imapLn = tls.NewListener(s.imapLn, cfg.TLS)
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession:   s.newIMAPSession,
		Caps:         caps,
		Logger:       s.log.WithField("protocol", "imap"),
		InsecureAuth: cfg.TLS == nil,
	})
	s.inspect = imapserver.New(&imapserver.Options{
		NewSession:   s.newInspectSession,
		Caps:         caps,
		Logger:       s.log.WithField("protocol", "imap-inspect"),
		InsecureAuth: true, // in-process pipes only
	})

	s.serve("smtp", func() error { return s.smtp.Serve(s.smtpLn) })
	s.serve("imap", func() error { return s.imap.Serve(imapLn) })
	s.serve("imap-inspect", func() error { return s.inspect.Serve(s.pipe) })
	if s.webLn != nil {
		s.web = &http.Server{Handler: s.webHandler(), ReadHeaderTimeout: 10 * time.Second}
		s.serve("web", func() error { return s.web.Serve(s.webLn) })
	}
	s.log.WithFields(logrus.Fields{
		"smtp": s.SMTPAddr(), "imap": s.IMAPAddr(), "web": s.WebURL(),
		"domain": cfg.Domain, "tls": cfg.TLS != nil,
	}).Info("dev mail server listening")
	return s, nil
}

func (s *Server) serve(name string, f func() error) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		err := f()
		select {
		case <-s.done:
		default:
			if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
				s.log.WithError(err).WithField("listener", name).Error("dev mail server stopped serving")
			}
		}
	}()
}

// SMTPAddr is the host:port SMTP listens on.
func (s *Server) SMTPAddr() string { return s.smtpLn.Addr().String() }

// IMAPAddr is the host:port IMAP listens on.
func (s *Server) IMAPAddr() string { return s.imapLn.Addr().String() }

// WebURL is the web page's base URL, or "" when there is none.
func (s *Server) WebURL() string {
	if s.webLn == nil {
		return ""
	}
	return "http://" + s.webLn.Addr().String()
}

// Domain is the local domain.
func (s *Server) Domain() string { return s.cfg.Domain }

// Close stops all listeners, drops connections and cancels pending scenario
// mail.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)

	// Stop accepting first and wait for the Serve loops to return: imapserver
	// races (WaitGroup Add against Wait) when Close meets a Serve just starting.
	s.smtpLn.Close()
	s.imapLn.Close()
	s.pipe.Close()
	if s.webLn != nil {
		s.webLn.Close()
	}
	s.serving.Wait()

	var errs []error
	if err := s.smtp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("close SMTP: %w", err))
	}
	if err := s.imap.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("close IMAP: %w", err))
	}
	if err := s.inspect.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("close IMAP inspection: %w", err))
	}
	if s.web != nil {
		if err := s.web.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close web page: %w", err))
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// Accepted is how many SMTP transactions were accepted (the message stored,
// whether or not the 250 reached the client).
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Outbound is every message accepted for a non-local domain, oldest first.
func (s *Server) Outbound() []Stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Stored, len(s.outbound))
	copy(out, s.outbound)
	return out
}

// FailNext makes the next n transactions fail at stage "rcpt" (every RCPT of
// the transaction) or "data" (after the whole DATA is read; nothing is stored)
// with the given reply, e.g. 451 "4.3.0". It replaces any pending FailNext and
// panics on a stage other than "rcpt"/"data" or a code outside 400-599: those are
// programming errors in a test.
func (s *Server) FailNext(n int, code int, enhanced, text string, stage string) {
	f, err := newFailure(n, code, enhanced, text, stage)
	if err != nil {
		panic("devserver.FailNext: " + err.Error())
	}
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func newFailure(n int, code int, enhanced, text string, stage string) (failure, error) {
	if stage != "rcpt" && stage != "data" {
		return failure{}, fmt.Errorf("stage %q: want rcpt or data", stage)
	}
	if code < 400 || code > 599 {
		return failure{}, fmt.Errorf("code %d: want a 4xx or 5xx reply", code)
	}
	if n < 0 {
		return failure{}, fmt.Errorf("n %d: want 0 or more", n)
	}
	ec := smtp.EnhancedCodeNotSet
	if enhanced != "" {
		if _, err := fmt.Sscanf(enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err != nil {
			return failure{}, fmt.Errorf("enhanced code %q: want a form like 4.3.0", enhanced)
		}
		if ec[0] != code/100 {
			return failure{}, fmt.Errorf("enhanced code %q does not match reply %d", enhanced, code)
		}
	}
	if text == "" {
		text = "Failure injected by the development mail server"
	}
	return failure{n: n, stage: stage, err: &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: text}}, nil
}

// DropNext makes the next n transactions deliver their message and then close
// the connection instead of writing the 250: the client cannot tell whether
// the message went out.
func (s *Server) DropNext(n int) {
	s.mu.Lock()
	s.drop = n
	s.mu.Unlock()
}

// claimFailure takes one pending failure for stage, if any.
func (s *Server) claimFailure(stage string) *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail.n <= 0 || s.fail.stage != stage {
		return nil
	}
	s.fail.n--
	return s.fail.err
}

func (s *Server) claimDrop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drop <= 0 {
		return false
	}
	s.drop--
	return true
}

// after runs f after d unless the server closes first.
func (s *Server) after(d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			f()
		case <-s.done:
		}
	}()
}
