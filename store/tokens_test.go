package store_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"koerier/store"
)

// A token is shown once and kept only as its hash; it names its environment; revoked,
// unknown, malformed and removed-environment tokens are refused alike.
func TestTokensIssueAuthenticateRevoke(t *testing.T) {
	f := newStore(t)
	acme := f.env("acme")
	f.env("beta")
	tok, secret, err := f.IssueToken(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "kt_") || len(secret) != 46 || tok.Environment != "acme" || tok.RevokedAt != nil {
		t.Fatalf("issued %+v %q", tok, secret)
	}
	// Only the hash is stored: no column of the row holds the secret.
	var row struct {
		Hash []byte `db:"token_sha256"`
		Text string `db:"text"`
	}
	if err := f.DB().GetContext(ctx, &row, `SELECT token_sha256, t::text AS text FROM api_tokens t WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	if string(row.Hash) != string(sum[:]) || strings.Contains(row.Text, secret[3:]) {
		t.Fatalf("stored row %q: want only sha256 of the token", row.Text)
	}
	e, err := f.Authenticate(ctx, secret)
	if err != nil || e.ID != acme.ID || e.Name != "acme" {
		t.Fatalf("authenticate: %+v %v", e, err)
	}
	_, second, err := f.IssueToken(ctx, "acme")
	if err != nil || second == secret {
		t.Fatalf("second token %q %v", second, err)
	}
	if _, _, err := f.IssueToken(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token for a missing environment: %v", err)
	}

	for name, bad := range map[string]string{
		"empty":      "",
		"malformed":  "Bearer " + secret,
		"truncated":  secret[:len(secret)-1],
		"unknown":    "kt_" + strings.Repeat("A", 43),
		"other kind": "xx_" + secret[3:],
	} {
		if _, err := f.Authenticate(ctx, bad); !errors.Is(err, store.ErrUnauthenticated) {
			t.Errorf("%s token: %v, want ErrUnauthenticated", name, err)
		}
	}

	if err := f.RevokeToken(ctx, "beta", tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("beta revoked acme's token: %v", err)
	}
	if err := f.RevokeToken(ctx, "acme", tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.RevokeToken(ctx, "acme", tok.ID); err != nil {
		t.Errorf("revoking again: %v", err)
	}
	if _, err := f.Authenticate(ctx, secret); !errors.Is(err, store.ErrUnauthenticated) {
		t.Errorf("revoked token: %v", err)
	}
	if _, err := f.Authenticate(ctx, second); err != nil {
		t.Errorf("the other token must still work: %v", err)
	}
	list, err := f.Tokens(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != tok.ID || list[0].RevokedAt == nil || list[1].RevokedAt != nil {
		t.Fatalf("tokens: %+v %v", list, err)
	}
	if n := f.count(`SELECT count(*) FROM communication_log WHERE description LIKE 'API token%'`); n != 3 {
		t.Errorf("%d log lines about tokens, want 3 (two issued, one revoked)", n)
	}

	if _, err := f.RemoveEnvironment(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Authenticate(ctx, second); !errors.Is(err, store.ErrUnauthenticated) {
		t.Errorf("token of a removed environment: %v", err)
	}
	if _, _, err := f.IssueToken(ctx, "acme"); !errors.Is(err, store.ErrRefused) {
		t.Errorf("token for a removed environment: %v", err)
	}
}
