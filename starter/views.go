package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"koerier/store"
)

func newStatusCmd() *cobra.Command {
	var env string
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "status --env E",
		Short: "What an environment sees: its own messages and their processed statuses",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			rows, err := a.store.EnvironmentView(cmd.Context(), env, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "NUMBER\tTYPE\tSUBJECT\tPERIOD\tVERSION\tSTATUS\tDO-NOT-SEND\tNEEDS-ACTION\tCHANGED")
			for _, r := range rows {
				fmt.Fprintf(
					w, "%d\t%s\t%s\t%s\t%d\t%s\t%v\t%v\t%s\n", r.Number, r.Type, r.Subject, r.Period, r.Version, r.Status, r.DoNotSend, r.NeedsAction,
					r.LastStatusChange.Local().Format("2006-01-02 15:04:05"),
				)
			}
			return w.Flush()
		}),
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many messages, newest first")
	_ = cmd.MarkFlagRequired("env")
	return cmd
}

func newMessagesCmd() *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "messages",
		Short: "The operator's view: every message, with unknown replies (ONB) apart",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			msgs, onb, err := a.store.OperatorView(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), append(msgs, onb...))
			}
			out := cmd.OutOrStdout()
			w := table(out)
			fmt.Fprintln(w, "NUMBER\tENV\tDIR\tTYPE\tSUBJECT\tPERIOD\tV\tSTATUS\tENV-STATUS\tKENMERK\tDNS\tACTION")
			for _, m := range msgs {
				v := "-"
				if m.Version != nil {
					v = fmt.Sprint(*m.Version)
				}
				fmt.Fprintf(
					w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\n", m.Number, orDashPtr(m.Environment), m.Direction, m.Type, orDash(m.Subject),
					orDash(m.Period), v, m.Status, m.EnvStatus, orDashPtr(m.Kenmerk), m.DoNotSend, orDash(m.NeedsActionReason),
				)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nunknown replies (ONB): %d\n", len(onb))
			if len(onb) > 0 {
				w = table(out)
				fmt.Fprintln(w, "NUMBER\tKENMERK\tBELANGHEBBENDE\tRECEIVED\tNOTE")
				for _, m := range onb {
					fmt.Fprintf(
						w, "%d\t%s\t%s\t%s\t%s\n", m.Number, orDashPtr(m.PickupKenmerk), orDash(m.Subject),
						m.QueuedAt.Local().Format("2006-01-02 15:04"), orDash(m.Memo),
					)
				}
				return w.Flush()
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (ONB included, with \"subtype\" and \"environment\")")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many messages (and as many ONB), newest first")
	return cmd
}

func newLogCmd() *cobra.Command {
	var f store.LogFilter
	var since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "log",
		Short: "The communication log, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if f.Since, err = parseWhen(since); err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			if f.Until, err = parseWhen(until); err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			a, err := newApp(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.close()
			lines, err := a.store.ReadLog(cmd.Context(), f)
			if err != nil {
				return err
			}
			if asJSON {
				if lines == nil {
					lines = []store.LogEntry{}
				}
				return printJSON(cmd.OutOrStdout(), lines)
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "TIME\tL\tENV\tMESSAGE\tSTEP\tDESCRIPTION")
			for _, l := range lines {
				msg := "-"
				if l.MessageNumber != nil {
					msg = fmt.Sprint(*l.MessageNumber)
				}
				desc := l.Description
				if l.Information != "" {
					desc += " — " + l.Information
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", l.At.Local().Format("2006-01-02 15:04:05"), l.Level, orDashPtr(l.Environment), msg, l.Step, desc)
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar((*string)(&f.Level), "level", "", "I or F")
	fl.StringVar(&f.Environment, "env", "", "one environment")
	fl.StringVar((*string)(&f.Step), "step", "", "queue, send, receive, process, report, restore, cleanup, environment, send-receive, workflow")
	fl.Int64Var(&f.Message, "message", 0, "one message number")
	fl.StringVar(&since, "since", "", "from this time: RFC 3339, 2006-01-02, or a duration ago such as 2h")
	fl.StringVar(&until, "until", "", "before this time (same forms)")
	fl.IntVar(&f.Limit, "limit", 200, "at most this many lines")
	fl.BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: use RFC 3339 (2026-11-25T10:00:00Z), a date (2026-11-25) or a duration ago (2h)", s)
}
