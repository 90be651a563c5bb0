package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koerier/digipoort"
	"koerier/domain"
)

// newDigipoortCmd groups commands that talk to Digipoort directly, with the client
// configuration from KOERIER_DIGIPOORT_* (see digipoort.ConfigFromEnv). They need
// neither Postgres nor Temporal, except `proof`, which reads the responses Koerier
// kept from Postgres.
func newDigipoortCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "digipoort",
		Short: "Ask Digipoort directly (configured by the KOERIER_DIGIPOORT_* variables)",
	}
	cmd.AddCommand(newDigipoortStatusCmd())
	cmd.AddCommand(newDigipoortCertificatesCmd())
	cmd.AddCommand(newDigipoortVerifyCmd(), newDigipoortProofCmd()) // proof.go: proof of filing
	cmd.AddCommand(newDigipoortDeliverCmd(), newDigipoortConformanceCmd())
	return cmd
}

// digipoortStatusJSON is the --json output: exactly one object.
type digipoortStatusJSON struct {
	Kenmerk       string                `json:"kenmerk"`
	Statuses      []digipoortStatusLine `json:"statuses"`
	DerivedStatus domain.Status         `json:"derived_status"`
}

type digipoortStatusLine struct {
	Code             string    `json:"code"`
	Time             time.Time `json:"time"`
	Description      string    `json:"description"`
	ErrorCode        string    `json:"error_code"`
	ErrorDescription string    `json:"error_description,omitempty"`
	Details          string    `json:"details,omitempty"`
}

func newDigipoortStatusCmd() *cobra.Command {
	var (
		kenmerk string
		onlyNew bool
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "status --kenmerk K [--new] [--json]",
		Short: "Show every Digipoort status of one delivery and the status Koerier derives from them",
		Long: `Calls getStatussenProces for the kenmerk Digipoort returned on delivery (with --new:
getNieuweStatussenProces, which returns only the statuses not fetched before with this
certificate, and hides them from later --new calls) and prints every status in
Digipoort's order, then the status Koerier derives from them (the highest one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kenmerk = strings.TrimSpace(kenmerk)
			if kenmerk == "" {
				return errors.New("--kenmerk is required: the Digipoort kenmerk of the delivery")
			}
			cfg, err := digipoort.ConfigFromEnv()
			if err != nil {
				return err
			}
			c, err := digipoort.New(cfg)
			if err != nil {
				return oneLine(err)
			}
			defer c.Close()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			var statuses []digipoort.Status
			if onlyNew {
				statuses, err = c.NewStatuses(ctx, kenmerk)
			} else {
				statuses, err = c.Statuses(ctx, kenmerk, time.Time{}, time.Time{})
			}
			var derr *digipoort.Error
			if err != nil && !(errors.As(err, &derr) && derr.Statuscode == "210" && len(statuses) > 0) {
				return oneLine(err)
			}
			// Status 210 is an answer, not a failure of this command: print it, and say
			// on stderr what to do.
			out := digipoortStatusJSON{Kenmerk: kenmerk, Statuses: []digipoortStatusLine{}}
			codes := make([]domain.StatusCode, 0, len(statuses))
			for _, s := range statuses {
				codes = append(codes, domain.StatusCode{Code: s.Code, Foutcode: s.ErrorCode})
				out.Statuses = append(out.Statuses, digipoortStatusLine{Code: s.Code, Time: s.Time, Description: s.Description,
					ErrorCode: s.ErrorCode, ErrorDescription: s.ErrorDescription, Details: s.Details})
			}
			out.DerivedStatus = domain.DeriveStatus(codes)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else if err := printDigipoortStatuses(cmd.OutOrStdout(), out, onlyNew); err != nil {
				return err
			}
			if derr != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", oneLine(derr))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kenmerk, "kenmerk", "", "Digipoort kenmerk of the delivery (required)")
	cmd.Flags().BoolVar(&onlyNew, "new", false, "only the statuses not fetched before (getNieuweStatussenProces)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	return cmd
}

func printDigipoortStatuses(w io.Writer, out digipoortStatusJSON, onlyNew bool) error {
	fmt.Fprintf(w, "kenmerk %s\n", out.Kenmerk)
	if len(out.Statuses) == 0 {
		if onlyNew {
			fmt.Fprintln(w, "no new statuses")
		} else {
			fmt.Fprintln(w, "no statuses")
		}
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tTIME\tDESCRIPTION\tERROR")
		for _, s := range out.Statuses {
			e := s.ErrorCode
			if e == "" {
				e = "-"
			} else if s.ErrorDescription != "" {
				e += " " + firstLineOf(s.ErrorDescription)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Code, s.Time.UTC().Format("2006-01-02T15:04:05.000Z"), s.Description, e)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range out.Statuses {
			if d := strings.TrimSpace(s.Details); d != "" {
				fmt.Fprintf(w, "details of %s:\n  %s\n", s.Code, strings.ReplaceAll(d, "\n", "\n  "))
			}
		}
	}
	fmt.Fprintf(w, "derived status: %s (%s)\n", out.DerivedStatus, out.DerivedStatus.Label())
	if n := len(out.Statuses); n > 0 {
		last := out.Statuses[n-1]
		if info := domain.InterpretStatus(last.Code, last.ErrorCode); info.Advice != "" {
			fmt.Fprintf(w, "advice: %s\n", info.Advice)
		}
	}
	return nil
}

func firstLineOf(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// oneLine keeps an error on one line, as the command line prints it.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	return &oneLineError{msg: msg, err: err}
}

type oneLineError struct {
	msg string
	err error
}

func (e *oneLineError) Error() string { return e.msg }
func (e *oneLineError) Unwrap() error { return e.err }
