// Package bank is Koerier's host-to-host channel to an environment's bank: it
// uploads payment files to the bank's SFTP server so that the bank never sees
// half a file, tells after a lost connection where a file ended up, and fetches
// the bank's status reports.
//
// It speaks SFTP only; what a file means for a payment order is decided by the
// callers.
package bank

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Defaults for a profile's folders, relative to the SFTP user's home.
const (
	DefaultPort        = 22
	DefaultUploadDir   = "upload"
	DefaultDownloadDir = "download"
	processedSubdir    = "processed"
)

// minRSABits refuses RSA keys that no bank should accept any more.
const minRSABits = 2048

// Profile is an environment's host-to-host endpoint at its bank.
type Profile struct {
	Host string
	Port int // 0 = 22
	User string
	// PrivateKey is the client key in PEM (OpenSSH or PKCS#8; PKCS#1 and
	// SEC1 are read too), unencrypted: Koerier encrypts it at rest. It never
	// appears in String, errors or logs.
	PrivateKey []byte
	// HostKey pins the bank's server key: an authorized_keys line
	// ("ssh-ed25519 AAAA…"), a known_hosts line as ssh-keyscan prints it, or
	// a "SHA256:…" fingerprint as ssh-keygen -l prints it.
	HostKey      string
	UploadDir    string // default "upload"
	DownloadDir  string // default "download"
	ProcessedDir string // where fetched reports are moved, default DownloadDir + "/processed" (created when missing)
	// ArchiveDir is where the bank moves the files it has consumed, if it
	// does ("" = unknown); it is looked in after an uncertain upload.
	ArchiveDir string
}

func (p Profile) port() int {
	if p.Port == 0 {
		return DefaultPort
	}
	return p.Port
}

func (p Profile) addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.port())) }

func (p Profile) uploadDir() string   { return orDefault(p.UploadDir, DefaultUploadDir) }
func (p Profile) downloadDir() string { return orDefault(p.DownloadDir, DefaultDownloadDir) }
func (p Profile) processedDir() string {
	return orDefault(p.ProcessedDir, path.Join(p.downloadDir(), processedSubdir))
}
func (p Profile) archiveDir() string {
	if strings.TrimSpace(p.ArchiveDir) == "" {
		return ""
	}
	return path.Clean(p.ArchiveDir)
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return path.Clean(def)
	}
	return path.Clean(s)
}

// String describes the profile for logs and operators: "user@host:22". It
// never contains the key.
func (p Profile) String() string { return p.User + "@" + p.addr() }

// GoString keeps %#v from printing the private key.
func (p Profile) GoString() string { return "bank.Profile(" + p.String() + ")" }

// Validate reports everything that is missing or wrong in the profile, each
// problem naming its field, so that an operator can fix them in one go. It
// parses the private key and the host key.
func (p Profile) Validate() error {
	var errs []error
	switch {
	case strings.TrimSpace(p.Host) == "":
		errs = append(errs, errors.New("field Host: empty"))
	case strings.ContainsAny(p.Host, " /:@\t\r\n") && net.ParseIP(p.Host) == nil:
		errs = append(errs, fmt.Errorf("field Host: %q is not a host name (give the port in Port, the user in User)", p.Host))
	}
	if p.Port < 0 || p.Port > 65535 {
		errs = append(errs, fmt.Errorf("field Port: %d is not a port number (1-65535, 0 for 22)", p.Port))
	}
	switch {
	case p.User == "":
		errs = append(errs, errors.New("field User: empty; the bank gives the host-to-host user name"))
	case strings.ContainsAny(p.User, " \t\r\n@"):
		errs = append(errs, fmt.Errorf("field User: %q contains a space, line break or @", p.User))
	}
	if _, err := parsePrivateKey(p.PrivateKey); err != nil {
		errs = append(errs, fmt.Errorf("field PrivateKey: %w", err))
	}
	if _, err := parseHostKey(p.HostKey); err != nil {
		errs = append(errs, fmt.Errorf("field HostKey: %w", err))
	}
	dirs := []struct{ field, value string }{
		{"UploadDir", p.UploadDir}, {"DownloadDir", p.DownloadDir},
		{"ProcessedDir", p.ProcessedDir}, {"ArchiveDir", p.ArchiveDir},
	}
	for _, d := range dirs {
		if err := checkDir(d.value); err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", d.field, err))
		}
	}
	if p.uploadDir() == p.downloadDir() {
		errs = append(errs, fmt.Errorf("field DownloadDir: %q is also the UploadDir; Koerier would read its own payment files as reports", p.downloadDir()))
	}
	if p.processedDir() == p.downloadDir() {
		errs = append(errs, fmt.Errorf("field ProcessedDir: %q is also the DownloadDir; fetched reports would never leave it", p.processedDir()))
	}
	if a := p.archiveDir(); a != "" && a == p.uploadDir() {
		errs = append(errs, fmt.Errorf("field ArchiveDir: %q is also the UploadDir; leave ArchiveDir empty if the bank does not move consumed files", a))
	}
	return errors.Join(errs...)
}

