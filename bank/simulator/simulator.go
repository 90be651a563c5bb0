package simulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// EnvDir names the directory of the host key, the users and the state when
// Options.Dir is empty.
const EnvDir = "KOERIER_BANK_SIM_DIR"

// DefaultDir is $KOERIER_BANK_SIM_DIR, or .koerier/bank-simulator under the
// working directory.
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return filepath.Join(".koerier", "bank-simulator")
}

// Options configure the simulator. The zero value is usable.
type Options struct {
	// Dir holds the host key, the registered users, their folders and the state
	// (created on first start, reused after); default DefaultDir().
	Dir string
	// Addr is the SFTP (SSH) listen address; default 127.0.0.1:0.
	Addr string
	// ControlAddr is the plain-HTTP listen address of the control API; default
	// 127.0.0.1:0. Keep it on loopback: it is not authenticated.
	ControlAddr string
	// Poll is how often the upload folders are looked at; default 200ms.
	Poll time.Duration
	// Step is the time between two status reports of a file; default 300ms.
	Step time.Duration
	// Log receives a line per connection and per file (never file contents or
	// keys); nil discards.
	Log logrus.FieldLogger
}

// Sim is a running bank simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts     Options
	log      logrus.FieldLogger
	hostKey  ssh.Signer
	sshConf  *ssh.ServerConfig
	ln       net.Listener
	ctl      *http.Server
	ctlLn    net.Listener
	ctlURL   string
	closing  chan struct{}
	closeOne sync.Once
	closeErr error
	wg       sync.WaitGroup
	saveMu   sync.Mutex // orders writes of the state file

	mu        sync.Mutex
	st        state
	conns     map[net.Conn]struct{}
	writing   map[string]int // user/relative path -> open write handles
	dropNext  dropRule
	dropAfter int // renames of uploads still to answer by closing the connection
	holdNext  holdRule
	held      map[string]int // user/relative path -> uploads stalled by hold-next now
	slow      time.Duration
}

type dropRule struct {
	n          int
	afterBytes int64
}

type holdRule struct {
	n          int
	afterBytes int64
	hold       time.Duration
}

// Start runs a simulator until ctx ends or Close is called. It creates the host
// key in opts.Dir on first use and loads the users and files a previous run on
// the same Dir kept.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	if opts.Dir == "" {
		opts.Dir = DefaultDir()
	}
	if abs, err := filepath.Abs(opts.Dir); err == nil {
		opts.Dir = abs
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ControlAddr == "" {
		opts.ControlAddr = "127.0.0.1:0"
	}
	if opts.Poll <= 0 {
		opts.Poll = 200 * time.Millisecond
	}
	if opts.Step <= 0 {
		opts.Step = 300 * time.Millisecond
	}
	s := &Sim{
		opts:    opts,
		log:     opts.Log,
		closing: make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		writing: map[string]int{},
		held:    map[string]int{},
		st:      newState(),
	}
	if s.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		s.log = l
	}
	s.log = s.log.WithField("component", "bank-simulator")
	if err := os.MkdirAll(filepath.Join(opts.Dir, "users"), 0o700); err != nil {
		return nil, fmt.Errorf("bank simulator: create %s: %w", opts.Dir, err)
	}
	signer, created, err := ensureHostKey(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("bank simulator: %w", err)
	}
	if created {
		s.log.WithField("fingerprint", ssh.FingerprintSHA256(signer.PublicKey())).Info("created host key")
	}
	s.hostKey = signer
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("bank simulator: %w", err)
	}
	for user := range s.st.Users {
		if err := s.ensureUserDirs(user); err != nil {
			return nil, fmt.Errorf("bank simulator: %w", err)
		}
	}
	s.sshConf = s.serverConfig()

	if s.ln, err = net.Listen("tcp", opts.Addr); err != nil {
		return nil, fmt.Errorf("bank simulator: listen for SFTP on %s: %w", opts.Addr, err)
	}
	if s.ctlLn, err = net.Listen("tcp", opts.ControlAddr); err != nil {
		s.ln.Close()
		return nil, fmt.Errorf("bank simulator: control API: listen on %s: %w", opts.ControlAddr, err)
	}
	s.ctlURL = "http://" + s.ctlLn.Addr().String()
	s.ctl = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(s.log.WithField("listener", "control").WriterLevel(logrus.WarnLevel), "", 0)}

	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.acceptLoop() }()
	go func() { defer s.wg.Done(); _ = s.ctl.Serve(s.ctlLn) }()
	go func() { defer s.wg.Done(); s.processLoop() }()
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.closing:
		}
	}()
	s.log.WithFields(logrus.Fields{"sftp": s.Addr(), "control": s.ctlURL, "dir": opts.Dir,
		"fingerprint": s.Fingerprint()}).Info("bank simulator started")
	return s, nil
}

