package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"koerier/store"
)

// bankControl is the bank simulator's control API (koerier/bank/simulator). Its
// bodies are copied here rather than imported, as the command line does, so that the
// benchmark does not carry the simulator.
type bankControl struct{ base string }

type bankHostKey struct {
	AuthorizedKey string `json:"authorized_key"`
	Addr          string `json:"addr"`
}

// bankFile is one file the simulator consumed from a user's upload folder.
type bankFile struct {
	MsgID     string `json:"msg_id"`
	TimesSeen int    `json:"times_seen"`
}

func (b bankControl) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return fmt.Errorf("bank simulator %s %s: %w (check --bank-control)", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("the bank simulator does not answer at %s (%v): start it with `make run`, or set --bank-control", b.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("the bank simulator refused %s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(text)))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("read the bank simulator's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// files lists what user uploaded and the simulator consumed, each with how many times
// its MsgId arrived.
func (b bankControl) files(ctx context.Context, user string) ([]bankFile, error) {
	var v struct {
		Files []bankFile `json:"files"`
	}
	err := b.call(ctx, http.MethodGet, "/control/files?user="+url.QueryEscape(user), nil, &v)
	return v.Files, err
}

// localBank gives the benchmark's environments bank profiles on the simulator, as
// `starter environments add NAME --local-bank` does: each its own new ed25519 key,
// registered as SFTP user NAME, and the simulator's host key pinned. addr is where
// the workers reach the simulator's SFTP; empty takes the address the simulator names.
func localBank(ctx context.Context, st *store.Store, ctl bankControl, addr string, envs []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var hk bankHostKey
	if err := ctl.call(ctx, http.MethodGet, "/control/host-key", nil, &hk); err != nil {
		return err
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk.AuthorizedKey)); err != nil {
		return fmt.Errorf("%s/control/host-key gave no host key (%v): is --bank-control the bank simulator?", ctl.base, err)
	}
	if addr == "" {
		addr = hk.Addr
	}
	if hk.Addr != "" && hk.Addr != addr {
		// The pinned host key would be that server's, the profile another's.
		return fmt.Errorf("the bank simulator at %s serves SFTP on %s, but --bank-addr is %s: give the one it serves (or `source .koerier/env.sh`)",
			ctl.base, hk.Addr, addr)
	}
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || host == "" {
		return fmt.Errorf("--bank-addr %q is not host:port: give the bank simulator's SFTP address (KOERIER_DEV_BANK)", addr)
	}
	for _, env := range envs {
		key, pub, err := newBankKey(env)
		if err != nil {
			return err
		}
		if err := ctl.call(ctx, http.MethodPost, "/control/users", map[string]string{"user": env, "public_key": pub}, nil); err != nil {
			return err
		}
		if err := st.SetBankProfile(ctx, env, store.BankProfile{Host: host, Port: port, User: env, PrivateKey: key, HostKey: hk.AuthorizedKey,
			UploadDir: store.DefaultBankUploadDir, DownloadDir: store.DefaultBankDownloadDir, ProcessedDir: store.DefaultBankProcessedDir,
			ArchiveDir: "archive", Local: true}, "the benchmark"); err != nil {
			return err
		}
	}
	return nil
}

// newBankKey makes an environment's login key: the private half as OpenSSH PEM, the
// public half as the authorized_keys line the simulator registers.
func newBankKey(env string) (key []byte, pub string, err error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("make a bank key for environment %s: %w", env, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "koerier "+env)
	if err != nil {
		return nil, "", fmt.Errorf("make a bank key for environment %s: %w", env, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("make a bank key for environment %s: %w", env, err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))), nil
}
