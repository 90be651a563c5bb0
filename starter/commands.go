package main

import "github.com/spf13/cobra"

// commands lists every sub-command; each lives in a file of its own.
func commands() []*cobra.Command {
	return []*cobra.Command{
		newMigrateCmd(),
		newEnvironmentsCmd(),
		newQueueCmd(),
		newEInvoicesCmd(), // einvoices.go: received e-invoices
		newMailCmd(),      // einvoices.go: an environment's e-mail send/receive
		newBankCmd(),      // payments.go: an environment's bank send/receive
		newSendReceiveCmd(),
		newSendCmd(),
		newProcessCmd(),
		newRestoreCmd(),
		newAssignCmd(),
		newONBCmd(), // onb.go: unknown replies
		newDeliveryCmd(),
		newStatusCmd(),
		newMessagesCmd(),
		newShowCmd(),
		newAttachmentCmd(), // attachment.go: the page's "Opslaan bijlage"
		newTypesCmd(),
		newLogCmd(),
		newStateCmd(),
		newCleanupCmd(),
		newSchedulesCmd(),
		newBenchCmd(),
		newInternalCmd(),
		newDigipoortCmd(),
	}
}
