package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"

	"koerier/internal/service"
	"koerier/pipeline"
	"koerier/store"
)

func newEnvironmentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "environments", Short: "Add, list, change and remove environments (tenants that queue messages)"}
	var add store.Environment
	var addMail mailFlags
	var addBank bankFlags
	var asJSON bool
	addCmd := &cobra.Command{
		Use:   "add <name> [--local-mail | --email-from A --smtp H:P …] [--local-bank | --sftp H:P --sftp-user U --sftp-key-file F --sftp-host-key K …]",
		Short: "Add an environment with its communication profile and, if given, its e-mail profile (e-invoices) and bank profile (payment orders)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := addMail.check(cmd); err != nil {
				return err
			}
			if err := addBank.check(cmd); err != nil {
				return err
			}
			withMail, withBank := addMail.given(cmd), addBank.given(cmd)
			var profile *store.MailProfile
			var bank *store.BankProfile
			// Read before anything is stored: a missing password or key file, or a local
			// server that does not answer, adds nothing.
			if withMail {
				var err error
				if profile, err = addMail.profile(cmd, args[0], nil, os.Getenv); err != nil {
					return err
				}
			}
			if withBank {
				var err error
				if bank, err = addBank.bankProfileFor(cmd, args[0], nil); err != nil {
					return err
				}
			}
			return withApp(withMail || withBank, func(cmd *cobra.Command, a *app, args []string) error {
				add.Name = args[0]
				e, err := a.store.AddEnvironment(cmd.Context(), add)
				if err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "environment %s added (auto-send %v, auto-process %v)\n", e.Name, e.AutoSend, e.AutoProcess)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					out = cmd.ErrOrStderr()
				}
				if withMail {
					if err := setMailProfile(cmd, a, e.Name, profile, out); err != nil {
						return fmt.Errorf("environment %s is added; %w (`starter environments set %s …` sets the e-mail profile again)", e.Name, err, e.Name)
					}
				}
				if withBank {
					if err := setBankProfile(cmd, a, e.Name, bank, out); err != nil {
						return fmt.Errorf("environment %s is added; %w (`starter environments set %s …` sets the bank profile again)", e.Name, err, e.Name)
					}
				}
				if withMail || withBank {
					if e, err = a.store.Environment(cmd.Context(), e.Name); err != nil {
						return err
					}
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), e)
				}
				return nil
			})(cmd, args)
		},
	}
	addCmd.Flags().BoolVar(&add.AutoSend, "auto-send", false, "send queued messages at once instead of with the next send/receive")
	addCmd.Flags().BoolVar(&add.AutoProcess, "auto-process", false, "apply replies to the environment's view as they arrive")
	addMail.register(addCmd.Flags(), false)
	addBank.register(addCmd.Flags(), false)
	addCmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var all bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List environments with their e-mail and bank profiles (sender, servers, pinned host key; never a password or key)",
		Args:  cobra.NoArgs,
		RunE: withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
			envs, err := a.store.Environments(cmd.Context(), all)
			if err != nil {
				return err
			}
			rows := make([]environmentJSON, 0, len(envs))
			for _, e := range envs {
				rows = append(rows, environmentJSON{Environment: e, Bank: bankViewFor(cmd.Context(), a, e), Mail: mailViewOf(cmd.Context(), a, e)})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			w := table(cmd.OutOrStdout())
			fmt.Fprintln(w, "NAME\tAUTO-SEND\tAUTO-PROCESS\tE-MAIL\tSMTP\tIMAP\tBANK\tHOST-KEY\tACTIVE\tCREATED")
			for _, r := range rows {
				smtp, imap := r.Mail.servers()
				bank, hostKey := r.Bank.columns()
				fmt.Fprintf(w, "%s\t%v\t%v\t%s\t%s\t%s\t%s\t%s\t%v\t%s\n", r.Name, r.AutoSend, r.AutoProcess, orDash(r.MailFrom), smtp, imap, bank,
					hostKey, r.Active, r.CreatedAt.Format("2006-01-02 15:04"))
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

// newEnvironmentSetCmd changes auto-send, auto-process, the e-mail profile and the bank
// profile after an environment was added. A declaration workflow reads auto-send and
// auto-process when it loads its message, and one that waits (for a send, for process)
// may not load it again for days; so every workflow of the environment that runs is told
// (environment-changed) and reads them at once. One that does not run reads them when it
// starts. A new e-mail or bank profile is used from the next send; its schedule is
// applied at once.
func newEnvironmentSetCmd() *cobra.Command {
	var autoSend, autoProcess bool
	var mf mailFlags
	var bf bankFlags
	cmd := &cobra.Command{
		Use: "set <name> [--auto-send=true|false] [--auto-process=true|false] [--local-mail | --no-mail | --email-from A --smtp H:P " +
			"--smtp-user U --smtp-password-file F --imap H:P …] [--local-bank | --no-bank | --sftp H:P --sftp-user U --sftp-key-file F " +
			"--sftp-host-key K …]",
		Short: "Change an environment's auto-send, auto-process, e-mail profile or bank profile; its running workflows are told at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mf.check(cmd); err != nil {
				return err
			}
			if err := bf.check(cmd); err != nil {
				return err
			}
			withMail, withBank := mf.given(cmd), bf.given(cmd)
			var whole *store.MailProfile
			if mf.local || mf.none {
				// A whole profile (or none): made before anything is opened.
				var err error
				if whole, err = mf.profile(cmd, args[0], nil, os.Getenv); err != nil {
					return err
				}
			}
			return withApp(withMail || withBank, func(cmd *cobra.Command, a *app, args []string) error {
				name := args[0]
				if withMail {
					p := whole
					if !mf.local && !mf.none {
						// Flags not given keep the stored profile's values.
						e, err := a.store.Environment(cmd.Context(), name)
						if err != nil {
							return err
						}
						var old *store.MailProfile
						stored, err := a.store.MailProfile(cmd.Context(), e.ID)
						switch {
						case err == nil:
							old = &stored
						case !errors.Is(err, store.ErrNotFound):
							return err
						}
						if p, err = mf.profile(cmd, name, old, os.Getenv); err != nil {
							return err
						}
					}
					if err := setMailProfile(cmd, a, name, p, cmd.OutOrStdout()); err != nil {
						return err
					}
				}
				if withBank {
					var old *store.BankProfile
					if !bf.none {
						// Flags not given keep the stored profile's values; --local-bank keeps its key.
						var err error
						old, err = storedBankProfile(cmd.Context(), a, name)
						if err != nil && (!bf.local || errors.Is(err, store.ErrNotFound)) {
							return err
						}
					}
					p, err := bf.bankProfileFor(cmd, name, old)
					if err != nil {
						return err
					}
					if err := setBankProfile(cmd, a, name, p, cmd.OutOrStdout()); err != nil {
						return err
					}
				}
				if (withMail || withBank) && !cmd.Flags().Changed("auto-send") && !cmd.Flags().Changed("auto-process") {
					return nil
				}
				return setAuto(cmd, a, name, autoSend, autoProcess)
			})(cmd, args)
		},
	}
	cmd.Flags().BoolVar(&autoSend, "auto-send", false, "send queued messages at once instead of with the next send/receive")
	cmd.Flags().BoolVar(&autoProcess, "auto-process", false, "apply replies to the environment's view as they arrive")
	mf.register(cmd.Flags(), true)
	bf.register(cmd.Flags(), true)
	return cmd
}

