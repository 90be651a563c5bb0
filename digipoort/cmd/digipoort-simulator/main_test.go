package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
