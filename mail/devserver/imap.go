package devserver

import (
	"net"
	"sync"

	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/sirupsen/logrus"
)

// imapSession is imapmemserver's user session behind our own LOGIN, which
// creates local mailboxes on first use and checks the shared password.
type imapSession struct {
	*imapmemserver.UserSession // nil until LOGIN

	s      *Server
	create bool
	remote string
}

func (s *Server) newIMAPSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	return &imapSession{s: s, create: true, remote: c.NetConn().RemoteAddr().String()}, nil, nil
}

// newInspectSession serves Messages and the web page: it never creates a
// mailbox by looking at it.
func (s *Server) newInspectSession(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	return &imapSession{s: s, create: false, remote: "inspect"}, nil, nil
}

func (sess *imapSession) Login(username, password string) error {
	log := sess.s.log.WithFields(logrus.Fields{"protocol": "imap", "user": username, "remote": sess.remote})
	addr, err := normalizeAddress(username)
	if err != nil || !sess.s.isLocal(addr) || !sess.s.passwordOK(password) {
		if sess.create {
			log.Warn("IMAP login refused: wrong user or password")
		}
		return imapserver.ErrAuthFailed
	}
	u := sess.s.user(addr, sess.create)
	if u == nil {
		return imapserver.ErrAuthFailed
	}
	sess.UserSession = imapmemserver.NewUserSession(u)
	if sess.create {
		log.Info("IMAP login")
	}
	return nil
}

func (sess *imapSession) Close() error {
	if sess.UserSession == nil {
		return nil
	}
	return sess.UserSession.Close()
}

// pipeListener is a net.Listener of in-memory connections, so the server can
// read its own mailboxes without binding another port.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial() (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		client.Close()
		server.Close()
		return nil, net.ErrClosed
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "in-process" }