func checkDir(d string) error {
	if strings.ContainsAny(d, "\x00\r\n") {
		return fmt.Errorf("%q contains a NUL or line break", d)
	}
	for _, part := range strings.Split(d, "/") {
		if part == ".." {
			return fmt.Errorf("%q contains \"..\"; give the folder as the bank names it", d)
		}
	}
	return nil
}

// parsePrivateKey reads the client key. Its errors never quote the key: only
// x/crypto's own messages (which describe, never cite) are passed on.
func parsePrivateKey(pemBytes []byte) (ssh.Signer, error) {
	if len(strings.TrimSpace(string(pemBytes))) == 0 {
		return nil, errors.New("empty; give the PEM private key whose public half the bank has registered")
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return nil, errors.New("the key is encrypted with a passphrase; store it unencrypted (Koerier encrypts it at rest)")
		}
		detail := ""
		if msg := err.Error(); strings.HasPrefix(msg, "ssh: ") && !strings.ContainsAny(msg, "\r\n") && len(msg) < 120 {
			detail = " (" + msg + ")"
		}
		return nil, fmt.Errorf("not a readable PEM private key (OpenSSH or PKCS#8; ed25519, ecdsa or rsa)%s", detail)
	}
	pub := signer.PublicKey()
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	case ssh.KeyAlgoRSA:
		if ck, ok := pub.(ssh.CryptoPublicKey); ok {
			if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
				return nil, fmt.Errorf("the RSA key has %d bits; use at least %d, or an ed25519 key", rk.N.BitLen(), minRSABits)
			}
		}
	default:
		return nil, fmt.Errorf("key type %s is not accepted; use ed25519, ecdsa or rsa", pub.Type())
	}
	return signer, nil
}

// hostPin is the parsed HostKey: a whole key, or only its fingerprint.
type hostPin struct {
	key         ssh.PublicKey // nil when only the fingerprint is pinned
	fingerprint string
}

func parseHostKey(s string) (hostPin, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return hostPin{}, errors.New("empty; pin the bank's server key (a \"ssh-ed25519 AAAA…\" line or a \"SHA256:…\" fingerprint, obtained from the bank)")
	}
	if fp, ok := strings.CutPrefix(s, "SHA256:"); ok {
		raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fp, "="))
		if err != nil || len(raw) != 32 {
			return hostPin{}, fmt.Errorf("%q is not a SHA256 key fingerprint (\"SHA256:\" and 43 base64 characters, as ssh-keygen -l prints it)", s)
		}
		return hostPin{fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(raw)}, nil
	}
	if strings.Count(s, "\n") > 0 {
		return hostPin{}, errors.New("more than one line; pin exactly one key of the bank's server")
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		// ssh-keyscan prints known_hosts lines: "host ssh-ed25519 AAAA…".
		var kerr error
		_, _, key, _, _, kerr = ssh.ParseKnownHosts([]byte(s))
		if kerr != nil {
			return hostPin{}, fmt.Errorf("%q is neither a public key line (\"ssh-ed25519 AAAA…\") nor a \"SHA256:…\" fingerprint", truncate(s, 60))
		}
	}
	return hostPin{key: key, fingerprint: Fingerprint(key)}, nil
}

// algorithms makes a server with several host keys present the pinned one.
func (h hostPin) algorithms() []string {
	if h.key == nil {
		return nil
	}
	if h.key.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{h.key.Type()}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Fingerprint is the key's SHA256 fingerprint as OpenSSH prints it:
// "SHA256:" and unpadded base64.
func Fingerprint(pub ssh.PublicKey) string { return ssh.FingerprintSHA256(pub) }
