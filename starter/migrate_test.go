package main

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"koerier/internal/testdb"
)

func TestMigrateCreatesTheDatabaseAndRunsTwice(t *testing.T) {
	// A database name the server does not have yet: migrate must create it.
	existing := testdb.New(t)
	u, _ := url.Parse(existing)
	u.Path += "_fresh"
	t.Cleanup(func() {
		admin, _ := url.Parse(existing)
		admin.Path = "/postgres"
		db, err := sql.Open("postgres", admin.String())
		if err == nil {
			db.Exec(`DROP DATABASE IF EXISTS ` + strings.TrimPrefix(u.Path, "/") + ` WITH (FORCE)`)
			db.Close()
		}
	})
	t.Setenv("KOERIER_DATABASE_URL", u.String())
	out, err := run(t, "migrate")
	if err != nil || !strings.Contains(out, "database created") || strings.Contains(out, "applied: 0") {
		t.Fatalf("first run: %q %v", out, err)
	}
	out, err = run(t, "migrate")
	if err != nil || !strings.Contains(out, "applied: 0") {
		t.Fatalf("second run: %q %v", out, err)
	}
}

func TestMigrateSaysHowToStartPostgres(t *testing.T) {
	t.Setenv("KOERIER_DATABASE_URL", "postgres://postgres@127.0.0.1:1/koerier?sslmode=disable&connect_timeout=2")
	_, err := run(t, "migrate")
	if err == nil || !strings.Contains(err.Error(), "pg_ctlcluster") {
		t.Fatalf("want an error that says how to start Postgres, got %v", err)
	}
}
