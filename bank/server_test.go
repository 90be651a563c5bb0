package bank

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is a real SSH server on 127.0.0.1 serving a temporary directory
// over SFTP with pkg/sftp's request server, with faults switched on per test.
type testServer struct {
	t        *testing.T
	root     string
	port     int
	hostKey  ssh.Signer
	authKey  ssh.PublicKey // the one client key it accepts
	authSeen atomic.Int32  // public-key login attempts

	mu              sync.Mutex
	cutAfter        int64         // > 0: hang up after this many bytes were written to files
	written         int64         // bytes written to files so far
	dropAfterRename bool          // rename, then hang up without answering
	hangOnRename    chan struct{} // non-nil: a rename waits for this to close, never answering in time
	conns           []*ssh.ServerConn
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func startServer(t *testing.T, authKey ssh.PublicKey) *testServer {
	t.Helper()
	hostKey, _ := newKey(t)
	s := &testServer{t: t, root: t.TempDir(), hostKey: hostKey, authKey: authKey}
	for _, d := range []string{"upload", "download"} {
		if err := os.Mkdir(filepath.Join(s.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			s.authSeen.Add(1)
			if bytes.Equal(key.Marshal(), s.authKey.Marshal()) {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serveConn(nc, cfg)
			}()
		}
	}()
	return s
}

func (s *testServer) serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		nc.Close()
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, sc)
	s.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go func() {
			for req := range creqs {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				_ = req.Reply(ok, nil)
				if ok {
					go func() {
						rs := sftp.NewRequestServer(ch, sftp.Handlers{
							FileGet: &fsHandler{s, sc}, FilePut: &fsHandler{s, sc},
							FileCmd: &fsHandler{s, sc}, FileList: &fsHandler{s, sc},
						})
						_ = rs.Serve()
						rs.Close()
					}()
				}
			}
		}()
	}
}

func (s *testServer) path(name ...string) string {
	return filepath.Join(append([]string{s.root}, name...)...)
}

func (s *testServer) profile(key []byte) Profile {
	return Profile{
		Host: "127.0.0.1", Port: s.port, User: "koerier",
		PrivateKey: key,
		HostKey:    string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey())),
	}
}

// fsHandler serves the server's root directory, with the faults.
type fsHandler struct {
	s  *testServer
	sc *ssh.ServerConn
}

func (h *fsHandler) local(r *sftp.Request) string { return h.s.path(filepath.FromSlash(r.Filepath)) }

func (h *fsHandler) Fileread(r *sftp.Request) (io.ReaderAt, error) { return os.Open(h.local(r)) }

func (h *fsHandler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	flags := os.O_WRONLY | os.O_CREATE
	if r.Pflags().Trunc {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(h.local(r), flags, 0o644)
	if err != nil {
		return nil, err
	}
	return &cuttingWriter{File: f, h: h}, nil
}

// cuttingWriter writes until the server's cutAfter budget is spent, then
// hangs up the SSH connection: a connection lost in the middle of a file.
type cuttingWriter struct {
	*os.File
	h *fsHandler
}

func (w *cuttingWriter) WriteAt(b []byte, off int64) (int, error) {
	s := w.h.s
	s.mu.Lock()
	cut := false
	if s.cutAfter > 0 && s.written+int64(len(b)) > s.cutAfter {
		b = b[:s.cutAfter-s.written]
		cut = true
	}
	s.written += int64(len(b))
	s.mu.Unlock()
	n, err := w.File.WriteAt(b, off)
	if cut {
		w.h.sc.Close()
		return n, errors.New("connection cut by the test")
	}
	return n, err
}

func (h *fsHandler) Filecmd(r *sftp.Request) error {
	switch r.Method {
	case "Rename":
		// Like OpenSSH: a plain rename never replaces an existing file.
		if _, err := os.Lstat(h.s.path(filepath.FromSlash(r.Target))); err == nil {
			return sftp.ErrSSHFxFailure
		}
		return h.rename(r)
	case "Mkdir":
		return os.Mkdir(h.local(r), 0o755)
	case "Remove":
		return os.Remove(h.local(r))
	case "Rmdir":
		return os.Remove(h.local(r))
	case "Setstat":
		return nil
	}
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as posix-rename@openssh.com does.
func (h *fsHandler) PosixRename(r *sftp.Request) error { return h.rename(r) }

func (h *fsHandler) rename(r *sftp.Request) error {
	h.s.mu.Lock()
	drop, hang := h.s.dropAfterRename, h.s.hangOnRename
	h.s.mu.Unlock()
	if hang != nil {
		<-hang
		return errors.New("too late")
	}
	err := os.Rename(h.local(r), h.s.path(filepath.FromSlash(r.Target)))
	if drop {
		h.sc.Close()
		return errors.New("connection dropped by the test")
	}
	return err
}

func (h *fsHandler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	switch r.Method {
	case "List":
		entries, err := os.ReadDir(h.local(r))
		if err != nil {
			return nil, err
		}
		var infos listerAt
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				return nil, err
			}
			infos = append(infos, fi)
		}
		sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
		return infos, nil
	case "Stat":
		fi, err := os.Stat(h.local(r))
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	return nil, sftp.ErrSSHFxOpUnsupported
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}

// keyChunks are pieces of a PEM key's body; none may appear in any text.
func keyChunks(key []byte) []string {
	var chunks []string
	for _, line := range strings.Split(string(key), "\n") {
		if strings.HasPrefix(line, "-----") {
			continue
		}
		for i := 0; i+16 <= len(line); i += 16 {
			chunks = append(chunks, line[i:i+16])
		}
	}
	return chunks
}
