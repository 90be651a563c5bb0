package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koerier/digipoort"
)

func newDigipoortCertificatesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certificates [--json]",
		Short: "List the configured Digipoort certificates, which client certificate is in use, and when each expires",
		Long: `Reads the KOERIER_DIGIPOORT_* configuration (without calling Digipoort) and lists every
configured certificate — the client certificate(s) used for TLS and request signatures,
and the certificates trusted to sign Digipoort's responses — with subject, serial,
validity, days left and whether it is in use. Of two client certificates (the _NEXT
variables), the valid one that expires last is in use.

Warnings follow at 60, 30 and 7 days before a certificate expires (and once it has),
unless a configured successor takes over; each says what to do. With --json the same
is printed as one JSON object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := digipoort.ConfigFromEnv()
			if err != nil {
				return oneLine(err)
			}
			r := cfg.Certificates(time.Now())
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return printCertificates(cmd.OutOrStdout(), r)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	return cmd
}

func printCertificates(w io.Writer, r digipoort.CertificateReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tIN USE\tSTATE\tNOT BEFORE\tNOT AFTER\tDAYS LEFT\tSERIAL\tSUBJECT\tSOURCE")
	for _, c := range r.Certificates {
		inUse := "no"
		if c.InUse {
			inUse = "yes"
		}
		source := c.Source
		if source == "" {
			source = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Role, inUse, c.State, c.NotBefore.Format("2006-01-02"),
			c.NotAfter.Format("2006-01-02"), c.DaysLeft, c.Serial, c.Subject, source)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Certificates {
		if c.Note != "" {
			fmt.Fprintf(w, "note: %s %s: %s\n", c.Role, c.Serial, c.Note)
		}
	}
	if len(r.Warnings) == 0 {
		fmt.Fprintln(w, "no warnings: every certificate has more than 60 days left or a configured successor")
		return nil
	}
	for _, x := range r.Warnings {
		level := "warning"
		if x.Urgent {
			level = "URGENT"
		}
		fmt.Fprintf(w, "%s: %s\n", level, x.Message)
	}
	return nil
}
