package simulator

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// HostKeyFile is the file in Options.Dir holding the server's private host key
// (OpenSSH format); HostKeyFile+".pub" holds its authorized_keys line.
const HostKeyFile = "ssh_host_ed25519_key"

// ensureHostKey loads the host key from dir, or makes one the first time. The
// key must survive restarts: Koerier pins it, and a changed key is refused as
// a possible attack.
func ensureHostKey(dir string) (ssh.Signer, bool, error) {
	path := filepath.Join(dir, HostKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("read the host key %s: %w (move it away to make a new one; clients that pinned the old key will refuse the new one)", path, err)
		}
		return signer, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("read the host key: %w", err)
	}
	key, signer, err := NewKey("koerier bank simulator")
	if err != nil {
		return nil, false, fmt.Errorf("make a host key: %w", err)
	}
	// Written whole to a temporary file, then linked into place: two simulators
	// starting at once on a new Dir must not end up with different keys, and
	// neither may read half a key; the loser of the link reads the winner's.
	tmp, err := os.CreateTemp(dir, HostKeyFile+".*.tmp")
	if err != nil {
		return nil, false, fmt.Errorf("write the host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write the host key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write the host key %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return ensureHostKey(dir)
	} else if err != nil {
		return nil, false, fmt.Errorf("write the host key %s: %w", path, err)
	}
	pub := authorizedKey(signer.PublicKey()) + " koerier-bank-simulator\n"
	if err := os.WriteFile(path+".pub", []byte(pub), 0o644); err != nil {
		return nil, false, fmt.Errorf("write %s.pub: %w", path, err)
	}
	return signer, true, nil
}

// authorizedKey is pub as an authorized_keys line without a comment.
func authorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}
