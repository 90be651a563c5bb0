package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"koerier/pipeline"
	"koerier/store"
)

func newEnvironmentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "environments", Short: "Add, list, change and remove environments (tenants that queue messages)"}
	var add store.Environment
	var asJSON bool
	addCmd := &cobra.Command{
		Use:   "add <name>",
		Short: "Add an environment with its communication profile",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			add.Name = args[0]
			e, err := a.store.AddEnvironment(cmd.Context(), add)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "environment %s added (auto-send %v, auto-process %v)\n", e.Name, e.AutoSend, e.AutoProcess)
			return nil
		}),
	}
	addCmd.Flags().BoolVar(&add.AutoSend, "auto-send", false, "send queued messages at once instead of with the next send/receive")
	addCmd.Flags().BoolVar(&add.AutoProcess, "auto-process", false, "apply replies to the environment's view as they arrive")
	addCmd.Flags().StringVar(&add.EmailFrom, "email-from", "", "sender address of the environment's e-mail profile (e-invoices)")
	addCmd.Flags().StringVar(&add.SMTPAddress, "smtp", "", "SMTP server host:port of the e-mail profile")
	addCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var all bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List environments",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			envs, err := a.store.Environments(cmd.Context(), all)
			if err != nil {
				return err
			}
			if asJSON {
				if envs == nil {
					envs = []store.Environment{}
				}
				return printJSON(cmd.OutOrStdout(), envs)
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "NAME\tAUTO-SEND\tAUTO-PROCESS\tE-MAIL\tACTIVE\tCREATED")
			for _, e := range envs {
				fmt.Fprintf(w, "%s\t%v\t%v\t%s\t%v\t%s\n", e.Name, e.AutoSend, e.AutoProcess, orDash(e.EmailFrom), e.Active, e.CreatedAt.Format("2006-01-02 15:04"))
			}
			return w.Flush()
		}),
	}
	listCmd.Flags().BoolVar(&all, "all", false, "include removed environments")
	listCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	removeCmd := &cobra.Command{
		Use:   "remove <name>",
		Short: "Remove an environment; its unfinished messages then need an operator (assign)",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			affected, err := a.store.RemoveEnvironment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "environment %s removed; %d message(s) need an operator: %v\n", args[0], len(affected), affected)
			return nil
		}),
	}
	cmd.AddCommand(addCmd, listCmd, removeCmd, newEnvironmentSetCmd(), newTokenCmd(), newTokensCmd(), newRevokeTokenCmd(), newWebhookCmd())
	return cmd
}

// newTokenCmd issues an API token: the environment's key to the API (rule 13 in
// docs/rules.md). It is printed once; Koerier keeps only its hash.
func newTokenCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "token <name>",
		Short: "Issue an API token for an environment (printed once; only its hash is kept)",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			t, secret, err := a.store.IssueToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"token": secret, "id": t.ID, "environment": t.Environment, "created_at": t.CreatedAt})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %d for environment %s: give it to the environment now, it is not shown again "+
				"(requests carry it as Authorization: Bearer <token>; revoke it with `starter environments revoke-token %s %d`)\n",
				t.ID, t.Environment, t.Environment, t.ID)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"token": "..."} (with its id)`)
	return cmd
}

func newTokensCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tokens <name>",
		Short: "List an environment's API tokens (id, created, revoked; never the token)",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			list, err := a.store.Tokens(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), list)
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "ID\tCREATED\tREVOKED")
			for _, t := range list {
				revoked := "-"
				if t.RevokedAt != nil {
					revoked = t.RevokedAt.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(w, "%d\t%s\t%s\n", t.ID, t.CreatedAt.Local().Format("2006-01-02 15:04:05"), revoked)
			}
			return w.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newRevokeTokenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-token <name> <id>",
		Short: "Revoke one of an environment's API tokens; requests with it are refused from now on",
		Args:  cobra.ExactArgs(2),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || id <= 0 {
				return fmt.Errorf("%q is not a token id: see `starter environments tokens %s`", args[1], args[0])
			}
			if err := a.store.RevokeToken(cmd.Context(), args[0], id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %d of environment %s revoked\n", id, args[0])
			return nil
		}),
	}
}

// newWebhookCmd registers where the environment is told of its messages' status
// changes, with a new signing secret that is printed once.
func newWebhookCmd() *cobra.Command {
	var url string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "webhook <name> --url URL",
		Short: "Register the environment's webhook endpoint (replaces and re-enables the old one; prints its new signing secret)",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			w, err := a.store.SetWebhook(cmd.Context(), args[0], url)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"secret": w.Secret, "url": w.URL, "created_at": w.CreatedAt})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", w.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "webhook of environment %s: %s; give the environment the secret above to verify the "+
				"webhook-signature header (Standard Webhooks)\n", args[0], w.URL)
			return nil
		}),
	}
	cmd.Flags().StringVar(&url, "url", "", "http(s) URL that receives a POST per status change")
	_ = cmd.MarkFlagRequired("url")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"secret": "whsec_..."}`)
	return cmd
}

