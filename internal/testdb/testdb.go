// Package testdb gives each test a fresh Postgres database of its own and drops it
// afterwards.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/lib/pq" // the postgres driver
)

// AdminURL is where tests create their databases: KOERIER_TEST_DATABASE_URL, or the
// local cluster with trust auth.
func AdminURL() string {
	if u := os.Getenv("KOERIER_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// New creates an empty database for t and returns its URL. The database is dropped
// when the test ends. A Postgres that cannot be reached fails the test with the
// command that starts it.
func New(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	db, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatalf("open %s: %v", admin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		t.Fatalf(
			"Postgres is not reachable at %s: %v\nStart it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` (or run `make test`, "+
				"which starts it), or point KOERIER_TEST_DATABASE_URL at a server where tests may create databases.",
			admin,
			err,
		)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "koerier_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// MustExec runs SQL against url, for tests that arrange what the API can't (e.g. age).
func MustExec(t testing.TB, dbURL, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
