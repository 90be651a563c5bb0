package secrets_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"koerier/internal/secrets"
)

func box(t *testing.T) *secrets.Box {
	t.Helper()
	b, err := secrets.Parse(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	b := box(t)
	plain := []byte("hunter2 — wachtwoord")
	s1, s2 := b.Seal(plain), b.Seal(plain)
	if bytes.Contains(s1, plain) {
		t.Fatal("sealed secret contains the plain text")
	}
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals of one secret are equal: the nonce is not fresh")
	}
	for _, s := range [][]byte{s1, s2} {
		got, err := b.Open(s)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open: %q, %v", got, err)
		}
	}
	if got, err := b.Open(b.Seal(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty secret: %q, %v", got, err)
	}
}

func TestTamperDetected(t *testing.T) {
	b := box(t)
	s := b.Seal([]byte("secret"))
	for i := range s {
		c := bytes.Clone(s)
		c[i] ^= 0x01
		if _, err := b.Open(c); err == nil {
			t.Fatalf("a flipped bit at byte %d of %d was not detected", i, len(s))
		}
	}
	if _, err := b.Open(s[:len(s)-1]); err == nil {
		t.Fatal("a truncated secret opened")
	}
	if _, err := b.Open(s[:5]); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	s := box(t).Seal([]byte("secret"))
	_, err := box(t).Open(s)
	if err == nil || !strings.Contains(err.Error(), "does not match the key it was stored with") {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(secrets.EnvVar, "")
	if _, err := secrets.FromEnv(); !errors.Is(err, secrets.ErrNoKey) {
		t.Fatalf("unset: %v", err)
	}
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	for _, bad := range []string{"not base64!", short} {
		t.Setenv(secrets.EnvVar, bad)
		_, err := secrets.FromEnv()
		if err == nil || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Fatalf("%q: %v", bad, err)
		}
		if strings.Contains(err.Error(), bad) {
			t.Fatalf("the error repeats the key: %v", err)
		}
	}
	key := secrets.NewKey()
	t.Setenv(secrets.EnvVar, key+"\n")
	b, err := secrets.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := secrets.Parse(key)
	if got, err := other.Open(b.Seal([]byte("x"))); err != nil || string(got) != "x" {
		t.Fatalf("same key from env and Parse: %q %v", got, err)
	}
	if _, err := secrets.New(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was taken")
	}
}
