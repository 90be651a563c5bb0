package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

func newBankCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bank", Short: "An environment's bank channel (payment orders over SFTP)"}
	var env string
	var asJSON bool
	sr := &cobra.Command{
		Use: "send-receive --env NAME [--json]",
		Short: "Run the environment's bank send/receive now and wait for it: upload its due payment orders, fetch the bank's status " +
			"reports (waits for the one that runs, if any)",
		Args: cobra.NoArgs,
		RunE: withApp(true, func(cmd *cobra.Command, a *app, _ []string) error {
			e, err := a.store.Environment(cmd.Context(), env)
			if err != nil {
				return err
			}
			if !e.HasBank {
				return noBankProfile(e.Name)
			}
			id := pipeline.BankRunID(e.Name)
			run, err := a.tc.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.ControlQueue(a.cfg.TaskQueue),
				StaticSummary: "bank send/receive of " + e.Name + " started by " + operator(), WorkflowExecutionErrorWhenAlreadyStarted: true},
				pipeline.BankSendReceiveWorkflowType, pipeline.BankSendReceiveInput{Environment: e.Name, Trigger: "manual by " + operator()})
			var running *serviceerror.WorkflowExecutionAlreadyStarted
			switch {
			case errors.As(err, &running):
				// One run at a time per environment: the one running does what this one would.
				fmt.Fprintf(cmd.ErrOrStderr(), "a bank send/receive of environment %s runs already (%s): waiting for it\n", e.Name, id)
				run = a.tc.GetWorkflow(cmd.Context(), id, "")
			case err != nil:
				return fmt.Errorf("start the bank send/receive of environment %s: %w", e.Name, err)
			}
			var res pipeline.BankSendReceiveResult
			if err := run.Get(cmd.Context(), &res); err != nil {
				return fmt.Errorf("bank send/receive of environment %s: %s", e.Name, pipeline.RootMessage(err))
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "bank send/receive of environment %s done: %d due payment order(s) told to send; status reports: %d fetched, "+
				"%d linked, %d unknown, %d seen before, %d moved\n", e.Name, res.Dispatched, res.Reports, res.Linked, res.Unknown, res.Seen, res.Moved)
			if res.Unknown > 0 {
				fmt.Fprintf(out, "reports that link to no payment order are unknown replies: `starter onb list`\n")
			}
			if res.More {
				fmt.Fprintf(out, "the download folder holds more: run it again, or let the schedule %s take the rest\n", pipeline.BankScheduleID(e.Name))
			}
			if res.Dispatched > 0 && res.Reports == 0 {
				fmt.Fprintf(out, "the bank answers after a while: run it again for its status reports\n")
			}
			return nil
		}),
	}
	sr.Flags().StringVar(&env, "env", "", "the environment (required)")
	sr.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON (dispatched, reports, linked, unknown, seen, moved)")
	_ = sr.MarkFlagRequired("env")
	cmd.AddCommand(sr)
	return cmd
}

// messageJSON is `starter show --json`: the message, and for a payment order its
// transactions with the status the bank last reported for each.
type messageJSON struct {
	store.MessageDetail
	Transactions []store.PaymentTxView `json:"transactions,omitempty"`
}

// showDetail reads one message for `starter show`, with its transactions if it is a
// payment order.
func showDetail(cmd *cobra.Command, a *app, number int64) (messageJSON, error) {
	d, err := a.store.ShowMessage(cmd.Context(), number)
	if err != nil {
		return messageJSON{}, err
	}
	out := messageJSON{MessageDetail: d}
	if d.Type == string(domain.TypePayment) {
		if out.Transactions, err = a.store.PaymentTransactions(cmd.Context(), number); err != nil {
			return messageJSON{}, err
		}
	}
	return out, nil
}

// printTransactions lists a payment order's transactions as `starter show` prints them.
func printTransactions(w io.Writer, txs []store.PaymentTxView) error {
	if len(txs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\ntransactions:")
	t := table(w)
	fmt.Fprintln(t, "  END-TO-END-ID\tAMOUNT\tCREDITOR\tIBAN\tSTATUS\tREASON")
	for _, tx := range txs {
		status := tx.Status
		if status == "" {
			status = "(none yet)"
		}
		reason := "-"
		switch text := firstLineOf(tx.ReasonText); {
		case text != "" && strings.HasPrefix(text, tx.Reason):
			// The explanation names its code already.
			reason = text
		case text != "":
			reason = strings.TrimSpace(tx.Reason + ": " + text)
		case tx.Reason != "":
			reason = tx.Reason
		}
		fmt.Fprintf(t, "  %s\t%s %s\t%s\t%s\t%s\t%s\n", tx.EndToEndID, tx.Amount, tx.Currency, tx.Creditor, tx.CreditorIBAN, status, reason)
	}
	return t.Flush()
}
