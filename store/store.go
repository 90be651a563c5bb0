// Package store keeps Koerier's messages, attachments, replies, log and locks in
// Postgres. Every operation that must be atomic is one transaction, and the rules that
// must hold against concurrent callers (highest status wins, one lock holder, one
// version per declaration) are decided in SQL.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/internal/secrets"
)

// Errors callers branch on. They are wrapped with the detail a person needs.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid input")
	ErrRefused  = errors.New("refused")
	// ErrConflict is a request that reuses a key (an idempotency key, a client
	// reference) with other content.
	ErrConflict = errors.New("conflict")
	// ErrUnauthenticated is a credential the store does not accept (an API token).
	ErrUnauthenticated = errors.New("unauthenticated")
)

// DefaultMaxConns is a worker's connection pool: room for the activities that run at
// once against a server's default of 100 connections shared by several processes.
const DefaultMaxConns = 20

// Store is Koerier's Postgres store.
type Store struct {
	db      *sqlx.DB
	catalog domain.Catalog
	prefix  string
	secrets *secrets.Box
}

// Options tune a store.
type Options struct {
	// MaxConns bounds the connection pool (KOERIER_DB_MAX_CONNS for the worker); 0
	// means DefaultMaxConns.
	MaxConns int
	// Catalog of message types; the zero value means domain.DefaultCatalog().
	Catalog *domain.Catalog
	// Migrate applies the embedded migrations on open.
	Migrate bool
	// AanleverkenmerkPrefix names this installation in every aanleverkenmerk
	// (KOERIER_AANLEVERKENMERK_PREFIX); empty means domain.DefaultAanleverkenmerkPrefix.
	AanleverkenmerkPrefix string
	// Secrets seals and opens the passwords of e-mail profiles (KOERIER_SECRET_KEY);
	// nil means none can be stored or read, and the store says so when one is needed.
	Secrets *secrets.Box
}

// Open connects to Postgres, checks that it answers and, if asked, migrates.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redactURL(url), err)
	}
	n := opts.MaxConns
	if n <= 0 {
		n = DefaultMaxConns
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf(
			"connect to Postgres at %s: %w (is it running? locally: pg_ctlcluster --skip-systemctl-redirect 15 main start, or set KOERIER_DATABASE_URL)",
			redactURL(url),
			err,
		)
	}
	cat := domain.DefaultCatalog()
	if opts.Catalog != nil {
		cat = *opts.Catalog
	}
	if opts.Migrate {
		if _, err := Migrate(ctx, db.DB, cat); err != nil {
			db.Close()
			return nil, err
		}
	}
	prefix := opts.AanleverkenmerkPrefix
	if prefix == "" {
		prefix = domain.DefaultAanleverkenmerkPrefix
	}
	if err := domain.ValidateAanleverkenmerkPrefix(prefix); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, catalog: cat, prefix: prefix, secrets: opts.Secrets}, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the pool for tests and benchmarks that measure the database itself.
func (s *Store) DB() *sqlx.DB { return s.db }

// Catalog returns the message types this store accepts.
func (s *Store) Catalog() domain.Catalog { return s.catalog }

// inTx runs fn in one transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// redactURL names the server and database of a URL for an error message, without
// the user or password.
func redactURL(u string) string {
	pu, err := neturl.Parse(u)
	if err != nil || pu.Host == "" {
		return "(the configured database)"
	}
	return strconv.Quote(pu.Host + pu.Path)
}

func isUniqueViolation(err error, constraint string) bool {
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		return constraint == "" || pe.Constraint == constraint
	}
	return false
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// EnsureDatabase creates the database that url names when the server has none by that
// name, so that a fresh machine needs no manual createdb. It reports whether it did.
func EnsureDatabase(ctx context.Context, url string) (bool, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return false, err
	}
	defer db.Close()
	err = db.PingContext(ctx)
	var pe *pq.Error
	if err == nil || !errors.As(err, &pe) || pe.Code != "3D000" {
		if err != nil {
			return false, fmt.Errorf(
				"connect to Postgres at %s: %w (is it running? locally: pg_ctlcluster --skip-systemctl-redirect 15 main start, or set KOERIER_DATABASE_URL)",
				redactURL(url),
				err,
			)
		}
		return false, nil
	}
	u, perr := neturl.Parse(url)
	if perr != nil {
		return false, fmt.Errorf("database URL: %w", perr)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return false, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name)); err != nil && !isDuplicateDatabase(err) {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

func isDuplicateDatabase(err error) bool {
	var pe *pq.Error
	return errors.As(err, &pe) && pe.Code == "42P04"
}

// lockDeclaration takes the lock of one declaration (all its versions) until the
// transaction ends: queueing a version and starting a delivery take it, so that
// versions are numbered, superseded and delivered one at a time. Taken before any
// message row, always. An empty key (an incoming message) locks nothing.
func lockDeclaration(ctx context.Context, tx *sqlx.Tx, key string) error {
	if key == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key)
	return err
}

// lockMessage reads a message and locks its row for the rest of the transaction:
// every change to a message (delivery, process, report, restore, assignment) starts
// with it, so two changes never interleave.
func lockMessage(ctx context.Context, tx *sqlx.Tx, number int64) (Message, error) {
	var m Message
	if err := tx.GetContext(ctx, &m, `SELECT `+messageColumns+messageFrom+` WHERE m.number = $1 FOR UPDATE OF m`, number); err != nil {
		if isNoRows(err) {
			return Message{}, fmt.Errorf("%w: message %d does not exist", ErrNotFound, number)
		}
		return Message{}, err
	}
	return m, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
