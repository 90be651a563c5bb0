package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/internal/config"
	"koerier/internal/conformance"
	"koerier/internal/demo"
)

// directDelivery is what `digipoort deliver` and `digipoort conformance` share: which
// Digipoort, and what to deliver.
type directDelivery struct {
	environment string
	typ         string
	subject     string
	file        string
	rol         string
	poll        time.Duration
	timeout     time.Duration
	asJSON      bool
}

func (d *directDelivery) flags(cmd *cobra.Command, fileHelp string) {
	f := cmd.Flags()
	f.StringVar(&d.environment, "environment", "", "Logius environment to use instead of the configured endpoints: "+
		strings.Join([]string{digipoort.EnvironmentPreproduction, digipoort.EnvironmentConformance}, " or ")+" (production is refused)")
	f.StringVar(&d.typ, "type", string(domain.TypeVAT), "message type: decides berichtsoort, identity type and the subject's form")
	f.StringVar(&d.subject, "subject", "", "the belanghebbende, in the type's form (see `starter types`) (required)")
	f.StringVar(&d.file, "file", "", fileHelp)
	f.StringVar(&d.rol, "rol", "", "rolBelanghebbende: Bedrijf, or Intermediair when filing for a client (default: KOERIER_ROL, as the pipeline sends)")
	f.DurationVar(&d.poll, "poll", conformance.DefaultPoll, "time between status requests")
	f.DurationVar(&d.timeout, "timeout", conformance.DefaultTimeout, "how long to follow one delivery to its final status")
	f.BoolVar(&d.asJSON, "json", false, "print one JSON object instead of a table")
}

// client builds the Digipoort client from KOERIER_DIGIPOORT_* (or --environment) and
// refuses production: these deliveries bypass Koerier's durable pipeline, so nothing
// would record them or stop the same return being filed twice.
func (d *directDelivery) client() (*digipoort.Client, string, error) {
	lookup := os.LookupEnv
	if d.environment != "" {
		if _, err := digipoort.PresetEndpoints(d.environment); err != nil {
			return nil, "", err
		}
		// --environment replaces whatever endpoints are configured; the certificates
		// and the rest still come from KOERIER_DIGIPOORT_*.
		lookup = func(k string) (string, bool) {
			switch k {
			case digipoort.EnvEnvironment:
				return d.environment, true
			case digipoort.EnvURL, digipoort.EnvAanleverURL, digipoort.EnvStatusinformatieURL, digipoort.EnvOphaalURL:
				return "", false
			}
			return os.LookupEnv(k)
		}
	}
	cfg, err := digipoort.ConfigFromLookup(lookup)
	if err != nil {
		return nil, "", err
	}
	eps := cfg.Endpoints
	if eps.IsZero() {
		var err error
		if eps, err = digipoort.BaseURLEndpoints(cfg.URL); err != nil {
			return nil, "", err
		}
	}
	if isProduction(eps) {
		return nil, "", errors.New("refusing Logius' production Digipoort: a direct delivery bypasses Koerier's pipeline (nothing records it, " +
			"nothing stops the same return being filed twice); file real returns with `starter queue`, and run conformance against " +
			"--environment conformance or preproduction")
	}
	c, err := digipoort.New(cfg)
	if err != nil {
		return nil, "", oneLine(err)
	}
	return c, eps.Aanlever, nil
}

func isProduction(eps digipoort.Endpoints) bool {
	prod, _ := digipoort.PresetEndpoints(digipoort.EnvironmentProduction)
	for _, pair := range [][2]string{{eps.Aanlever, prod.Aanlever}, {eps.Statusinformatie, prod.Statusinformatie}, {eps.Ophaal, prod.Ophaal}} {
		a, errA := url.Parse(pair[0])
		b, errB := url.Parse(pair[1])
		// "host." is the same host as "host" to DNS.
		if errA == nil && errB == nil && strings.EqualFold(strings.TrimSuffix(a.Hostname(), "."), b.Hostname()) {
			return true
		}
	}
	return false
}

