package simulator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The client side of the control API, for the command line and the benchmark, which
// set up profiles on a simulator another process runs. Its errors say what happened,
// not what to do: the caller knows where the address came from and adds that.

// ControlProblem is what kind of failure a *ControlError is, for the caller's advice.
type ControlProblem int

const (
	// NoAnswer: nothing answers at the address (not started, or the wrong address).
	NoAnswer ControlProblem = iota + 1
	// NotSimulator: something answers, but not as the simulator does.
	NotSimulator
	// Refused: the simulator refused the request.
	Refused
)

// ControlError is a failed call of a simulator's control API.
type ControlError struct {
	Problem ControlProblem
	msg     string
	err     error
}

func (e *ControlError) Error() string { return e.msg }
func (e *ControlError) Unwrap() error { return e.err }

// ControlURL is the base URL of a control API given as host:port or as a URL.
func ControlURL(addr string) string {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return base
}

// HostKeyOf is what the simulator at controlURL serves SFTP with: its host key, checked
// to be an authorized_keys line, and its address.
func HostKeyOf(ctx context.Context, controlURL string) (HostKeyInfo, error) {
	base := ControlURL(controlURL)
	var hk HostKeyInfo
	if err := controlCall(ctx, http.MethodGet, base, "/control/host-key", nil, &hk); err != nil {
		return HostKeyInfo{}, err
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk.AuthorizedKey)); err != nil {
		return HostKeyInfo{}, &ControlError{Problem: NotSimulator, err: err,
			msg: fmt.Sprintf("%s/control/host-key gave no host key (%v)", base, err)}
	}
	return hk, nil
}

// Register lets user log in to the simulator at controlURL with pub. It is idempotent:
// a key registered before stays, and so do the user's other keys.
func Register(ctx context.Context, controlURL, user string, pub ssh.PublicKey) error {
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	return controlCall(ctx, http.MethodPost, ControlURL(controlURL), "/control/users", UserRequest{User: user, PublicKey: line}, nil)
}

// FilesOf is what user sent to the simulator at controlURL and the reports it wrote.
func FilesOf(ctx context.Context, controlURL, user string) (Activity, error) {
	var a Activity
	err := controlCall(ctx, http.MethodGet, ControlURL(controlURL), "/control/files?user="+url.QueryEscape(user), nil, &a)
	return a, err
}

// NewKey makes an ed25519 key: the private half as OpenSSH PEM, as a bank profile
// stores it, and its signer, whose public key Register takes. comment is written into
// the PEM ("koerier acme").
func NewKey(comment string) (pemKey []byte, signer ssh.Signer, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, nil, err
	}
	if signer, err = ssh.NewSignerFromKey(priv); err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(block), signer, nil
}

// maxControlAnswer bounds an answer read: the file list of a benchmark's thousands of
// orders is a few MiB.
const maxControlAnswer = 64 << 20

// controlCall sends in (if not nil) as JSON to base+path; out, if not nil, receives the
// JSON answer.
func controlCall(ctx context.Context, method, base, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("bank simulator %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return &ControlError{Problem: NoAnswer, err: err, msg: fmt.Sprintf("bank simulator %s %s%s: %v", method, base, path, err)}
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &ControlError{Problem: NoAnswer, err: err, msg: fmt.Sprintf("the bank simulator does not answer at %s (%v)", base, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return &ControlError{Problem: Refused,
			msg: fmt.Sprintf("the bank simulator at %s refused %s %s: %s %s", base, method, path, resp.Status, strings.TrimSpace(string(text)))}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxControlAnswer)).Decode(out); err != nil {
		return &ControlError{Problem: NotSimulator, err: err, msg: fmt.Sprintf("read the bank simulator's answer to %s %s%s: %v", method, base, path, err)}
	}
	return nil
}
