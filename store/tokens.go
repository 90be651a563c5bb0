package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
)

// Token is an environment's API token as it is listed: never the secret, which is
// shown once when issued and kept only as its SHA-256.
type Token struct {
	ID          int64      `db:"id"          json:"id"`
	Environment string     `db:"environment" json:"environment"`
	CreatedAt   time.Time  `db:"created_at"  json:"created_at"`
	RevokedAt   *time.Time `db:"revoked_at"  json:"revoked_at,omitempty"`
}

// tokenPrefix marks Koerier's tokens so that one pasted in the wrong place is
// recognised (and secret scanners can find it); 32 random bytes follow, base64url.
const tokenPrefix = "kt_"

var tokenLen = len(tokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

func tokenHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// IssueToken makes a new token for an active environment and returns the secret once.
// A fast hash is enough: the secret is 256 random bits, not a password to guess.
func (s *Store) IssueToken(ctx context.Context, env string) (Token, string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Token{}, "", fmt.Errorf("issue a token for %s: no randomness: %w", env, err)
	}
	secret := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var t Token
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		e, err := activeEnvironment(ctx, tx, env)
		if err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &t, `INSERT INTO api_tokens (environment_id, token_sha256) VALUES ($1, $2)
			RETURNING id, $3::text AS environment, created_at, revoked_at`, e.ID, tokenHash(secret), e.Name); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &e.ID, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("API token %d issued for environment %s", t.ID, e.Name)})
	})
	if err != nil {
		return Token{}, "", fmt.Errorf("issue a token for %s: %w", env, err)
	}
	return t, secret, nil
}

// Tokens lists an environment's tokens, revoked ones included, oldest first.
func (s *Store) Tokens(ctx context.Context, env string) ([]Token, error) {
	e, err := s.Environment(ctx, env)
	if err != nil {
		return nil, err
	}
	out := []Token{}
	if err := s.db.SelectContext(ctx, &out, `SELECT id, $2::text AS environment, created_at, revoked_at FROM api_tokens
		WHERE environment_id = $1 ORDER BY id`, e.ID, e.Name); err != nil {
		return nil, fmt.Errorf("list the tokens of %s: %w", env, err)
	}
	return out, nil
}

// RevokeToken revokes one of the environment's tokens; the next request with it is
// refused. Revoking a revoked token changes nothing.
func (s *Store) RevokeToken(ctx context.Context, env string, id int64) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var envID int64
		var revoked *time.Time
		err := tx.QueryRowxContext(ctx, `SELECT t.environment_id, t.revoked_at FROM api_tokens t JOIN environments e ON e.id = t.environment_id
			WHERE t.id = $1 AND e.name = $2 FOR UPDATE OF t`, id, env).Scan(&envID, &revoked)
		if isNoRows(err) {
			return fmt.Errorf("%w: environment %s has no token %d (see `starter environments tokens %s`)", ErrNotFound, env, id, env)
		}
		if err != nil || revoked != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		return writeLog(ctx, tx, LogEntry{EnvironmentID: &envID, Step: domain.StepEnvironment, Level: domain.LevelInfo,
			Description: fmt.Sprintf("API token %d of environment %s revoked", id, env)})
	})
	if err != nil {
		return fmt.Errorf("revoke token %d of %s: %w", id, env, err)
	}
	return nil
}

// Authenticate returns the environment a token belongs to. A malformed, unknown or
// revoked token, or one of a removed environment, is ErrUnauthenticated, all alike:
// the caller learns nothing about which tokens exist.
func (s *Store) Authenticate(ctx context.Context, secret string) (Environment, error) {
	if len(secret) != tokenLen || !strings.HasPrefix(secret, tokenPrefix) {
		return Environment{}, fmt.Errorf("%w: not a Koerier API token (kt_...): ask the operator for one (`starter environments token NAME`)",
			ErrUnauthenticated)
	}
	var e Environment
	err := s.db.GetContext(ctx, &e, `SELECT e.id, e.name, e.auto_send, e.auto_process, e.email_from, e.smtp_address, e.active, e.created_at,
		e.removed_at FROM api_tokens t JOIN environments e ON e.id = t.environment_id
		WHERE t.token_sha256 = $1 AND t.revoked_at IS NULL AND e.active`, tokenHash(secret))
	if isNoRows(err) {
		return Environment{}, fmt.Errorf("%w: the token is unknown or revoked: ask the operator for a new one", ErrUnauthenticated)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("check an API token: %w", err)
	}
	return e, nil
}

// activeEnvironment reads an environment that may still act (queue, get a token or an
// endpoint) and keeps it from being removed until the transaction ends.
func activeEnvironment(ctx context.Context, tx *sqlx.Tx, name string) (Environment, error) {
	var e Environment
	err := tx.GetContext(ctx, &e, `SELECT id, name, auto_send, auto_process, email_from, smtp_address, active, created_at, removed_at
		FROM environments WHERE name = $1 FOR SHARE`, name)
	if isNoRows(err) {
		return Environment{}, fmt.Errorf("%w: environment %q does not exist (see `starter environments list`)", ErrNotFound, name)
	}
	if err != nil {
		return Environment{}, err
	}
	if !e.Active {
		return Environment{}, fmt.Errorf("%w: environment %s was removed on %s", ErrRefused, e.Name, e.RemovedAt.Format(time.DateOnly))
	}
	return e, nil
}
