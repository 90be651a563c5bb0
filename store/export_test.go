package store

import (
	"context"
	"database/sql"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
	"koerier/schema"
)

// MigrateTo leaves db as the release with migrations up to version left it.
func MigrateTo(ctx context.Context, db *sql.DB, cat domain.Catalog, version int64) (int, error) {
	return schema.MigrateTo(ctx, db, version, goMigrations(cat)...)
}

// NormaliseStored runs the data part of migration 00004 again, as a second run of it
// would.
func (s *Store) NormaliseStored(ctx context.Context) (NormaliseReport, error) {
	var rep NormaliseReport
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		rep, err = normaliseStored(ctx, tx, s.catalog)
		return err
	})
	return rep, err
}
