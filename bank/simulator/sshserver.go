package simulator

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/ssh"
)

// handshakeTimeout bounds how long a connection may take to authenticate, so a
// client that connects and says nothing does not hold a goroutine for ever.
const handshakeTimeout = 30 * time.Second

func (s *Sim) serverConfig() *ssh.ServerConfig {
	conf := &ssh.ServerConfig{
		// Banks take public keys only; no password, no keyboard-interactive.
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.authorized(meta.User(), key) {
				return &ssh.Permissions{Extensions: map[string]string{"user": meta.User()}}, nil
			}
			s.log.WithFields(logrus.Fields{"user": meta.User(), "key": ssh.FingerprintSHA256(key), "remote": meta.RemoteAddr().String()}).
				Warn("refused a key that is not registered for this user")
			return nil, fmt.Errorf("key %s is not registered for user %q", ssh.FingerprintSHA256(key), meta.User())
		},
		MaxAuthTries:  6,
		ServerVersion: "SSH-2.0-KoerierBankSimulator",
	}
	conf.AddHostKey(s.hostKey)
	return conf
}

func (s *Sim) acceptLoop() {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
			default:
				if !errors.Is(err, net.ErrClosed) {
					s.log.WithError(err).Error("stopped accepting SFTP connections")
				}
			}
			return
		}
		if !s.track(c) {
			c.Close()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.untrack(c)
			s.serveConn(c)
		}()
	}
}

// track remembers an open connection so that Close can break it off; false
// once the simulator is closing.
func (s *Sim) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Sim) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.Close()
}

func (s *Sim) serveConn(c net.Conn) {
	log := s.log.WithField("remote", c.RemoteAddr().String())
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.sshConf)
	if err != nil {
		log.WithError(err).Info("SSH handshake failed")
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sconn.Close()
	user := sconn.Permissions.Extensions["user"]
	log = log.WithField("user", user)
	log.Info("SFTP session opened")
	go ssh.DiscardRequests(reqs)
	// Closed when the client is gone (it hung up, its process died, or a fault
	// scenario or Close cut the connection); a held upload waits for it.
	gone := make(chan struct{})
	go func() { _ = sconn.Wait(); close(gone) }()

	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels (for the sftp subsystem)")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			log.WithError(err).Warn("accept an SSH channel")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveSession(c, gone, user, ch, chReqs, log)
		}()
	}
	log.Info("SFTP session closed")
}

// serveSession runs the sftp subsystem on a session channel; a bank offers no
// shell, exec or port forwarding.
func (s *Sim) serveSession(c net.Conn, gone <-chan struct{}, user string, ch ssh.Channel, reqs <-chan *ssh.Request, log logrus.FieldLogger) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "subsystem" || !isSFTP(req.Payload) {
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
			continue
		}
		if req.WantReply {
			_ = req.Reply(true, nil)
		}
		go rejectAll(reqs)
		fs, err := s.newUserFS(user, c, gone, log)
		if err != nil {
			log.WithError(err).Error("open the user's folder")
			return
		}
		defer fs.close()
		h := sftp.Handlers{FileGet: fs, FilePut: fs, FileCmd: fs, FileList: fs}
		if err := sftp.NewRequestServer(ch, h).Serve(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			log.WithError(err).Debug("sftp session ended")
		}
		return
	}
}

// rejectAll refuses the requests that follow the sftp subsystem on its channel.
func rejectAll(reqs <-chan *ssh.Request) {
	for req := range reqs {
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
}

// isSFTP says whether a subsystem request's payload (an SSH string) names sftp.
func isSFTP(payload []byte) bool {
	var p struct{ Name string }
	return ssh.Unmarshal(payload, &p) == nil && p.Name == "sftp"
}
