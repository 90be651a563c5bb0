package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"koerier/domain"
	"koerier/internal/service"
	"koerier/pipeline"
)

// signalMessages sends a signal to the workflows of messages, starting a workflow
// where a message has none (it was terminated, or finished and is needed again).
func signalMessages(cmd *cobra.Command, a *app, numbers []int64, name string, arg any) error {
	if err := a.dial(cmd.Context()); err != nil {
		return err
	}
	messages, err := a.store.Declarations(cmd.Context(), numbers)
	if err != nil {
		return err
	}
	starter := service.Starter(a.cfg, a.tc)
	var errs []error
	for _, n := range numbers {
		m, ok := messages[n]
		if !ok {
			errs = append(errs, fmt.Errorf("message %d does not exist or is not an outgoing message", n))
			continue
		}
		if err := starter.Signal(cmd.Context(), m, name, arg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func newSendCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "send <number>...",
		Short: "Send due messages now instead of with the next send/receive; says per number what will happen",
		Args:  cobra.MinimumNArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			messages, err := a.store.Declarations(cmd.Context(), numbers)
			if err != nil {
				return err
			}
			var due, skipped []int64
			var errs []error
			for _, n := range numbers {
				m, ok := messages[n]
				if !ok {
					errs = append(errs, fmt.Errorf("message %d does not exist or is not an outgoing message", n))
					continue
				}
				line, send := sendOutlook(m)
				if send {
					due = append(due, n)
					continue
				}
				skipped = append(skipped, n)
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			if len(due) > 0 {
				// Signalled one by one, so that each line says what became of its number.
				if err := a.dial(cmd.Context()); err != nil {
					return errors.Join(append(errs, err)...)
				}
				starter := service.Starter(a.cfg, a.tc)
				for _, n := range due {
					line, _ := sendOutlook(messages[n])
					if err := starter.Signal(cmd.Context(), messages[n], pipeline.SignalSendNow, pipeline.OperatorSignal{By: operator()}); err != nil {
						errs = append(errs, err)
						continue
					}
					fmt.Fprintln(cmd.OutOrStdout(), line)
				}
			}
			if len(skipped) > 0 {
				errs = append(errs, fmt.Errorf("%d of %d message(s) not sent: %v (the lines above say why)", len(skipped), len(numbers), skipped))
			}
			return errors.Join(errs...)
		}),
	}
}

// sendOutlook says what `send` does for a message as Postgres has it, and whether it
// signals send-now: only a due message that is not do-not-send is sent. The workflow
// checks again when the signal arrives (the message may have moved meanwhile).
func sendOutlook(m pipeline.Message) (string, bool) {
	n := m.Number
	switch {
	case m.DoNotSend && m.DeliveryOpen:
		return fmt.Sprintf("%d: do-not-send, and its delivery has no known outcome yet: send/receive looks it up at Digipoort; nothing is sent", n), false
	case m.DoNotSend && m.LatestVersion > m.Version:
		return fmt.Sprintf("%d: do-not-send (version %d of its declaration replaced it): nothing is sent; only the latest version is", n,
			m.LatestVersion), false
	case m.DoNotSend:
		return fmt.Sprintf("%d: do-not-send: nothing is sent; restore it first (`starter restore %d`), which clears the flag", n, n), false
	case !m.EnvironmentActive && m.Status.IsDue():
		return fmt.Sprintf("%d: due (%s), but environment %s was removed: nothing is sent until an operator assigns another environment "+
			"(`starter assign %d --env E`)", n, m.Status, m.Environment, n), false
	case m.Status.IsDue() && m.DeliveryOpen:
		return fmt.Sprintf("%d: due (%s), send-now signalled: its last delivery has no known outcome, so it is looked up at Digipoort before "+
			"anything is delivered again", n, m.Status), true
	case m.Status.IsDue():
		return fmt.Sprintf("%d: due (%s), send-now signalled; `starter messages` shows how it fares", n, m.Status), true
	case m.Status.IsFailure():
		return fmt.Sprintf("%d: not due (%s): nothing to send; restore it first (`starter restore %d`)", n, m.Status, n), false
	case m.Status.IsInFlight():
		return fmt.Sprintf("%d: not due (%s): Digipoort has it (kenmerk %s); nothing to send, its replies come with send/receive", n, m.Status,
			orDash(m.Kenmerk)), false
	default:
		return fmt.Sprintf("%d: not due (%s): nothing to send", n, m.Status), false
	}
}

