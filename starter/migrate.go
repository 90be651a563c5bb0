package main

import (
	"database/sql"
	"fmt"

	_ "github.com/lib/pq"
	"github.com/spf13/cobra"

	"koerier/internal/config"
	"koerier/store"
)

func newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations (safe to run twice, and from two places at once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv()
			if err != nil {
				return err
			}
			url := cfg.DatabaseURL
			created, err := store.EnsureDatabase(cmd.Context(), url)
			if err != nil {
				return err
			}
			if created {
				fmt.Fprintln(cmd.OutOrStdout(), "database created")
			}
			db, err := sql.Open("postgres", url)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.PingContext(cmd.Context()); err != nil {
				return fmt.Errorf("connect to Postgres (KOERIER_DATABASE_URL): %w; start it (make run does) or set KOERIER_DATABASE_URL", err)
			}
			n, err := store.Migrate(cmd.Context(), db, cfg.Catalog)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrations applied: %d (database is up to date)\n", n)
			return nil
		},
	}
}
