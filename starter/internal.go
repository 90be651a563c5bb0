package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"koerier/internal/secrets"
	"koerier/pipeline"
)

// newInternalCmd holds helpers for Koerier's own scripts; hidden from help.
func newInternalCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "internal", Hidden: true, Short: "helpers for Koerier's scripts"}
	cmd.AddCommand(&cobra.Command{
		Use:   "search-attributes",
		Short: "print Name=Type of every search attribute, for temporal server start-dev --search-attribute",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lines []string
			for name, typ := range pipeline.SearchAttributeTypes() {
				lines = append(lines, name+"="+typ)
			}
			sort.Strings(lines)
			for _, l := range lines {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "new-key",
		Short: "print a new random key (base64 of 32 bytes) for KOERIER_SECRET_KEY, or as a password, where openssl is missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), secrets.NewKey())
			return err
		},
	})
	return cmd
}
