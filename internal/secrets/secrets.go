// Package secrets seals the few secrets Koerier must keep in Postgres (the passwords of
// an environment's e-mail profile) with a key that is not in the database: a copy of the
// database alone does not give away the mailboxes.
//
// A sealed secret is a format version byte, a random 12-byte nonce and the AES-256-GCM
// ciphertext with its tag. The version byte lets a later format (another cipher, a key
// id for rotation) be told apart from this one.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// EnvVar names the setting that holds the key.
const EnvVar = "KOERIER_SECRET_KEY"

// KeySize is the length of a key: AES-256.
const KeySize = 32

// formatV1 marks AES-256-GCM with a 12-byte nonce.
const formatV1 byte = 1

// ErrNoKey is FromEnv's answer when the setting is empty: nothing is sealed then, and a
// caller that needs a secret says so.
var ErrNoKey = errors.New(EnvVar + " is not set")

const howToMake = "make one with `openssl rand -base64 32` and keep it: secrets stored with it cannot be read without it"

// Box seals and opens secrets with one key. It is safe for concurrent use.
type Box struct{ aead cipher.AEAD }

// New returns a box for a key of KeySize bytes.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key has %d bytes, want %d: %s", len(key), KeySize, howToMake)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &Box{aead: aead}, nil
}

// FromEnv returns the box for KOERIER_SECRET_KEY (base64 of 32 bytes), or ErrNoKey
// when it is not set.
func FromEnv() (*Box, error) {
	v := strings.TrimSpace(os.Getenv(EnvVar))
	if v == "" {
		return nil, ErrNoKey
	}
	return Parse(v)
}

// Parse returns the box for a key written as base64 of 32 bytes, as KOERIER_SECRET_KEY
// holds it. The key itself never appears in an error.
func Parse(encoded string) (*Box, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return nil, fmt.Errorf("%s is not base64: %s", EnvVar, howToMake)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("%s holds %d bytes, want %d: %s", EnvVar, len(key), KeySize, howToMake)
	}
	return New(key)
}

// NewKey returns a fresh random key in the form KOERIER_SECRET_KEY takes, for scripts
// and tests.
func NewKey() string {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		// crypto/rand does not fail on supported platforms; a key that is not random
		// must never be handed out.
		panic(fmt.Sprintf("secrets: read random key: %v", err))
	}
	return base64.StdEncoding.EncodeToString(key)
}

// Seal encrypts plain with a fresh random nonce: sealing the same secret twice gives two
// different results.
func (b *Box) Seal(plain []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("secrets: read random nonce: %v", err))
	}
	out := make([]byte, 0, 1+len(nonce)+len(plain)+b.aead.Overhead())
	out = append(out, formatV1)
	out = append(out, nonce...)
	// The version byte is authenticated too: it cannot be changed to make the rest
	// read another way.
	return b.aead.Seal(out, nonce, plain, out[:1])
}

// Open decrypts what Seal sealed. It fails when the secret was sealed with another key
// or changed since.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() {
		return nil, fmt.Errorf("sealed secret is too short (%d bytes): it was not stored by Koerier", len(sealed))
	}
	if sealed[0] != formatV1 {
		return nil, fmt.Errorf("sealed secret has format %d, this Koerier reads format %d: upgrade Koerier", sealed[0], formatV1)
	}
	plain, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealed[:1])
	if err != nil {
		return nil, fmt.Errorf("the secret cannot be opened: %s does not match the key it was stored with (or the stored value was changed); "+
			"set the key it was stored with, or store the secret again", EnvVar)
	}
	return plain, nil
}
