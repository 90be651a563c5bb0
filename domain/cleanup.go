package domain

import (
	"fmt"
	"time"
)

// CleanupMode chooses how strictly clean-up checks statuses.
type CleanupMode string

const (
	// CleanupStandard removes only old messages in the four statuses of rule 8
	// (docs/rules.md).
	CleanupStandard CleanupMode = "standard"
	// CleanupFiscal skips the status check for fiscal messages; the age floor stays.
	CleanupFiscal CleanupMode = "fiscal"
)

// ParseCleanupMode reads a mode from the command line.
func ParseCleanupMode(s string) (CleanupMode, error) {
	switch CleanupMode(s) {
	case CleanupStandard, "":
		return CleanupStandard, nil
	case CleanupFiscal:
		return CleanupFiscal, nil
	}
	return "", fmt.Errorf("unknown clean-up mode %q: use %s or %s", s, CleanupStandard, CleanupFiscal)
}

// cleanable are the statuses of rule 8.
var cleanable = map[Status]bool{
	StatusReadyToResend:    true,
	StatusSent:             true,
	StatusReceiptConfirmed: true,
	StatusSendFailed:       true,
}

// CleanableStatuses lists the statuses standard clean-up may remove.
func CleanableStatuses() []Status {
	out := []Status{}
	for _, s := range order {
		if cleanable[s] {
			out = append(out, s)
		}
	}
	return out
}

// CleanupCandidate is a message as clean-up needs to see it.
type CleanupCandidate struct {
	Number int64
	Status Status
	// LastStatusChange is what the age counts from: a message restored yesterday is
	// about to be sent again, however long ago it was first queued.
	LastStatusChange time.Time
	Fiscal           bool
	// OpenDelivery is set while a delivery of the message's current attempt has no
	// known outcome: it may be at Digipoort, and its replies must find the message.
	OpenDelivery bool
}

// ValidateRetention refuses a retention below the 30-day floor.
func ValidateRetention(d time.Duration) error {
	if d < MinRetention {
		return fmt.Errorf("retention %s is below the floor of 30 days: clean-up never removes younger messages", d)
	}
	return nil
}

// CleanupRefusal says why a message may not be removed, or "" when it may (rule 8).
// retention is at least MinRetention; a shorter one is raised to it.
func CleanupRefusal(c CleanupCandidate, now time.Time, retention time.Duration, mode CleanupMode) string {
	if retention < MinRetention {
		retention = MinRetention
	}
	if c.OpenDelivery {
		return fmt.Sprintf("message %d has a delivery whose outcome is not known yet: it is looked up at Digipoort first", c.Number)
	}
	if age := now.Sub(c.LastStatusChange); age < retention {
		return fmt.Sprintf("message %d changed status %d days ago; clean-up removes only messages unchanged for at least %d days",
			c.Number, int(age.Hours()/24), int(retention.Hours()/24))
	}
	if c.Status == StatusQueued {
		// Rule 1 outranks every mode: a queued message cannot be withdrawn.
		return fmt.Sprintf("message %d is queued and not yet sent: a queued message cannot be withdrawn", c.Number)
	}
	if mode == CleanupFiscal && c.Fiscal {
		return ""
	}
	if !cleanable[c.Status] {
		hint := ""
		if c.Fiscal && mode != CleanupFiscal {
			hint = "; fiscal mode skips this check for fiscal messages"
		}
		return fmt.Sprintf("message %d is %s; clean-up removes only %v%s", c.Number, c.Status, CleanableStatuses(), hint)
	}
	return ""
}