// request is the delivery to make, with the subject checked and turned into the
// identity exactly as `starter queue` and the pipeline would.
func (d *directDelivery) request(defaultFile []byte, defaultName string) (digipoort.DeliverRequest, error) {
	if strings.TrimSpace(d.subject) == "" {
		return digipoort.DeliverRequest{}, errors.New("--subject is required: the belanghebbende, in the form `starter types --type " + d.typ + "` shows")
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return digipoort.DeliverRequest{}, err
	}
	spec, err := cfg.Catalog.Lookup(domain.MessageType(strings.ToLower(d.typ)))
	if err != nil {
		return digipoort.DeliverRequest{}, err
	}
	if spec.Channel != domain.ChannelDigipoort || spec.Berichtsoort == "" {
		return digipoort.DeliverRequest{}, fmt.Errorf("message type %s has no berichtsoort for Digipoort (see `starter types --type %s`)", spec.Type, spec.Type)
	}
	stored, err := spec.NormalizeSubject(d.subject)
	if err != nil {
		return digipoort.DeliverRequest{}, err
	}
	nummer, idType, err := spec.Identity(stored)
	if err != nil {
		return digipoort.DeliverRequest{}, err
	}
	content, name := defaultFile, defaultName
	if d.file != "" {
		if content, err = readFile(d.file); err != nil {
			return digipoort.DeliverRequest{}, err
		}
		name = filepath.Base(d.file)
	}
	if content == nil {
		return digipoort.DeliverRequest{}, errors.New("--file is required: the declaration to deliver")
	}
	att := domain.Attachment{FileName: name, MimeType: "application/xml", Content: content}
	if err := domain.CheckDocument(spec.Document, spec.Type, att); err != nil {
		return digipoort.DeliverRequest{}, fmt.Errorf("%s: %w", d.file, err)
	}
	rol := d.rol
	if rol == "" {
		rol = cfg.Rol
	}
	return digipoort.DeliverRequest{Berichtsoort: spec.Berichtsoort, Belanghebbende: digipoort.Identity{Nummer: nummer, Type: idType},
		Rol: rol, MimeType: att.MimeType, Bestandsnaam: name, Inhoud: content}, nil
}

func (d *directDelivery) options(req digipoort.DeliverRequest, progress io.Writer) conformance.Options {
	return conformance.Options{Request: req, Poll: d.poll, Timeout: d.timeout,
		Progress: func(line string) { fmt.Fprintf(progress, "%s %s\n", time.Now().UTC().Format("15:04:05"), line) }}
}

func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// deliverJSON is `digipoort deliver --json`: exactly one object.
type deliverJSON struct {
	Aanleverkenmerk string                `json:"aanleverkenmerk"`
	Kenmerk         string                `json:"kenmerk"`
	Deliveries      int                   `json:"deliveries"`
	Faults          []string              `json:"faults"`
	Refused         string                `json:"refused,omitempty"`
	StatusRefused   string                `json:"status_refused,omitempty"`
	Statuses        []digipoortStatusLine `json:"statuses"`
	DerivedStatus   domain.Status         `json:"derived_status"`
	Final           bool                  `json:"final"`
	TimedOut        bool                  `json:"timed_out"`
}

