package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"koerier/bank/simulator"
)

// serve runs the command on dir and returns what it printed, by first word.
func serve(t *testing.T, dir string) (map[string]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-dir", dir, "-addr", "127.0.0.1:0", "-control-addr", "127.0.0.1:0", "-step", "20ms", "-poll", "10ms"}, outW, io.Discard)
		outW.Close()
	}()
	lines := map[string]string{}
	sc := bufio.NewScanner(outR)
	for len(lines) < 5 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		lines[k] = v
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	require.Len(t, lines, 5, "sftp, control, host-key, fingerprint and dir lines: %v", lines)
	stop := func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the simulator did not stop")
		}
	}
	return lines, stop
}

func TestServeRegisterUploadAndRestart(t *testing.T) {
	dir := t.TempDir()
	lines, stop := serve(t, dir)
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(lines["host-key"]))
	require.NoError(t, err, "the host-key line is an authorized_keys line")
	assert.Equal(t, ssh.FingerprintSHA256(pinned), lines["fingerprint"])

	resp, err := http.Get(lines["control"] + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	key, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	body, _ := json.Marshal(simulator.UserRequest{User: "demo", PublicKey: string(ssh.MarshalAuthorizedKey(key.PublicKey()))})
	resp, err = http.Post(lines["control"]+"/control/users", "application/json", strings.NewReader(string(body)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	conn, err := ssh.Dial("tcp", lines["sftp"], &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 5 * time.Second})
	require.NoError(t, err)
	c, err := sftp.NewClient(conn)
	require.NoError(t, err)
	f, err := c.Create("upload/x.xml")
	require.NoError(t, err)
	_, err = f.Write([]byte("not a payment file"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, func() bool {
		entries, err := c.ReadDir("download")
		return err == nil && len(entries) == 1 && entries[0].Name() == "x-1.xml"
	}, 10*time.Second, 10*time.Millisecond, "the bank answers the file")
	c.Close()
	stop()

	// A restart on the same -dir keeps the host key and the user.
	again, stop := serve(t, dir)
	defer stop()
	assert.Equal(t, lines["host-key"], again["host-key"])
	conn, err = ssh.Dial("tcp", again["sftp"], &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(pinned), Timeout: 5 * time.Second})
	require.NoError(t, err)
	conn.Close()
}

func TestBadFlags(t *testing.T) {
	assert.Error(t, run(context.Background(), []string{"-nope"}, io.Discard, io.Discard))
	assert.ErrorContains(t, run(context.Background(), []string{"extra"}, io.Discard, io.Discard), "unexpected argument")
	t.Setenv("KOERIER_BANK_SIM_STEP", "soon")
	assert.ErrorContains(t, run(context.Background(), nil, io.Discard, io.Discard), "KOERIER_BANK_SIM_STEP")
}
