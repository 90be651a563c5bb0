package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/internal/config"
	"koerier/internal/service"
	"koerier/pipeline"
)

func newSendReceiveCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "send-receive",
		Short: "Run send/receive now and wait for its counts (fails at once while another run holds the lock)",
		Args:  cobra.NoArgs,
		RunE: withApp(true, func(cmd *cobra.Command, a *app, _ []string) error {
			id := fmt.Sprintf("send-receive-manual-%s", time.Now().UTC().Format("20060102T150405.000"))
			run, err := a.tc.ExecuteWorkflow(
				cmd.Context(),
				client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.ControlQueue(a.cfg.TaskQueue),
					StaticSummary: "send/receive started by " + operator()},
				pipeline.SendReceiveWorkflowType,
				pipeline.SendReceiveInput{Trigger: "manual by " + operator(), PageSize: a.cfg.PageSize, SendWait: a.cfg.SendWait},
			)
			if err != nil {
				return fmt.Errorf("start send/receive: %w", err)
			}
			var counts pipeline.SendReceiveCounts
			if err := run.Get(cmd.Context(), &counts); err != nil {
				return errors.New(pipeline.RootMessage(err))
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), counts)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "send/receive %s done: %s\n", id, counts)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts as JSON")
	return cmd
}

// parseBefore reads --before like parseWhen, but a duration ago may be in days ("90d"),
// as --retention and KOERIER_CLEANUP_RETENTION are: clean-up ages are counted in days.
func parseBefore(s string, now time.Time) (time.Time, error) {
	if d, err := config.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	t, err := parseWhen(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: use RFC 3339 (2026-11-25T10:00:00Z), a date (2026-11-25) or a duration ago (90d, 36h)", s)
	}
	return t, nil
}

func newCleanupCmd() *cobra.Command {
	var confirm, fiscal, asJSON bool
	var retention, env, before string
	cmd := &cobra.Command{
		Use:   "cleanup [number]...",
		Short: "Remove old messages and their attachments for good (a dry run unless --confirm)",
		RunE: withNumbers(true, func(cmd *cobra.Command, a *app, numbers []int64) error {
			in := pipeline.CleanupInput{
				CleanupRequest: pipeline.CleanupRequest{
					Numbers:     numbers,
					Mode:        domain.CleanupStandard,
					Retention:   a.cfg.CleanupRetention,
					Environment: env,
					DryRun:      !confirm,
					Who:         operator(),
				},
			}
			// Without KOERIER_CLEANUP_RETENTION there is no scheduled clean-up; an
			// operator's run still has the 30-day floor.
			if in.Retention == 0 {
				in.Retention = domain.MinRetention
			}
			if before != "" {
				t, err := parseBefore(before, time.Now())
				if err != nil {
					return fmt.Errorf("--before: %w", err)
				}
				in.Before = t
			}
			if fiscal {
				in.Mode = domain.CleanupFiscal
			}
			if retention != "" {
				d, err := config.ParseDuration(retention)
				if err != nil {
					return fmt.Errorf("--retention %q: use days such as 30d", retention)
				}
				in.Retention = d
			}
			if err := domain.ValidateRetention(in.Retention); err != nil {
				return err
			}
			run, err := a.tc.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: fmt.Sprintf("cleanup-manual-%s", time.Now().UTC().Format("20060102T150405.000")), TaskQueue: pipeline.ControlQueue(a.cfg.TaskQueue),
				StaticSummary: fmt.Sprintf("clean-up by %s (dry run %v)", operator(), in.DryRun)}, pipeline.CleanupWorkflowType, in)
			if err != nil {
				return fmt.Errorf("start clean-up: %w", err)
			}
			var out pipeline.CleanupOutcome
			if err := run.Get(cmd.Context(), &out); err != nil {
				return errors.New(pipeline.RootMessage(err))
			}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				verb := "removed"
				if out.DryRun {
					verb = "would remove (dry run; add --confirm to remove for good)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %d message(s) with %d attachment(s), %d bytes: %v\n", verb, out.Removed, out.Attachments,
					out.Bytes, out.Numbers)
				for _, r := range out.Refused {
					fmt.Fprintf(cmd.OutOrStdout(), "refused %d: %s\n", r.Number, r.Reason)
				}
			}
			if len(numbers) > 0 && len(out.Refused) > 0 {
				return fmt.Errorf("clean-up refused: %d of the selected messages may not be removed, so none was", len(out.Refused))
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "really remove (irreversible)")
	cmd.Flags().BoolVar(&fiscal, "fiscal", false, "fiscal mode: skip the status check for fiscal messages (the 30-day floor stays)")
	cmd.Flags().StringVar(&retention, "retention", "",
		"minimum age since the last status change, e.g. 90d (default KOERIER_CLEANUP_RETENTION or 30d, never below 30d)")
	cmd.Flags().StringVar(&env, "env", "", "only this environment's messages (one no longer used, removed or not)")
	cmd.Flags().StringVar(&before, "before", "",
		"only messages whose last status change is before this date (2026-01-01, RFC 3339, or a duration ago such as 90d or 36h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSchedulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "schedules", Short: "Temporal Schedules that replace the 'geplande taken'"}
	var asJSON bool
	apply := &cobra.Command{
		Use: "apply",
		Short: "Create or update the schedules (idempotent); clean-up only while KOERIER_CLEANUP_RETENTION is set, else it is removed; " +
			"one e-mail send/receive per environment with a mailbox",
		Args: cobra.NoArgs,
		RunE: withApp(true, func(cmd *cobra.Command, a *app, _ []string) error {
			res, err := service.ApplyAllSchedules(cmd.Context(), a.tc, a.cfg, a.store)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			for _, r := range res {
				if r.Why != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %s: %s\n", r.ID, r.Action, r.Why)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "schedule %s %s (%s)\n", r.ID, r.Action, r.Every)
			}
			return nil
		}),
	}
	apply.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(apply)
	return cmd
}