func newProcessCmd() *cobra.Command {
	var env string
	cmd := &cobra.Command{
		Use:   "process [number]...",
		Short: "Apply received replies to the environments' views (all unprocessed messages, or the ones named)",
		RunE: withNumbers(true, func(cmd *cobra.Command, a *app, numbers []int64) error {
			if len(numbers) == 0 {
				var err error
				if numbers, err = a.store.Unprocessed(cmd.Context(), env, 100000); err != nil {
					return err
				}
			}
			if len(numbers) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing to process: every environment has seen its replies")
				return nil
			}
			if err := signalMessages(cmd, a, numbers, pipeline.SignalProcess, pipeline.OperatorSignal{By: operator()}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "process sent to %d message(s): %v\n", len(numbers), numbers)
			return nil
		}),
	}
	cmd.Flags().StringVar(&env, "env", "", "only this environment's messages")
	return cmd
}

func newRestoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore <number>...",
		Short: "Put failed messages back to 'ready to resend after error'; the next send sends them again",
		Args:  cobra.MinimumNArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			var errs []error
			var restored []int64
			for _, n := range numbers {
				res, err := a.store.Restore(cmd.Context(), n, operator())
				if err != nil {
					errs = append(errs, err)
					continue
				}
				restored = append(restored, n)
				switch {
				case res.DoNotSendCleared && res.Status != domain.StatusReadyToResend:
					fmt.Fprintf(cmd.OutOrStdout(), "message %d: do-not-send cleared; it is %s and due (attempt %d)\n", n, res.Status, res.Attempt)
				case res.DoNotSendCleared:
					fmt.Fprintf(cmd.OutOrStdout(), "message %d: do-not-send cleared; ready to resend after error (attempt %d)\n", n, res.Attempt)
				case res.Already:
					fmt.Fprintf(cmd.OutOrStdout(), "message %d was restored already: ready to resend after error (attempt %d)\n", n, res.Attempt)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "message %d ready to resend after error (attempt %d)\n", n, res.Attempt)
				}
			}
			if len(restored) > 0 {
				if err := signalMessages(cmd, a, restored, pipeline.SignalRestoreStatus, pipeline.OperatorSignal{By: operator()}); err != nil {
					fmt.Fprintf(stderr, "koerier: restored in the database, but the workflow was not told (%v); the next send/receive picks the message up\n", err)
				}
			}
			return errors.Join(errs...)
		}),
	}
}

func newAssignCmd() *cobra.Command {
	var env string
	var resolve bool
	cmd := &cobra.Command{
		Use:   "assign <number> (--env E | --resolve)",
		Short: "Give a message whose environment was removed another environment, or let the service resolve it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			numbers, err := parseNumbers(args)
			if err != nil {
				return err
			}
			if (env == "") == !resolve {
				return errors.New("give either --env E or --resolve")
			}
			a, err := newApp(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.close()
			if err := a.store.AssignEnvironment(cmd.Context(), numbers[0], env, resolve, operator()); err != nil {
				return err
			}
			if err := signalMessages(cmd, a, numbers, pipeline.SignalProcess, pipeline.OperatorSignal{By: operator()}); err != nil {
				fmt.Fprintf(stderr, "koerier: assigned, but the workflow was not told (%v)\n", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "message %d assigned\n", numbers[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&env, "env", "", "the environment that takes the message over")
	cmd.Flags().BoolVar(&resolve, "resolve", false, "let the service hold it (environment koerier-service): it goes on, no environment is told (rule 9)")
	return cmd
}

func newStateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "state <number>",
		Short: "Ask a message's workflow for its state (the Web UI's 'state' query)",
		Args:  cobra.ExactArgs(1),
		RunE: withNumbers(true, func(cmd *cobra.Command, a *app, numbers []int64) error {
			v, err := a.tc.QueryWorkflow(cmd.Context(), pipeline.DeclarationID(numbers[0]), "", pipeline.QueryState)
			if err != nil {
				return fmt.Errorf("query message %d: %w (a finished workflow answers too; a missing one has never run)", numbers[0], err)
			}
			var st pipeline.State
			if err := v.Get(&st); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), st)
		}),
	}
}
