package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"koerier/internal/bench"
	"koerier/internal/config"
)

func newBenchCmd() *cobra.Command {
	var opts bench.Options
	var asJSON, viaAPI bool
	var pidFile, apiURL string
	cmd := &cobra.Command{
		Use:   "bench [--n N] [--envs M] [--api] [--payments P]",
		Short: "Measure Koerier end to end against the services `make run` started (not for production: it queues real messages)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.WorkerPID == 0 {
				if b, err := os.ReadFile(pidFile); err == nil {
					opts.WorkerPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				}
			}
			a, err := newApp(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer a.close()
			opts.Progress = stderr
			if viaAPI {
				opts.APIURL = apiURL
			}
			if opts.Payments > 0 && opts.BankControlURL == "" {
				return fmt.Errorf("--payments needs the bank simulator: give --bank-control (or `source .koerier/env.sh`, which sets %s)", envDevBankControl)
			}
			res, err := bench.Run(cmd.Context(), a.cfg, a.store, a.tc, opts)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printBenchSummary(cmd.OutOrStdout(), res, opts.NoFloor)
		},
	}
	local := config.LocalFromEnv()
	f := cmd.Flags()
	f.IntVar(&opts.N, "n", 10000, "declarations to queue")
	f.IntVar(&opts.Envs, "envs", 10, "environments to spread them over")
	f.StringVar(&opts.SimControlURL, "sim-control", local.SimControlURL, "the Digipoort simulator's control API (KOERIER_SIM_CONTROL_URL)")
	f.IntVar(&opts.WorkerPID, "worker-pid", 0, "the worker process for the peak-RSS figure (default: read from --worker-pid-file)")
	f.StringVar(&pidFile, "worker-pid-file", filepath.Join(local.StateDir, "worker.pid"), "where `make run` wrote the worker's pid")
	f.DurationVar(&opts.Timeout, "timeout", 45*time.Minute, "give up after this long")
	f.BoolVar(&opts.NoFloor, "no-floor", false, "skip the floor measurement")
	f.IntVar(&opts.Concurrency, "concurrency", 16, "queue requests (and the floor's starts and signals) in flight at once")
	f.BoolVar(&viaAPI, "api", false, "API mode: queue half through the API, half the direct way, in turns, and receive the webhooks")
	f.StringVar(&apiURL, "api-url", local.APIURL, "the API for --api (KOERIER_API_URL, which `make run` sets); several, comma-separated, are taken in turn (scale-out)")
	f.IntVar(&opts.Payments, "payments", 0, "payment orders (the example pain.001) to queue beside the declarations, spread over the same "+
		"environments, and drive through each environment's bank send/receive on the bank simulator")
	f.StringVar(&opts.BankControlURL, "bank-control", os.Getenv(envDevBankControl), "the bank simulator's control API, for --payments ("+
		envDevBankControl+")")
	f.StringVar(&opts.BankAddr, "bank-addr", os.Getenv(envDevBank), "the bank simulator's SFTP address as the worker reaches it, for --payments ("+
		envDevBank+"; default: the one the simulator names)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// printBenchSummary prints the benchmark's result as the human table; noFloor leaves
// out the floors' rows, which were not measured.
func printBenchSummary(out io.Writer, res bench.Result, noFloor bool) error {
	w := table(out)
	for _, row := range [][2]string{
		{"declarations", fmt.Sprintf("%d across %d environments", res.Declarations, res.Environments)},
		{"throughput, queue to final", fmt.Sprintf("%.1f declarations/s (%.0f s in all, queueing %.0f s)", res.ThroughputPerS, res.TotalS, res.QueueS)},
		{"floor (minimal workflow)", fmt.Sprintf("%.1f workflows/s; Koerier runs at %.2f of the floor (%.0f events, %.1f actions each)",
			res.FloorPerS, res.RatioToFloor, res.FloorEventsPerWorkflow, res.FloorActionsPerWorkflow)},
		{"least floor (1 activity, 1 signal)", fmt.Sprintf("%.1f workflows/s; Koerier runs at %.2f of it (%.0f events, %.1f actions each)",
			res.MinFloorPerS, res.RatioToMinFloor, res.MinFloorEventsPerWorkflow, res.MinFloorActionsPerWorkflow)},
		{"queue → final p50 / p95 / p99", fmt.Sprintf("%.1f / %.1f / %.1f s", res.P50S, res.P95S, res.P99S)},
		{"deliveries / duplicates / not final", fmt.Sprintf("%d / %d / %d", res.Deliveries, res.Duplicates, res.NotFinal)},
		{"Digipoort calls per declaration", fmt.Sprintf("%.2f", res.DigipoortCallsPerDecl)},
		{"Temporal history events per declaration", fmt.Sprintf("%.1f in its workflow, %.1f with send/receive's share (%.1f activities, %.1f signals)",
			res.EventsPerDecl, res.HistoryEventsPerDecl, res.ActivitiesPerDecl, res.SignalsPerDecl)},
		{"Temporal actions per declaration", fmt.Sprintf("%.1f, of which %.2f send/receive's share (from %d declarations' histories)",
			res.ActionsPerDecl, res.SendReceiveActionsPerDecl, res.ActionsSample)},
		{"Temporal actions per declaration by kind", actionsByKind(res.ActionsByKind)},
		{"worker peak RSS", fmt.Sprintf("%.0f MiB", res.WorkerPeakRSSMiB)},
		{"database growth per 1,000 declarations", fmt.Sprintf("%.1f MiB", res.DBBytesPer1000/(1<<20))},
		{"first send/receive run", fmt.Sprintf("%.1f s for %d due messages (%d runs in all)", res.FirstSendReceiveS,
			res.FirstSendReceiveMessages, res.SendReceiveRuns)},
	} {
		if strings.Contains(row[0], "floor") && noFloor {
			continue
		}
		fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
	}
	if res.Payments > 0 {
		for _, row := range [][2]string{
			{"payment orders, queue to final", fmt.Sprintf("%.1f orders/s (%d of %d final in %.0f s, from the first queued to the last final)",
				res.PaymentsPerS, res.PaymentsFinal, res.Payments, res.PaymentsS)},
			{"payment order queue → final p50 / p99", fmt.Sprintf("%.1f / %.1f s", res.PaymentP50S, res.PaymentP99S)},
			{"payment orders the bank received more than once", fmt.Sprintf("%d", res.PaymentDuplicates)},
		} {
			fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
		}
	}
	if a := res.API; a != nil {
		for _, row := range [][2]string{
			{"queue through the API (POST /v1/messages)", fmt.Sprintf("%.1f requests/s at concurrency %d; p50 / p99 %.0f / %.0f ms (%d requests)",
				a.RequestsPerS, a.Concurrency, a.PostP50S*1000, a.PostP99S*1000, a.Requests)},
			{"queue the direct way (as starter queue)", fmt.Sprintf("%.1f declarations/s at concurrency %d; p50 / p99 %.0f / %.0f ms (%d)",
				a.DirectPerS, a.Concurrency, a.DirectP50S*1000, a.DirectP99S*1000, a.Direct)},
			{"API against the direct way", fmt.Sprintf("%.2f× the direct rate (1 or more: the API is not the bottleneck)", a.RatioDirect)},
			{"webhook after process p50 / p99", fmt.Sprintf("%.2f / %.2f s from the processed status change to the receiver", a.WebhookP50S, a.WebhookP99S)},
			{"webhooks received / duplicates / bad signatures / not arrived", fmt.Sprintf("%d / %d / %d / %d", a.WebhookCount,
				a.WebhookDuplicates, a.WebhookBadSignatures, a.WebhookNotArrived)},
		} {
			fmt.Fprintf(w, "%s\t%s\n", row[0], row[1])
		}
	}
	return w.Flush()
}

// actionsByKind lists the kinds of action a declaration costs, most first.
func actionsByKind(k map[string]float64) string {
	names := make([]string, 0, len(k))
	for name, n := range k {
		if n > 0 {
			names = append(names, name)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if k[names[i]] != k[names[j]] {
			return k[names[i]] > k[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%.1f %s", k[name], strings.ReplaceAll(name, "_", " "))
	}
	return strings.Join(parts, ", ")
}