// setAuto changes auto-send and auto-process as given and tells the environment's
// running workflows.
func setAuto(cmd *cobra.Command, a *app, name string, autoSend, autoProcess bool) error {
	var set store.EnvironmentSettings
	if cmd.Flags().Changed("auto-send") {
		set.AutoSend = &autoSend
	}
	if cmd.Flags().Changed("auto-process") {
		set.AutoProcess = &autoProcess
	}
	res, err := a.store.SetEnvironment(cmd.Context(), name, set, operator())
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
}

// setMailProfile stores an environment's e-mail profile (nil removes it), says what is
// stored now (never a password) and applies the environment's e-mail schedule, which
// reads its mailbox: without it, nothing would be received. a must be dialled.
func setMailProfile(cmd *cobra.Command, a *app, env string, p *store.MailProfile, out io.Writer) error {
	ctx := cmd.Context()
	mailbox := false
	if p == nil {
		if err := a.store.ClearMailProfile(ctx, env, operator()); err != nil {
			return err
		}
		fmt.Fprintf(out, "environment %s: no e-mail profile; it no longer sends or receives e-invoices\n", env)
	} else {
		if err := a.store.SetMailProfile(ctx, env, *p, operator()); err != nil {
			return err
		}
		e, err := a.store.Environment(ctx, env)
		if err != nil {
			return err
		}
		stored, err := a.store.MailProfile(ctx, e.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "environment %s: e-mail profile %s\n", env, describeProfile(stored))
		// Every profile gets the schedule: it sends the due e-invoices, and reads the
		// mailbox only where there is one.
		mailbox = true
	}
	r, err := service.ApplyMailSchedule(ctx, a.tc, a.cfg, env, mailbox)
	if err != nil {
		return fmt.Errorf("the e-mail profile of environment %s is stored, but its e-mail schedule was not applied (%w): run `starter schedules apply` "+
			"when Temporal answers", env, err)
	}
	if r.Why != "" {
		fmt.Fprintf(out, "schedule %s %s: %s\n", r.ID, r.Action, r.Why)
	} else {
		fmt.Fprintf(out, "schedule %s %s (every %s): `starter mail send-receive --env %s` runs it now\n", r.ID, r.Action, r.Every, env)
	}
	return nil
}

// describeProfile says what a profile holds, for the operator: never a password.
func describeProfile(p store.MailProfile) string {
	server := func(s store.MailServer) string {
		out := fmt.Sprintf("%s:%d %s", s.Host, s.Port, s.Security)
		if s.User != "" {
			out += " as " + s.User
			if s.Password != "" {
				out += " (password stored encrypted)"
			}
		}
		return out
	}
	out := fmt.Sprintf("from %s; SMTP %s", p.From, server(p.SMTP))
	if p.HasMailbox() {
		out += fmt.Sprintf("; IMAP %s, folder %s (read mail moves to %s)", server(p.IMAP), p.Folder, p.Processed)
	} else {
		out += "; no mailbox: it sends, but receives no invoices or bounces"
	}
	if p.Local {
		out += "; on the local mail server"
	}
	return out
}

// environmentJSON is one environment of `environments list --json`: its fields, its
// bank profile and its e-mail profile (each null when it has none). The bank comes
// before the mail: scripts/run.sh finds whether an environment's bank profile is
// local by reading from its name up to the first closing brace.
type environmentJSON struct {
	store.Environment
	Bank *bankView `json:"bank"`
	Mail *mailView `json:"mail"`
}

// mailViewOf reads an environment's e-mail profile for the list. A profile that cannot
// be read (no KOERIER_SECRET_KEY for its passwords) is listed with the reason.
func mailViewOf(ctx context.Context, a *app, e store.Environment) *mailView {
	if e.MailFrom == "" {
		return nil
	}
	p, err := a.store.MailProfile(ctx, e.ID)
	if err != nil {
		return &mailView{From: e.MailFrom, Error: err.Error()}
	}
	return viewOf(p)
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
