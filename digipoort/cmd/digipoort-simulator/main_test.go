package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"koerier/digipoort/devcerts"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRunPrintsEnvironmentAndStops starts the binary's run loop, checks what it prints
// and that cancelling (what SIGINT/SIGTERM do) stops it cleanly.
func TestRunPrintsEnvironmentAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki dir")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-control-addr", "127.0.0.1:0", "-dir", dir, "-step", "10ms"}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "Scenarios by aanleverkenmerk") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := stdout.String()
	for _, want := range []string{
		"export KOERIER_DIGIPOORT_URL=https://127.0.0.1:",
		"export KOERIER_DIGIPOORT_CLIENT_CERT='" + filepath.Join(dir, "client.pem") + "'",
		"export KOERIER_DIGIPOORT_CLIENT_KEY=", "export KOERIER_DIGIPOORT_CA=", "export KOERIER_DIGIPOORT_SIGNING_CERT=",
		"export KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD=koerier-simulator", "control API:   http://127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "signing.pem")); err != nil {
		t.Error(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	if !strings.Contains(stderr.String(), "Digipoort simulator stopped") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	if err := run(context.Background(), []string{"-signature", "md5"}, &stdout, &stderr); err == nil {
		t.Error("unknown signature algorithm accepted")
	}
}

// TestRunRealistic starts the binary in realistic mode (-realistic -scale) and checks
// that the banner and GET /sim/mode say so; a scale outside (0, 1] is refused before
// anything starts.
func TestRunRealistic(t *testing.T) {
	var stdout, stderr syncBuffer
	for _, bad := range []string{"0", "1.5", "-1"} {
		if err := run(context.Background(), []string{"-realistic", "-scale", bad}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "-scale") {
			t.Errorf("-scale %s: %v", bad, err)
		}
	}
	t.Setenv("KOERIER_SIM_REALISTIC", "maybe")
	if err := run(context.Background(), nil, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "KOERIER_SIM_REALISTIC") {
		t.Errorf("KOERIER_SIM_REALISTIC=maybe: %v", err)
	}
	t.Setenv("KOERIER_SIM_REALISTIC", "")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-control-addr", "127.0.0.1:0", "-dir", t.TempDir(), "-realistic", "-scale", "0.01"},
			&stdout, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "Scenarios by aanleverkenmerk") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := stdout.String()
	if !strings.Contains(out, "mode:          realistic, scale 0.01 (a happy flow takes 5.2s") {
		t.Errorf("banner does not show the mode:\n%s", out)
	}
	_, rest, _ := strings.Cut(out, "control API:   ")
	ctl, _, _ := strings.Cut(rest, "/sim/")
	resp, err := http.Get(ctl + "/sim/mode")
	if err != nil {
		t.Fatal(err)
	}
	var mode struct {
		Realistic bool    `json:"realistic"`
		Scale     float64 `json:"scale"`
	}
	err = json.NewDecoder(resp.Body).Decode(&mode)
	resp.Body.Close()
	if err != nil || !mode.Realistic || mode.Scale != 0.01 {
		t.Errorf("GET /sim/mode: %+v %v", mode, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
}

// TestRunClientCA: -client-ca replaces the development CA as the CAs client
// certificates must chain to; the development client certificate then fails the
// handshake and one from the given CA passes. An unreadable bundle is refused.
func TestRunClientCA(t *testing.T) {
	var stdout, stderr syncBuffer
	if err := run(context.Background(), []string{"-client-ca", filepath.Join(t.TempDir(), "none.pem")}, &stdout, &stderr); err == nil ||
		!strings.Contains(err.Error(), "-client-ca") {
		t.Errorf("missing bundle: %v", err)
	}
	dir := t.TempDir()
	other, err := devcerts.NewCA("another PKIoverheid")
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "client-cas.pem")
	if err := os.WriteFile(bundle, other.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	fromOther, err := other.Issue(devcerts.ClientTemplate("a client of the other CA"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	simDir := filepath.Join(dir, "sim")
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-control-addr", "127.0.0.1:0", "-dir", simDir, "-client-ca", bundle}, &stdout, &stderr)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "Scenarios by aanleverkenmerk") {
		if time.Now().After(deadline) {
			t.Fatalf("no banner; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := stdout.String()
	if !strings.Contains(out, "client CAs:    "+bundle) {
		t.Errorf("banner does not name the client CAs:\n%s", out)
	}
	_, rest, _ := strings.Cut(out, "WUS services:  https://")
	addr, _, _ := strings.Cut(rest, "/")
	devClient, err := devcerts.LoadIssued(filepath.Join(simDir, "client.pem"), filepath.Join(simDir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	serverCA, err := devcerts.LoadIssued(filepath.Join(simDir, "ca.pem"), filepath.Join(simDir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(serverCA.Cert)
	handshake := func(cert *devcerts.Issued) error {
		conn, err := tls.Dial("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err
		}
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	if err := handshake(devClient); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the development client under -client-ca: %v, want a TLS alert about the certificate", err)
	}
	if err := handshake(fromOther); err != nil {
		t.Errorf("a client of the -client-ca CA: %v", err)
	}
}
