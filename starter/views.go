package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"koerier/domain"
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

func newShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use: "show <number>",
		Short: "One message: its properties, what it was sent as, its files, every reply, its latest F lines, the authority's acknowledgement, " +
			"and for a payment order its transactions",
		Args: cobra.ExactArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			d, err := showDetail(cmd, a, numbers[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printMessage(cmd.OutOrStdout(), d)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (a payment order's with \"transactions\")")
	return cmd
}

func printMessage(w io.Writer, d messageJSON) error {
	m := d.Message
	version := ""
	if m.Version != nil {
		version = fmt.Sprintf(", version %d of %d", *m.Version, m.Latest())
	}
	fmt.Fprintf(w, "message %d (%s): %s %s %s%s\n", m.Number, m.Direction, m.Type, orDash(m.Subject), orDash(m.Period), version)
	t := table(w)
	fmt.Fprintf(t, "environment\t%s (sees %s)\n", orDashPtr(m.Environment), m.EnvStatus)
	fmt.Fprintf(t, "status\t%s (%s), attempt %d\n", m.Status, m.Status.Label(), m.Attempt)
	if d.Identity != nil {
		fmt.Fprintf(t, "sent as\t%s, identiteitBelanghebbende %s (type %s)\n", orDash(m.Berichtsoort), d.Identity.Nummer, d.Identity.Type)
	}
	fmt.Fprintf(t, "kenmerk\t%s (aanleverkenmerk %s)\n", orDashPtr(m.Kenmerk), orDashPtr(m.Aanleverkenmerk))
	fmt.Fprintf(t, "queued\t%s\n", m.QueuedAt.Local().Format("2006-01-02 15:04:05"))
	if m.DoNotSend {
		fmt.Fprintf(t, "do-not-send\ta newer version of the declaration was queued before this one was sent\n")
	}
	fmt.Fprintf(t, "changed\t%s (last status change)\n", m.LastStatusChange.Local().Format("2006-01-02 15:04:05"))
	if m.NeedsAction {
		fmt.Fprintf(t, "needs action\t%s\n", indent(orDash(d.Action)))
	} else if d.Action != "" {
		fmt.Fprintf(t, "error\t%s\n", indent(d.Action))
	}
	if m.Memo != "" {
		fmt.Fprintf(t, "memo\t%s\n", m.Memo)
	}
	if h := d.Webhooks; h != (store.WebhookCounts{}) {
		fmt.Fprintf(t, "webhooks\t%d sent, %d pending, %d failed (status changes pushed to the environment)\n", h.Sent, h.Pending, h.Failed)
	}
	for _, f := range d.Files {
		of := ""
		if f.Message != m.Number {
			of = fmt.Sprintf(" of reply document %d", f.Message)
		}
		fmt.Fprintf(t, "%s\t%s (%s, %d bytes, sha256 %s, id %d%s)\n", f.Role, f.Name, f.MimeType, f.Size, f.SHA256, f.ID, of)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(d.Replies) == 0 {
		fmt.Fprintln(w, "\nno replies")
	} else {
		fmt.Fprintln(w, "\nreplies:")
		t = table(w)
		fmt.Fprintln(t, "  ATTEMPT\tCODE\tTIME\tSTATUS\tDESCRIPTION\tERROR\tAPPLIED")
		for _, r := range d.Replies {
			e := "-"
			if r.ErrorCode != "" {
				e = strings.TrimSpace(r.ErrorCode + " " + firstLineOf(r.ErrorDescription))
			}
			fmt.Fprintf(t, "  %d\t%s\t%s\t%s\t%s\t%s\t%v\n", r.Attempt, r.Code, r.OccurredAt.Local().Format("2006-01-02 15:04:05"), r.Status,
				orDash(r.Description), e, r.Applied)
		}
		if err := t.Flush(); err != nil {
			return err
		}
		for _, r := range d.Replies {
			if ack := d.Acknowledgement; ack != nil && r.Code == ack.Code && r.OccurredAt.Equal(ack.At) && r.Kenmerk == ack.Kenmerk {
				continue // printed below, labelled
			}
			if det := strings.TrimSpace(r.Details); det != "" {
				fmt.Fprintf(w, "details of %s (%s):\n  %s\n", r.Code, r.OccurredAt.Local().Format("2006-01-02 15:04:05"), indent(det))
			}
		}
	}
	if err := printTransactions(w, d.Transactions); err != nil {
		return err
	}
	if len(d.Errors) > 0 {
		fmt.Fprintln(w, "\nlatest F lines (newest first; all of them: starter log --message N):")
		for _, e := range d.Errors {
			fmt.Fprintf(w, "  %s  %s  %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Step, indent(e.Description))
			if e.Information != "" {
				fmt.Fprintf(w, "    %s\n", indent(e.Information))
			}
		}
	}
	if len(d.Files) > 0 {
		fmt.Fprintf(w, "\nsave the files with: starter attachment save %d [--id ID] [--out DIR]\n", m.Number)
	}
	if ack := d.Acknowledgement; ack != nil {
		fmt.Fprintf(w, "\nacknowledgement of the authority (statusdetails of Digipoort status %s, kenmerk %s, %s):\n", ack.Code, ack.Kenmerk,
			ack.At.Local().Format("2006-01-02 15:04:05"))
		if r := ack.Response; r != nil {
			fmt.Fprintf(w, "  %s %s %s: %s; received %s, the authority's id %s\n", orDash(r.ResponseType), orDash(r.Class), orDash(r.Code),
				orDash(r.Description), orDash(r.Received), orDash(r.AuthorityID))
		}
		fmt.Fprintf(w, "  %s\n", indent(strings.TrimSpace(ack.Text)))
	} else if m.Status == domain.StatusAccepted && m.Channel == domain.ChannelDigipoort {
		fmt.Fprintln(w, "\nacknowledgement of the authority: Digipoort's status 500 carried none")
	}
	return nil
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n  ") }
