package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"koerier/store"
)

func newEnvironmentsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "environments", Short: "Add, list and remove environments (tenants that queue messages)"}
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
	cmd.AddCommand(addCmd, listCmd, removeCmd)
	return cmd
}
