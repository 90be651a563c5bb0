package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"koerier/activities"
	"koerier/internal/service"
	"koerier/pipeline"
	"koerier/store"
)

// newONBCmd is the operator's path for unknown replies (rule 5 in docs/rules.md): list,
// link to a message, or resolve with a memo. Link and resolve act in Postgres first, so
// a refusal is printed at once, then signal the reply's workflow (starting it where it
// has none), which does the same again as a no-op, tells the message's workflow about
// an applied status, and ends: the Web UI no longer lists the reply as unknown.
func newONBCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "onb",
		Short: "Unknown replies (ONB): list them, link one to a message, or resolve one with a memo",
	}
	var asJSON, all bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List the open unknown replies (with --all also the resolved ones), newest first",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			onbs, err := a.store.UnknownReplies(cmd.Context(), all, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), onbs)
			}
			tw := table(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NUMBER\tSTATE\tRECEIVED\tKENMERK\tBERICHTKENMERK\tBERICHTSOORT\tSUBJECT\tFILES")
			for _, o := range onbs {
				state := "open"
				if !o.Open {
					state = "resolved"
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", o.Number, state, o.ReceivedAt.UTC().Format("2006-01-02 15:04"), orDash(o.PickupKenmerk),
					orDash(o.Berichtkenmerk), orDash(o.Berichtsoort), orDash(o.Subject), o.Attachments)
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	list.Flags().BoolVar(&all, "all", false, "include resolved unknown replies")
	list.Flags().IntVar(&limit, "limit", 1000, "at most this many")

	var linkMemo string
	link := &cobra.Command{
		Use:   "link <onb-number> <message-number>",
		Short: "Make an unknown reply a reply of an outgoing message (a status only of the process the message was delivered as)",
		Args:  cobra.ExactArgs(2),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			// No look-up of the unknown reply first: once linked it is no ONB any more, and
			// a retry (after the signal below failed, say) must still succeed and tell the
			// workflow. LinkONB returns the reply as it was.
			res, err := a.store.LinkONB(cmd.Context(), numbers[0], numbers[1], operator(), linkMemo)
			if err != nil {
				return err
			}
			switch {
			case res.Already:
				fmt.Fprintf(cmd.OutOrStdout(), "unknown reply %d was linked to message %d already (the message is %s)\n", res.Number, res.Message,
					res.Status)
			case res.Code != "":
				fmt.Fprintf(cmd.OutOrStdout(), "unknown reply %d linked to message %d: status %s applied, the message is %s\n", res.Number, res.Message,
					res.Code, res.Status)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "unknown reply %d linked to message %d as its reply document (the message is %s)\n", res.Number,
					res.Message, res.Status)
			}
			tellONB(cmd, a, res.Reply, pipeline.SignalLinkONB, pipeline.LinkONBSignal{Message: numbers[1], Memo: linkMemo, By: operator()})
			return nil
		}),
	}
	link.Flags().StringVar(&linkMemo, "memo", "", "why it belongs to this message (kept in the log)")

	var resolveMemo string
	resolve := &cobra.Command{
		Use:   "resolve <onb-number> --memo M",
		Short: "Close an unknown reply without a message; the memo says what it was and why (it may be cleaned up afterwards)",
		Args:  cobra.ExactArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			o, err := a.store.UnknownReply(cmd.Context(), numbers[0])
			if err != nil {
				return err
			}
			res, err := a.store.ResolveONB(cmd.Context(), numbers[0], operator(), resolveMemo)
			if err != nil {
				return err
			}
			if res.Already {
				fmt.Fprintf(cmd.OutOrStdout(), "unknown reply %d was resolved already\n", res.Number)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "unknown reply %d resolved\n", res.Number)
			}
			tellONB(cmd, a, o, pipeline.SignalResolveONB, pipeline.ResolveONBSignal{Memo: resolveMemo, By: operator()})
			return nil
		}),
	}
	resolve.Flags().StringVar(&resolveMemo, "memo", "", "what the reply was and why nothing else is done (required)")
	_ = resolve.MarkFlagRequired("memo")

	cmd.AddCommand(list, link, resolve)
	return cmd
}

// tellONB signals the reply's workflow after the store did the work; it is a warning,
// not a failure, when Temporal is away: the workflow asks Postgres daily and ends then.
func tellONB(cmd *cobra.Command, a *app, o store.ONB, signal string, arg any) {
	err := a.dial(cmd.Context())
	if err == nil {
		err = service.Starter(a.cfg, a.tc).SignalUnknownReply(cmd.Context(), activities.ONBInput(o), signal, arg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "koerier: done in the database, but the workflow of unknown reply %d was not told (%v); it ends by itself within a day, "+
			"and the next send/receive tells the message's workflow\n", o.Number, err)
	}
}
