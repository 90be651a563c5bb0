package bank

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

const (
	// dialTimeout and handshakeTimeout bound connecting when the caller's
	// context has no deadline.
	dialTimeout      = 30 * time.Second
	handshakeTimeout = 60 * time.Second
	// keepAlive lets the kernel notice a bank host that vanished without
	// closing the connection (a firewall dropping idle flows).
	keepAlive = 30 * time.Second
)

// The outcome classes. A caller decides on them, never on error text.
var (
	// ErrHostKey: the server did not present the pinned host key. Nothing was
	// sent, not even the user name.
	ErrHostKey = errors.New("the bank's SFTP server did not present the pinned host key")
	// ErrAuth: the server refused the user or the key.
	ErrAuth = errors.New("the bank's SFTP server refused the user or key; check the profile's User and PrivateKey, and that the bank has registered the key's public half")
	// ErrNotUploaded: the file certainly is not under its final name in the
	// upload folder because of this call; it may be uploaded again.
	ErrNotUploaded = errors.New("not uploaded")
	// ErrUncertain: the rename to the final name was sent but its answer was
	// lost. The bank may have the file, so it must not be uploaded again
	// blindly: ask Find first.
	ErrUncertain = errors.New("upload uncertain: the rename to the final name was sent but the server's answer was lost; the bank may have the file, so look for it with Find before uploading it again")
	// ErrExists: a file of that name is in the upload or archive folder
	// already. Upload refuses rather than hand the bank the same name twice.
	ErrExists = errors.New("a file of that name is already at the bank")
)

// Conn is one SFTP session with the bank. Its methods take turns (one runs at
// a time); a context that ends during a call closes the whole connection,
// since SFTP has no way to abandon one request.
type Conn struct {
	p         Profile
	client    *ssh.Client
	sftp      *sftp.Client
	out       *watchedWriter
	posix     bool // the server renames over an existing name atomically
	mu        sync.Mutex
	closeOnce sync.Once
}

// Dial connects to the bank's SFTP server, checks its host key against the
// pin, logs in with the profile's key and opens the SFTP subsystem. The
// caller's context bounds all of it.
func Dial(ctx context.Context, p Profile) (*Conn, error) {
	fail := func(err error) error { return fmt.Errorf("connect to the bank's SFTP server %s: %w", p, err) }
	if err := p.Validate(); err != nil {
		return nil, fail(fmt.Errorf("invalid profile: %w", err))
	}
	signer, err := parsePrivateKey(p.PrivateKey)
	if err != nil {
		return nil, fail(err)
	}
	pin, err := parseHostKey(p.HostKey)
	if err != nil {
		return nil, fail(err)
	}

	d := net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	nc, err := d.DialContext(ctx, "tcp", p.addr())
	if err != nil {
		return nil, fail(err)
	}
	// x/crypto/ssh's handshake has no context: a deadline on the socket and
	// closing it when ctx ends are what bound it.
	deadline := time.Now().Add(handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.Close() })

	var hostKeyChecked atomic.Bool
	cfg := &ssh.ClientConfig{
		User: p.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if err := pin.check(p.addr(), key); err != nil {
				return err
			}
			hostKeyChecked.Store(true)
			return nil
		},
		HostKeyAlgorithms: pin.algorithms(),
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, p.addr(), cfg)
	if err != nil {
		nc.Close()
		stop()
		switch {
		case errors.Is(err, ErrHostKey):
			return nil, fail(err)
		// x/crypto/ssh has no error type for a refused login; this is its
		// only message for it.
		case hostKeyChecked.Load() && strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fail(fmt.Errorf("%w (user %q, key %s)", ErrAuth, p.User, Fingerprint(signer.PublicKey())))
		}
		return nil, fail(withCause(ctx, fmt.Errorf("SSH handshake: %w", err)))
	}
	client := ssh.NewClient(sc, chans, reqs)
	c, err := openSFTP(client)
	if err != nil {
		client.Close()
		stop()
		return nil, fail(withCause(ctx, fmt.Errorf("open the SFTP subsystem: %w", err)))
	}
	if !stop() {
		c.Close()
		return nil, fail(context.Cause(ctx))
	}
	_ = nc.SetDeadline(time.Time{})
	c.p = p
	return c, nil
}

// openSFTP is sftp.NewClient with the request stream watched, which is how
// Upload tells a rename that never left from one whose answer was lost.
func openSFTP(client *ssh.Client) (*Conn, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	in, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		return nil, err
	}
	w := &watchedWriter{WriteCloser: in}
	sc, err := sftp.NewClientPipe(out, w)
	if err != nil {
		return nil, err
	}
	_, posix := sc.HasExtension("posix-rename@openssh.com")
	return &Conn{client: client, sftp: sc, out: w, posix: posix}, nil
}

// Close ends the session. It never waits on the server.
func (c *Conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		// Closing the SSH connection first makes the SFTP client's reader
		// end at once instead of waiting for the server to hang up.
		err = c.client.Close()
		_ = c.sftp.Close()
		if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
			err = nil
		}
	})
	return err
}

// begin serialises the calls and ties the connection to ctx for one call.
func (c *Conn) begin(ctx context.Context) (end func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	c.mu.Lock()
	stop := context.AfterFunc(ctx, func() { c.client.Close() })
	return func() {
		stop()
		c.mu.Unlock()
	}, nil
}

func (h hostPin) check(addr string, key ssh.PublicKey) error {
	got := Fingerprint(key)
	if got == h.fingerprint {
		return nil
	}
	return fmt.Errorf("%w: %s presented %s key %s, but the profile pins %s. Ask the bank, through a channel you trust (not this connection), whether it changed its host key before you change the profile: a changed key may mean that someone is intercepting the connection",
		ErrHostKey, addr, key.Type(), got, h.fingerprint)
}

// withCause names the context's end when it is what broke a call.
func withCause(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
}

// watchedWriter remembers what happened to the requests written after mark:
// whether any left this machine, and whether a write failed.
type watchedWriter struct {
	io.WriteCloser
	mu     sync.Mutex
	marked bool
	wrote  bool
	failed bool
}

func (w *watchedWriter) Write(b []byte) (int, error) {
	n, err := w.WriteCloser.Write(b)
	w.mu.Lock()
	if w.marked {
		if err != nil {
			w.failed = true
		} else {
			w.wrote = true
		}
	}
	w.mu.Unlock()
	return n, err
}

func (w *watchedWriter) mark() {
	w.mu.Lock()
	w.marked, w.wrote, w.failed = true, false, false
	w.mu.Unlock()
}

// sentAfterMark reports whether everything written since mark was handed to
// the connection. A failed write means the SSH packet was cut short, and a
// server does not act on a packet whose MAC it cannot check.
func (w *watchedWriter) sentAfterMark() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrote && !w.failed
}

func (w *watchedWriter) unmark() {
	w.mu.Lock()
	w.marked = false
	w.mu.Unlock()
}