// newEnvironmentSetCmd changes auto-send and auto-process after an environment was
// added. A declaration workflow reads them when it loads its message, and one that
// waits (for a send, for process) may not load it again for days; so every workflow of
// the environment that runs is told (environment-changed) and reads them at once. One
// that does not run reads them when it starts.
func newEnvironmentSetCmd() *cobra.Command {
	var autoSend, autoProcess bool
	cmd := &cobra.Command{
		Use:   "set <name> [--auto-send=true|false] [--auto-process=true|false]",
		Short: "Change an environment's auto-send or auto-process; its running workflows are told at once",
		Args:  cobra.ExactArgs(1),
		RunE: withApp(false, func(cmd *cobra.Command, a *app, args []string) error {
			var set store.EnvironmentSettings
			if cmd.Flags().Changed("auto-send") {
				set.AutoSend = &autoSend
			}
			if cmd.Flags().Changed("auto-process") {
				set.AutoProcess = &autoProcess
			}
			res, err := a.store.SetEnvironment(cmd.Context(), args[0], set, operator())
			if err != nil {
				return err
			}
			e, what := res.Environment, "unchanged"
			if len(res.Changes) > 0 {
				what = "changed: " + strings.Join(res.Changes, ", ")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "environment %s: auto-send %v, auto-process %v (%s)\n", e.Name, e.AutoSend, e.AutoProcess, what)
			if len(res.Messages) == 0 {
				return nil
			}
			told, idle, err := tellWorkflows(cmd.Context(), a, res.Messages)
			if err != nil {
				return fmt.Errorf("the settings are stored, but %d of %d workflow(s) of environment %s were not told (%w): they keep the old "+
					"settings until they read their message again; run this command again when Temporal is reachable", len(res.Messages)-told-idle,
					len(res.Messages), e.Name, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d running workflow(s) told; %d message(s) without a running workflow read the settings when it starts\n",
				told, idle)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&autoSend, "auto-send", false, "send queued messages at once instead of with the next send/receive")
	cmd.Flags().BoolVar(&autoProcess, "auto-process", false, "apply replies to the environment's view as they arrive")
	return cmd
}

// tellWorkflows signals environment-changed to the running workflows of messages; a
// message whose workflow is closed (idle) needs no word, and none is started for it.
func tellWorkflows(ctx context.Context, a *app, numbers []int64) (told, idle int, _ error) {
	if err := a.dial(ctx); err != nil {
		return 0, 0, err
	}
	var errs []error
	for _, n := range numbers {
		err := a.tc.SignalWorkflow(ctx, pipeline.DeclarationID(n), "", pipeline.SignalEnvironmentChanged, pipeline.OperatorSignal{By: operator()})
		var nf *serviceerror.NotFound
		switch {
		case err == nil:
			told++
		case errors.As(err, &nf):
			idle++
		default:
			errs = append(errs, fmt.Errorf("message %d: %w", n, err))
		}
	}
	return told, idle, errors.Join(errs...)
}