func newDigipoortDeliverCmd() *cobra.Command {
	var (
		d               directDelivery
		aanleverkenmerk string
	)
	cmd := &cobra.Command{
		Use:   "deliver --aanleverkenmerk A --subject S --file F [--type T] [--environment E] [--json]",
		Short: "Deliver one file with a chosen aanleverkenmerk, outside the pipeline, and follow it to its final status",
		Long: `Delivers a file straight to Digipoort with the aanleverkenmerk you choose, then follows it
through the status service until Koerier derives a final status (or --timeout passes),
printing each status as it comes. Logius' conformance environment picks its scenario
from the aanleverkenmerk, which is why this command exists: the pipeline always uses
Koerier's own (KOERIER-<number>).

This is a direct delivery: it is not recorded, and nothing stops the same return being
filed twice, so Logius' production Digipoort is refused. Use --environment conformance
(or preproduction) or the configured KOERIER_DIGIPOORT_* endpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(aanleverkenmerk) == "" {
				return errors.New("--aanleverkenmerk is required (in Logius' conformance environment: the scenario's name, e.g. Happyflow)")
			}
			req, err := d.request(nil, "")
			if err != nil {
				return err
			}
			c, _, err := d.client()
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := conformance.Follow(commandContext(cmd), c, d.options(req, cmd.ErrOrStderr()), strings.TrimSpace(aanleverkenmerk))
			if err != nil {
				return oneLine(err)
			}
			out := deliverJSON{Aanleverkenmerk: run.Aanleverkenmerk, Kenmerk: run.Kenmerk, Deliveries: run.Deliveries, Faults: run.TransientFaults,
				Statuses: []digipoortStatusLine{}, DerivedStatus: run.Derived, Final: run.Final, TimedOut: run.TimedOut}
			if out.Faults == nil {
				out.Faults = []string{}
			}
			if run.Refusal != nil {
				out.Refused = oneLine(run.Refusal).Error()
			}
			if run.StatusRefusal != nil {
				out.StatusRefused = oneLine(run.StatusRefusal).Error()
			}
			for _, s := range run.Statuses {
				out.Statuses = append(out.Statuses, digipoortStatusLine{Code: s.Code, Time: s.Time, Description: s.Description,
					ErrorCode: s.ErrorCode, ErrorDescription: s.ErrorDescription, Details: s.Details})
			}
			if d.asJSON {
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "aanleverkenmerk %s, kenmerk %s, %d deliveries\n", out.Aanleverkenmerk, orDash(out.Kenmerk), out.Deliveries)
				if out.Refused != "" {
					fmt.Fprintf(w, "refused: %s\n", out.Refused)
				}
				if out.StatusRefused != "" {
					fmt.Fprintf(w, "status request refused: %s\n", out.StatusRefused)
				}
				if err := printDigipoortStatuses(w, digipoortStatusJSON{Kenmerk: out.Kenmerk, Statuses: out.Statuses, DerivedStatus: out.DerivedStatus},
					false); err != nil {
					return err
				}
			}
			if run.TimedOut {
				return fmt.Errorf("no final status within %s (derived %s): follow it later with `starter digipoort status --kenmerk %s`",
					d.timeout, run.Derived, orDash(run.Kenmerk))
			}
			return nil
		},
	}
	d.flags(cmd, "the file to deliver (the declaration, as the type expects) (required)")
	cmd.Flags().StringVar(&aanleverkenmerk, "aanleverkenmerk", "", "the aanleverkenmerk to deliver with (required)")
	return cmd
}

// conformanceJSON is `digipoort conformance --json`: exactly one object.
type conformanceJSON struct {
	Endpoint  string               `json:"endpoint"`
	Passed    bool                 `json:"passed"`
	Scenarios []conformance.Result `json:"scenarios"`
}

func newDigipoortConformanceCmd() *cobra.Command {
	var (
		d         directDelivery
		scenarios []string
	)
	cmd := &cobra.Command{
		Use:   "conformance --subject S [--environment conformance] [--scenario NAME ...] [--json]",
		Short: "Run Logius' conformance scenarios and print a pass/fail table",
		Long: `Runs Logius' conformance scenarios one after another: for each, it delivers the file with
the scenario's name as aanleverkenmerk (that is how Logius' conformance environment picks
the scenario), follows it to its end, and checks that Koerier draws the right conclusion
(accepted, rejected, failed, refused, retry later). It prints a table, or with --json
one object whose "scenarios" hold name, passed, codes and derived_status. It exits
non-zero when a scenario fails.

Without --file it delivers Koerier's demo VAT return. Against Logius' conformance
environment, use the test identity Logius gave you as --subject and --environment
conformance, with your PKIoverheid test certificate in KOERIER_DIGIPOORT_CLIENT_*.
Production is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := conformance.Lookup(scenarios)
			if err != nil {
				return err
			}
			req, err := d.request(demo.VATReturn, "omzetbelasting-demo.xbrl")
			if err != nil {
				return err
			}
			c, endpoint, err := d.client()
			if err != nil {
				return err
			}
			defer c.Close()
			results, err := conformance.RunAll(commandContext(cmd), c, d.options(req, cmd.ErrOrStderr()), list)
			out := conformanceJSON{Endpoint: endpoint, Passed: err == nil, Scenarios: results}
			for _, r := range results {
				out.Passed = out.Passed && r.Passed
			}
			if d.asJSON {
				if perr := printJSON(cmd.OutOrStdout(), out); perr != nil {
					return perr
				}
			} else if perr := printConformance(cmd.OutOrStdout(), out); perr != nil {
				return perr
			}
			switch {
			case err != nil:
				return oneLine(err)
			case !out.Passed:
				failed := 0
				for _, r := range results {
					if !r.Passed {
						failed++
					}
				}
				return fmt.Errorf("%d of %d conformance scenarios failed", failed, len(results))
			}
			return nil
		},
	}
	d.flags(cmd, "the declaration to deliver in every scenario (default: Koerier's demo VAT return)")
	cmd.Flags().StringArrayVar(&scenarios, "scenario", nil, "run only this scenario (repeatable; default: all)")
	return cmd
}

func printConformance(w io.Writer, out conformanceJSON) error {
	fmt.Fprintf(w, "conformance against %s\n", out.Endpoint)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tDERIVED\tCODES\tWHY")
	for _, r := range out.Scenarios {
		verdict := "FAIL"
		if r.Passed {
			verdict = "pass"
		}
		codes := strings.Join(r.Codes, " ")
		if len(r.Faults) > 0 {
			codes = strings.TrimSpace(codes + " [" + strings.Join(r.Faults, " ") + "]")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, verdict, r.DerivedStatus, orDash(codes), r.Why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.Passed {
		fmt.Fprintf(w, "all %d scenarios passed\n", len(out.Scenarios))
	}
	return nil
}
