package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"koerier/pipeline"
)

// newDeliveryCmd is the operator's decision about a delivery whose outcome is not
// known (rule 11 in docs/rules.md): Koerier never delivers such a message again on
// its own.
func newDeliveryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delivery",
		Short: "Decide about a delivery whose outcome is not known (the message needs action and says what was found)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "adopt <number> <kenmerk>",
		Short: "Take Digipoort's process <kenmerk> as this message's delivery (look it up with `starter digipoort status --kenmerk`)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return resolveDelivery(cmd, args[0], pipeline.ResolveDeliverySignal{Adopt: args[1], By: operator()})
		},
	}, &cobra.Command{
		Use:   "redeliver <number>",
		Short: "Declare that the delivery did not reach Digipoort, and deliver the message again now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return resolveDelivery(cmd, args[0], pipeline.ResolveDeliverySignal{DeliverAgain: true, By: operator()})
		},
	})
	return cmd
}

// resolveDelivery records the decision in Postgres (so a refusal is said at once) and
// then tells the message's workflow to go on: deliver again, or read the adopted
// delivery.
func resolveDelivery(cmd *cobra.Command, arg string, sig pipeline.ResolveDeliverySignal) error {
	numbers, err := parseNumbers([]string{arg})
	if err != nil {
		return err
	}
	return withApp(false, func(cmd *cobra.Command, a *app, _ []string) error {
		n := numbers[0]
		m, err := a.store.Message(cmd.Context(), n)
		if err != nil {
			return err
		}
		if err := a.store.ResolveDelivery(cmd.Context(), n, m.Attempt, sig.Adopt, sig.DeliverAgain, sig.By); err != nil {
			return err
		}
		if err := signalMessages(cmd, a, numbers, pipeline.SignalSendNow, pipeline.OperatorSignal{By: sig.By}); err != nil {
			return errors.Join(fmt.Errorf("decided, but the workflow was not told; the next send/receive goes on with message %d", n), err)
		}
		if sig.DeliverAgain {
			fmt.Fprintf(cmd.OutOrStdout(), "message %d is delivered again now; `starter messages` shows how it fares\n", n)
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "message %d: Digipoort's process %s adopted as its delivery\n", n, sig.Adopt)
		}
		return nil
	})(cmd, nil)
}
