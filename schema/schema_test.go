package schema_test

import (
	"context"
	"database/sql"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	_ "github.com/lib/pq"

	"koerier/domain"
	"koerier/internal/testdb"
	"koerier/schema"
	"koerier/store"
)

// migrate applies the migrations as every Koerier process does: with those written in
// Go, which the store passes (schema/migrations/*.go say which).
func migrate(ctx context.Context, db *sql.DB) (int, error) {
	return store.Migrate(ctx, db, domain.DefaultCatalog())
}

func open(t *testing.T) *sql.DB {
	db, err := sql.Open("postgres", testdb.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	n, err := migrate(ctx, db)
	if err != nil || n == 0 {
		t.Fatalf("first migrate: %d applied, %v", n, err)
	}
	n, err = migrate(ctx, db)
	if err != nil || n != 0 {
		t.Fatalf("second migrate: %d applied, %v; want 0, nil", n, err)
	}
	if p, err := schema.Pending(ctx, db); err != nil || p != 0 {
		t.Fatalf("pending = %d, %v", p, err)
	}
}

// A migration written in Go needs its code: without it nothing is applied, and the
// error says how to migrate instead.
func TestMigrateRefusesWithoutTheGoMigrations(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	n, err := schema.Migrate(ctx, db)
	if err == nil || n != 0 || !strings.Contains(err.Error(), "00004_normalise_declarations.go") || !strings.Contains(err.Error(), "starter migrate") {
		t.Fatalf("migrate without the Go migration: %d applied, %v", n, err)
	}
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE tablename IN ('messages', 'koerier_schema_migrations')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("%d tables were created: nothing may be applied", tables)
	}
	if _, err := schema.Migrate(ctx, db, schema.GoMigration{Version: 99, Up: func(context.Context, *sql.Tx) error { return nil }}); err == nil {
		t.Fatal("a Go migration without a file that says what it does must be refused")
	}
}

func TestConcurrentMigrateAppliesOnce(t *testing.T) {
	url := testdb.New(t)
	ctx := context.Background()
	const procs = 4
	var wg sync.WaitGroup
	applied := make([]int, procs)
	errs := make([]error, procs)
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// A pool of its own behaves like another process starting at once.
			db, err := sql.Open("postgres", url)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = migrate(ctx, db)
		}(i)
	}
	wg.Wait()
	total := 0
	for i := range errs {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var files int
	if err := db.QueryRow(`SELECT count(*) FROM koerier_schema_migrations WHERE version_id > 0`).Scan(&files); err != nil {
		t.Fatal(err)
	}
	if total != files {
		t.Fatalf("%d migrations applied by %d migrators, %d recorded: each must be applied exactly once", total, procs, files)
	}
}

// The order of statuses lives in the domain package and in the database, where
// "highest status wins" is decided; the two must agree.
func TestStatusOrderMatchesDomain(t *testing.T) {
	db := open(t)
	if _, err := migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT status, rank FROM message_statuses`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var s string
		var r int
		if err := rows.Scan(&s, &r); err != nil {
			t.Fatal(err)
		}
		if domain.Status(s).Rank() != r {
			t.Errorf("status %s: rank %d in the database, %d in the domain", s, r, domain.Status(s).Rank())
		}
		seen++
	}
	if seen != len(domain.AllStatuses()) {
		t.Errorf("database knows %d statuses, domain %d", seen, len(domain.AllStatuses()))
	}
}

// The partial indexes that the per-page queries of send/receive use name the same
// statuses as the domain's sets; the store passes those sets as parameters, and
// Postgres only uses a partial index when the query's list implies its predicate.
func TestPartialIndexesMatchDomainSets(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	if _, err := migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	quoted := regexp.MustCompile(`ARRAY\[([^\]]*)\]`)
	word := regexp.MustCompile(`'([a-z_]+)'`)
	for index, want := range map[string][]domain.Status{
		"messages_due":       domain.DueStatuses(),
		"messages_in_flight": domain.InFlightStatuses(),
	} {
		var def string
		if err := db.QueryRowContext(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, index).Scan(&def); err != nil {
			t.Fatalf("index %s: %v", index, err)
		}
		arr := quoted.FindStringSubmatch(def)
		if arr == nil {
			t.Fatalf("index %s has no status list: %s", index, def)
		}
		var got []domain.Status
		for _, m := range word.FindAllStringSubmatch(arr[1], -1) {
			got = append(got, domain.Status(m[1]))
		}
		if !slices.Equal(got, want) {
			t.Errorf("index %s lists %v, the domain's set is %v: add a migration that recreates the index", index, got, want)
		}
	}
}
