package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"koerier/pipeline"
	"koerier/store"
)

// invoicesPage is how many received invoices one query reads.
const invoicesPage = 500

func newEInvoicesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "einvoices", Short: "E-invoices (UBL) an environment received in its mailbox"}
	var env string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list --env NAME [--json]",
		Short: "List the e-invoices an environment received: number, invoice number, supplier, amount, currency, status",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			e, err := a.store.Environment(cmd.Context(), env)
			if err != nil {
				return err
			}
			all := []store.InvoiceView{}
			for after := int64(0); ; {
				page, err := a.store.IncomingInvoices(cmd.Context(), e.ID, after, invoicesPage)
				if err != nil {
					return err
				}
				all = append(all, page...)
				if len(page) < invoicesPage {
					break
				}
				after = page[len(page)-1].Number
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), all)
			}
			if len(all) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "environment %s has received no e-invoices yet (`starter mail send-receive --env %s` reads its mailbox now)\n",
					e.Name, e.Name)
				return nil
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "NUMBER\tINVOICE\tKIND\tISSUED\tSUPPLIER\tAMOUNT\tSTATUS\tRECEIVED")
			for _, i := range all {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Number, i.InvoiceNumber, orDash(i.Kind), orDash(i.IssueDate), i.Supplier,
					strings.TrimSpace(i.Amount+" "+i.Currency), i.Status, i.ReceivedAt.Local().Format("2006-01-02 15:04"))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the documents: `starter attachment save <number>`\n")
			return nil
		}),
	}
	list.Flags().StringVar(&env, "env", "", "the environment (required)")
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array (number, invoice_number, supplier, amount, currency, status, …)")
	_ = list.MarkFlagRequired("env")
	cmd.AddCommand(list)
	return cmd
}

func newMailCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mail", Short: "An environment's e-mail channel (e-invoices)"}
	var env string
	var asJSON bool
	sr := &cobra.Command{
		Use: "send-receive --env NAME [--json]",
		Short: "Run the environment's e-mail send/receive now and wait for it: send its due e-invoices, read its mailbox " +
			"(waits for the one that runs, if any)",
		Args: cobra.NoArgs,
		RunE: withApp(true, func(cmd *cobra.Command, a *app, _ []string) error {
			e, err := a.store.Environment(cmd.Context(), env)
			if err != nil {
				return err
			}
			if e.MailFrom == "" {
				return fmt.Errorf("environment %s has no e-mail profile: give it one with `starter environments set %s --local-mail` (the local mail "+
					"server of `make run`) or --email-from … --smtp … --imap …", e.Name, e.Name)
			}
			id := pipeline.MailRunID(e.Name)
			run, err := a.tc.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.ControlQueue(a.cfg.TaskQueue),
				StaticSummary: "e-mail send/receive of " + e.Name + " started by " + operator(), WorkflowExecutionErrorWhenAlreadyStarted: true},
				pipeline.MailSendReceiveWorkflowType, pipeline.MailSendReceiveInput{Environment: e.Name, Trigger: "manual by " + operator()})
			var running *serviceerror.WorkflowExecutionAlreadyStarted
			switch {
			case errors.As(err, &running):
				// One run at a time per environment: the one running does what this one would.
				fmt.Fprintf(cmd.ErrOrStderr(), "an e-mail send/receive of environment %s runs already (%s): waiting for it\n", e.Name, id)
				run = a.tc.GetWorkflow(cmd.Context(), id, "")
			case err != nil:
				return fmt.Errorf("start the e-mail send/receive of environment %s: %w", e.Name, err)
			}
			var res pipeline.MailSendReceiveResult
			if err := run.Get(cmd.Context(), &res); err != nil {
				return fmt.Errorf("e-mail send/receive of environment %s: %s", e.Name, pipeline.RootMessage(err))
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "e-mail send/receive of environment %s done: %d due e-invoice(s) told to send; mailbox: %d message(s) read, "+
				"%d invoice(s) received, %d duplicate(s), %d reply(ies) linked, %d unknown, %d moved\n", e.Name, res.Dispatched, res.Read, res.Invoices,
				res.Duplicates, res.Replies, res.Unknown, res.Moved)
			if len(res.UnknownNumbers) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "unknown incoming messages (no usable UBL; see `starter show <number>`): %v\n", res.UnknownNumbers)
			}
			if res.More {
				fmt.Fprintf(cmd.OutOrStdout(), "the folder holds more: run it again, or let the schedule %s take the rest\n", pipeline.MailScheduleID(e.Name))
			}
			if res.Invoices > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "`starter einvoices list --env %s` lists the received invoices\n", e.Name)
			}
			return nil
		}),
	}
	sr.Flags().StringVar(&env, "env", "", "the environment (required)")
	sr.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	_ = sr.MarkFlagRequired("env")
	cmd.AddCommand(sr)
	return cmd
}