// Close stops the listeners, breaks off open connections, waits for the
// watcher and writes the state once more. Reports not yet due are kept and
// written by the next run on the same Dir.
func (s *Sim) Close() error {
	s.closeOne.Do(func() {
		close(s.closing)
		err1 := s.ln.Close()
		if errors.Is(err1, net.ErrClosed) {
			err1 = nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err2 := s.ctl.Shutdown(ctx)
		if err2 != nil {
			s.ctl.Close()
		}
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		err3 := s.save()
		s.closeErr = errors.Join(err1, err2, err3)
		s.log.Info("bank simulator stopped")
	})
	return s.closeErr
}

// Done is closed when the simulator stops.
func (s *Sim) Done() <-chan struct{} { return s.closing }

// Addr is the host:port the SFTP server listens on.
func (s *Sim) Addr() string { return s.ln.Addr().String() }

// ControlURL is the base URL of the control API (endpoints under /control/).
func (s *Sim) ControlURL() string { return s.ctlURL }

// Dir is the directory of the host key, users and state.
func (s *Sim) Dir() string { return s.opts.Dir }

// HostKey is the server's public host key as an authorized_keys line
// ("ssh-ed25519 AAAA…"), for a client to pin.
func (s *Sim) HostKey() string { return authorizedKey(s.hostKey.PublicKey()) }

// Fingerprint is the host key's SHA256 fingerprint as OpenSSH prints it
// ("SHA256:…").
func (s *Sim) Fingerprint() string { return ssh.FingerprintSHA256(s.hostKey.PublicKey()) }

// UserDir is the folder a user's SFTP session is rooted in (holding upload/,
// download/ and archive/).
func (s *Sim) UserDir(user string) string { return filepath.Join(s.opts.Dir, "users", user) }

// DropNext makes the next n uploads (files opened for writing in upload/) have
// their connection closed once afterBytes bytes of them were written; an
// upload that ends before that is cut when it closes the file. The partial
// file stays where it was written. It replaces any pending DropNext.
func (s *Sim) DropNext(n, afterBytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext = dropRule{n: max(n, 0), afterBytes: int64(max(afterBytes, 0))}
}

// DropAfterRename makes the next n renames of files in upload/ happen and then
// closes the connection without an answer: the client cannot tell whether the
// bank has its file. Renames elsewhere (moving fetched reports) are not
// counted. It replaces any pending DropAfterRename.
func (s *Sim) DropAfterRename(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfter = max(n, 0)
}

// HoldNext makes the next n uploads (files opened for writing in upload/) stall
// once afterBytes bytes of them were written, for up to hold or until their
// connection closes, whichever comes first; an upload that ends before that
// stalls when it closes the file. The connection stays open meanwhile, so a
// test can kill the uploading process mid-upload (see Holding). After hold the
// upload goes on as if nothing happened; after a closed connection the partial
// file stays where it was written. An upload a drop-next claims is dropped,
// not held. It replaces any pending HoldNext.
func (s *Sim) HoldNext(n, afterBytes int, hold time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holdNext = holdRule{n: max(n, 0), afterBytes: int64(max(afterBytes, 0)), hold: max(hold, 0)}
}

// Holding is how many uploads HoldNext stalls right now.
func (s *Sim) Holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.held {
		n += c
	}
	return n
}

// SetSlow delays the reports of files consumed from now on by d (0: no delay).
func (s *Sim) SetSlow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = max(d, 0)
}

func (s *Sim) claimDrop() (afterBytes int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropNext.n <= 0 {
		return 0, false
	}
	s.dropNext.n--
	return s.dropNext.afterBytes, true
}

func (s *Sim) claimHold() (holdRule, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holdNext.n <= 0 {
		return holdRule{}, false
	}
	s.holdNext.n--
	return s.holdNext, true
}

func (s *Sim) claimDropAfterRename() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropAfter <= 0 {
		return false
	}
	s.dropAfter--
	return true
}
