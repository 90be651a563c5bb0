package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testCA is a certificate authority made for one test, with a server
// certificate for the given names.
type testCA struct {
	Pool   *x509.CertPool
	Server *tls.Config
}

func newTestCA(t *testing.T, names ...string) testCA {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "koerier test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testCA{
		Pool: pool,
		Server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			MinVersion:   tls.VersionTLS12,
		},
	}
}

var quietLog = log.New(io.Discard, "", 0)

// smtpBackend is a go-smtp server backend that records what it receives and
// can be told to fail in the ways a real server does.
type smtpBackend struct {
	User, Password string
	RejectRcpt     map[string]*smtp.SMTPError // reply to RCPT TO for that address
	DataReply      *smtp.SMTPError            // reply to the end of DATA instead of 250
	// DropAfterData: read the whole message, including the final ".", then
	// close the connection without a reply.
	DropAfterData bool

	mu       sync.Mutex
	received []receivedMail // accepted with 250
	dataSeen []receivedMail // every message read to its final ".", accepted or not
}

type receivedMail struct {
	From string
	To   []string
	Data []byte
	TLS  bool // the session was encrypted when the message came in
	Auth bool
}

func (b *smtpBackend) Received() []receivedMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]receivedMail(nil), b.received...)
}

func (b *smtpBackend) DataSeen() []receivedMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]receivedMail(nil), b.dataSeen...)
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, conn: c}, nil
}

type smtpSession struct {
	b      *smtpBackend
	conn   *smtp.Conn
	authed bool
	cur    receivedMail
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.User || password != s.b.Password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.User != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = receivedMail{From: from, TLS: isTLS, Auth: s.authed}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if e := s.b.RejectRcpt[to]; e != nil {
		return e
	}
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r) // returns once the final "." is read
	if err != nil {
		return err
	}
	m := s.cur
	m.Data = data
	s.b.mu.Lock()
	s.b.dataSeen = append(s.b.dataSeen, m)
	s.b.mu.Unlock()
	if s.b.DropAfterData {
		// Closing the raw connection here, inside the DATA handler, means
		// the server has the whole message but never writes its reply.
		s.conn.Conn().Close()
		return nil
	}
	if s.b.DataReply != nil {
		return s.b.DataReply
	}
	s.b.mu.Lock()
	s.b.received = append(s.b.received, m)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = receivedMail{} }
func (s *smtpSession) Logout() error { return nil }

// startSMTP runs a go-smtp server on 127.0.0.1. security "tls" listens with
// implicit TLS, "starttls" offers STARTTLS, "plain" offers no TLS at all.
func startSMTP(t *testing.T, security string, tlsConf *tls.Config, be *smtpBackend) Server {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.ErrorLog = quietLog
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sec := Security(security)
	switch security {
	case "tls":
		srv.TLSConfig = tlsConf
		ln = tls.NewListener(ln, tlsConf)
	case "starttls":
		srv.TLSConfig = tlsConf
	case "plain":
		sec = SecurityStartTLS // what the profile asks for; the server cannot give it
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: sec, User: be.User, Password: be.Password}
}

// imapFixture is an in-memory IMAP server (go-imap's imapmemserver behind
// imapserver) with one user.
type imapFixture struct {
	User   *imapmemserver.User
	Server Server
}

const (
	imapUser     = "facturen@koerier.test"
	imapPassword = "imap-secret"
)

// startIMAP serves over implicit TLS ("tls") or STARTTLS ("starttls"). With
// move false the server offers plain IMAP4rev1 without MOVE, so the client
// has to fall back to COPY + STORE + EXPUNGE.
func startIMAP(t *testing.T, security string, tlsConf *tls.Config, move bool) imapFixture {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(imapUser, imapPassword)
	for _, name := range []string{"INBOX", "Sent"} {
		if err := u.Create(name, nil); err != nil {
			t.Fatal(err)
		}
	}
	mem.AddUser(u)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}}
	if move {
		caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	}
	opts := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:   caps,
		Logger: quietLog,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if security == "tls" {
		ln = tls.NewListener(ln, tlsConf)
	} else {
		opts.TLSConfig = tlsConf
	}
	srv := imapserver.New(opts)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return imapFixture{
		User: u,
		Server: Server{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, Security: Security(security),
			User: imapUser, Password: imapPassword},
	}
}

type literal struct {
	*bytes.Reader
}

func (l literal) Size() int64 { return int64(l.Len()) }

func (f imapFixture) appendMail(t *testing.T, folder string, raw []byte, at time.Time) {
	t.Helper()
	if _, err := f.User.Append(folder, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: at}); err != nil {
		t.Fatal(err)
	}
}

func hostPort(s Server) string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }
