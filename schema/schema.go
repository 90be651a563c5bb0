// Package schema holds Koerier's Postgres migrations, embedded in every binary, and
// applies them.
//
// Migrations run through pressly/goose (v3): it reads embedded SQL files, records
// what it applied, and with its Postgres session locker (an advisory lock) two
// processes that start at once apply each migration exactly once. Files are
// forward-only: they have no Down section.
//
// A migration that needs more than SQL (the catalog of message types and the store's
// own rules) is written in Go: its file in migrations/ (NNNNN_name.go) says what it
// does, and its code is passed to Migrate by package store (store.Migrate), which has
// what it needs. Goose applies it in its place in the order, in one transaction, and
// Migrate refuses to run without it, so the schema never gets past it without its data.
package schema

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql migrations/*.go
var migrations embed.FS

// GoMigration is the code of a migration written in Go, run in the transaction goose
// opens for it.
type GoMigration struct {
	Version int64
	Up      func(ctx context.Context, tx *sql.Tx) error
}

// Migrate applies every migration not applied yet and returns how many it applied. gos
// must hold the code of every migration written in Go (store.Migrate passes it).
func Migrate(ctx context.Context, db *sql.DB, gos ...GoMigration) (int, error) {
	p, err := provider(db, gos, true)
	if err != nil {
		return 0, err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return 0, fmt.Errorf("apply migrations: %w", err)
	}
	return len(results), nil
}

// MigrateTo applies the migrations up to and including version: a database as an older
// release left it, for a test of the migration that follows.
func MigrateTo(ctx context.Context, db *sql.DB, version int64, gos ...GoMigration) (int, error) {
	p, err := provider(db, gos, true)
	if err != nil {
		return 0, err
	}
	results, err := p.UpTo(ctx, version)
	if err != nil {
		return 0, fmt.Errorf("apply migrations up to %d: %w", version, err)
	}
	return len(results), nil
}

// Pending reports how many migrations are not applied yet.
func Pending(ctx context.Context, db *sql.DB) (int, error) {
	p, err := provider(db, nil, false)
	if err != nil {
		return 0, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("migration status: %w", err)
	}
	n := 0
	for _, s := range st {
		if s.State == goose.StatePending {
			n++
		}
	}
	return n, nil
}

// provider is goose's, with the Go migrations' code; run says it will apply them (a
// status needs only to know them).
func provider(db *sql.DB, gos []GoMigration, run bool) (*goose.Provider, error) {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	registered, err := goMigrations(dir, gos, run)
	if err != nil {
		return nil, err
	}
	// Poll every second for up to ten minutes: a second process waits for the first.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 600))
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(registered...),
		goose.WithTableName("koerier_schema_migrations"))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// goMigrations pairs each Go migration file with its code. Goose would refuse a missing
// one too, but with advice about custom binaries; this says what Koerier does instead.
func goMigrations(dir fs.FS, gos []GoMigration, run bool) ([]*goose.Migration, error) {
	given := make(map[int64]GoMigration, len(gos))
	for _, g := range gos {
		given[g.Version] = g
	}
	files, err := fs.Glob(dir, "*.go")
	if err != nil {
		return nil, err
	}
	var out []*goose.Migration
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		v, err := goose.NumericComponent(f)
		if err != nil {
			continue // not a migration: goose skips it too
		}
		g, ok := given[v]
		if !run && !ok {
			g, ok = GoMigration{Version: v, Up: func(context.Context, *sql.Tx) error {
				return fmt.Errorf("migration %s is not run from a status", f)
			}}, true
		}
		if !ok || g.Up == nil {
			return nil, fmt.Errorf("migration %s is written in Go and its code was not given: migrate with store.Migrate "+
				"(`starter migrate`, or any start of the service), which passes it", f)
		}
		delete(given, v)
		out = append(out, goose.NewGoMigration(v, &goose.GoFunc{RunTx: g.Up}, nil))
	}
	if len(given) > 0 {
		var versions []int64
		for v := range given {
			versions = append(versions, v)
		}
		slices.Sort(versions)
		return nil, fmt.Errorf("no file in schema/migrations says what the Go migration(s) with version %v do: add one each (NNNNN_name.go)", versions)
	}
	return out, nil
}
