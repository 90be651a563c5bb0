package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"koerier/mail/devserver"
)

func TestServeWithGeneratedCertsAndList(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-smtp", "127.0.0.1:0", "-imap", "127.0.0.1:0", "-web", "127.0.0.1:0",
			"-dir", dir, "-password", "pw", "-log-level", "error"}, outW, io.Discard)
		outW.Close()
	}()

	addrs := map[string]string{}
	sc := bufio.NewScanner(outR)
	for len(addrs) < 4 && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 {
			addrs[f[0]] = f[1]
		}
	}
	go io.Copy(io.Discard, outR)
	require.Len(t, addrs, 4, "SMTP, IMAP, web and CA lines: %v", addrs)
	assert.Equal(t, filepath.Join(dir, "ca.pem"), addrs["CA"])

	// The generated CA verifies the generated server certificate.
	roots := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	certPEM, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	require.NoError(t, err)
	block, _ := pem.Decode(certPEM)
	require.NotNil(t, block)
	leaf, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: roots})
	require.NoError(t, err)

	// And the running server presents it over STARTTLS.
	c, err := smtp.DialStartTLS(addrs["SMTP"], &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	require.NoError(t, err)
	raw := "From: <a@koerier.test>\r\nTo: <b@koerier.test>\r\nSubject: Factuur  2026-001\r\nMessage-ID: <cmd-1@koerier.test>\r\n\r\nhi\r\n"
	require.NoError(t, c.SendMail("a@koerier.test", []string{"b@koerier.test"}, strings.NewReader(raw)))
	c.Close()

	var table bytes.Buffer
	require.NoError(t, run(ctx, []string{"list", "-web", addrs["web"]}, &table, io.Discard))
	assert.Contains(t, table.String(), "b@koerier.test")
	assert.Contains(t, table.String(), "Factuur 2026-001")
	assert.Contains(t, table.String(), "cmd-1@koerier.test")
	assert.Contains(t, table.String(), "2 message(s) in 2 mailbox(es)") // INBOX of b, Sent of a

	var js bytes.Buffer
	require.NoError(t, run(ctx, []string{"list", "--web", addrs["web"], "--json"}, &js, io.Discard))
	var ov devserver.Overview
	require.NoError(t, json.Unmarshal(js.Bytes(), &ov))
	assert.Len(t, ov.Mailboxes, 2)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}

	// A restart reuses the certificates, so clients keep trusting ca.pem.
	_, err = devserver.EnsureCerts(dir)
	require.NoError(t, err)
	again, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	assert.Equal(t, caPEM, again)
}

func TestServeNeedsPassword(t *testing.T) {
	t.Setenv("KOERIER_DEV_MAIL_PASSWORD", "")
	err := run(context.Background(), []string{"-smtp", "127.0.0.1:0", "-imap", "127.0.0.1:0", "-web", ""}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "KOERIER_DEV_MAIL_PASSWORD")
}

func TestListExplainsUnreachableServer(t *testing.T) {
	err := run(context.Background(), []string{"list", "-web", "http://127.0.0.1:1"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "is koerier-mail running")
}
