package devserver

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/sirupsen/logrus"
)

// smtpSession is one SMTP connection's state.
type smtpSession struct {
	s        *Server
	conn     *smtp.Conn
	log      logrus.FieldLogger
	loopback bool
	authUser string

	// The current transaction.
	from   string // normalized; "" for the null sender
	rcpts  []string
	failed *smtp.SMTPError // a FailNext claimed at RCPT for this transaction
}

var errAuthRequired = &smtp.SMTPError{
	Code:         530,
	EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message:      "Authentication required: only loopback clients may send without AUTH; log in with a local address and the dev server password",
}

func (s *Server) newSMTPSession(c *smtp.Conn) (smtp.Session, error) {
	remote := c.Conn().RemoteAddr()
	loopback := false
	if tcp, ok := remote.(*net.TCPAddr); ok {
		loopback = tcp.IP.IsLoopback()
	}
	return &smtpSession{
		s:        s,
		conn:     c,
		log:      s.log.WithFields(logrus.Fields{"protocol": "smtp", "remote": remote.String()}),
		loopback: loopback,
	}, nil
}

func (sess *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (sess *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		addr, err := normalizeAddress(username)
		if err != nil || (identity != "" && identity != username) || !sess.s.isLocal(addr) || !sess.s.passwordOK(password) {
			sess.log.WithField("user", username).Warn("SMTP AUTH refused: wrong user or password")
			return smtp.ErrAuthFailed
		}
		sess.s.user(addr, true)
		sess.authUser = addr
		sess.log = sess.log.WithField("user", addr)
		sess.log.Info("SMTP AUTH")
		return nil
	}), nil
}

func (sess *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if !sess.loopback && sess.authUser == "" {
		return errAuthRequired
	}
	sess.Reset()
	if from != "" {
		addr, err := normalizeAddress(from)
		if err != nil {
			return &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 7}, Message: err.Error()}
		}
		sess.from = addr
	}
	return nil
}

func (sess *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if sess.failed != nil {
		return sess.failed
	}
	if f := sess.s.claimFailure("rcpt"); f != nil {
		sess.failed = f
		sess.log.WithField("reply", f.Code).Info("RCPT failed on request (FailNext)")
		return f
	}
	addr, err := normalizeAddress(to)
	if err != nil {
		return &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: err.Error()}
	}
	if scenario(addr) == "reject" {
		sess.log.WithField("rcpt", addr).Info("RCPT rejected (reject- scenario)")
		return &smtp.SMTPError{
			Code:         550,
			EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message:      fmt.Sprintf("<%s>: Recipient address rejected: User unknown (reject- scenario)", addr),
		}
	}
	sess.rcpts = append(sess.rcpts, addr)
	return nil
}

func (sess *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp turns a too-large message into 552 5.3.4
	}
	log := sess.log.WithFields(logMessage(raw)).WithFields(logrus.Fields{"from": sess.from, "rcpts": len(sess.rcpts)})
	if f := sess.s.claimFailure("data"); f != nil {
		log.WithField("reply", f.Code).Info("DATA failed on request (FailNext); nothing stored")
		return f
	}
	drop := sess.s.claimDrop()
	tlsState, isTLS := sess.conn.TLSConnectionState()
	env := envelope{
		from:  sess.from,
		rcpts: sess.rcpts,
		helo:  sess.conn.Hostname(),
		with:  withProtocol(isTLS && tlsState.HandshakeComplete, sess.authUser != ""),
	}
	if tcp, ok := sess.conn.Conn().RemoteAddr().(*net.TCPAddr); ok {
		env.ip = tcp.IP.String()
	}
	if err := sess.s.accept(env, raw); err != nil {
		log.WithError(err).Error("store accepted message")
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error storing the message; try again"}
	}
	if drop {
		// Close before go-smtp writes the 250: the message is delivered but
		// the client never learns it.
		log.Info("message accepted, connection dropped before the 250 (DropNext)")
		sess.conn.Conn().Close()
		return nil
	}
	log.Info("message accepted")
	return nil
}

func (sess *smtpSession) Reset() {
	sess.from = ""
	sess.rcpts = nil
	sess.failed = nil
}

func (sess *smtpSession) Logout() error { return nil }

func withProtocol(tls, auth bool) string {
	w := "ESMTP"
	if tls {
		w += "S"
	}
	if auth {
		w += "A"
	}
	return w
}

// envelope is what SMTP knew about a message besides its content.
type envelope struct {
	from  string // "" for the null sender
	rcpts []string
	helo  string
	ip    string
	with  string
}

// accept stores one accepted message for all its recipients, puts a copy in
// the sender's Sent folder and schedules scenario mail.
func (s *Server) accept(env envelope, raw []byte) error {
	now := time.Now()
	var outbound []string
	var bounces []string
	for _, rcpt := range env.rcpts {
		sc := scenario(rcpt)
		switch {
		case sc == "bounce":
			bounces = append(bounces, rcpt)
		case sc == "autoreply":
			if env.from != "" {
				s.after(s.cfg.BounceDelay, func() { s.sendGenerated(env.from, autoReply(s.cfg.Domain, rcpt, env.from, raw, now)) })
			}
		}
		if !s.isLocal(rcpt) {
			outbound = append(outbound, rcpt)
			continue
		}
		if sc != "" {
			continue // scenario addresses have no mailbox
		}
		if _, err := s.appendTo(rcpt, "INBOX", append(traceHeader(s.cfg.Domain, env, rcpt, now), raw...), now); err != nil {
			return err
		}
	}
	if env.from != "" && s.isLocal(env.from) {
		if _, err := s.appendTo(env.from, "Sent", raw, now); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.accepted++
	if len(outbound) > 0 {
		st := summarize(raw)
		st.UID = uint32(len(s.outbound) + 1)
		st.From = env.from
		st.To = outbound
		st.Received = now
		s.outbound = append(s.outbound, st)
	}
	s.mu.Unlock()
	if len(bounces) > 0 && env.from != "" {
		s.after(s.cfg.BounceDelay, func() { s.sendGenerated(env.from, deliveryStatus(s.cfg.Domain, bounces, env.from, raw, now)) })
	}
	return nil
}

// sendGenerated delivers a bounce or automatic reply to the original sender:
// its INBOX when local, else the outbound log.
func (s *Server) sendGenerated(to string, raw []byte) {
	now := time.Now()
	log := s.log.WithFields(logMessage(raw)).WithField("to", to)
	if s.isLocal(to) {
		env := envelope{helo: s.cfg.Domain, ip: "127.0.0.1", with: "ESMTP"}
		if _, err := s.appendTo(to, "INBOX", append(traceHeader(s.cfg.Domain, env, to, now), raw...), now); err != nil {
			log.WithError(err).Error("deliver generated message")
			return
		}
	} else {
		st := summarize(raw)
		st.From = ""
		st.To = []string{to}
		st.Received = now
		s.mu.Lock()
		st.UID = uint32(len(s.outbound) + 1)
		s.outbound = append(s.outbound, st)
		s.mu.Unlock()
	}
	log.Info("scenario message sent")
}

// traceHeader is what a receiving MTA prepends: Return-Path and Received.
func traceHeader(domain string, env envelope, rcpt string, t time.Time) []byte {
	return fmt.Appendf(nil, "Return-Path: <%s>\r\nReceived: from %s ([%s])\r\n\tby %s (koerier-mail) with %s\r\n\tfor <%s>; %s\r\n",
		env.from, env.helo, env.ip, domain, env.with, rcpt, t.Format(time.RFC1123Z))
}
