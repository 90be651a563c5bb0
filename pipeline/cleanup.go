package pipeline

import (
	"time"

	"koerier/domain"
)

// CleanupRequest selects what clean-up looks at; it is the CleanupPage activity's
// input and what the store's Cleanup takes.
type CleanupRequest struct {
	// Numbers is an operator's selection: all of it goes, or none of it. Empty means
	// every outgoing message that is eligible, one page at a time.
	Numbers []int64
	Mode    domain.CleanupMode
	// Retention is the age floor; 0 means domain.MinRetention, below it is refused.
	Retention time.Duration
	// Environment, when set, limits clean-up to that environment's messages (removed
	// or not: clearing out an environment no longer used); a selected message of
	// another environment is refused. The age floor and status rules stay.
	Environment string
	// Before, when set, limits clean-up to messages whose last status change is
	// before it (on top of the age floor).
	Before time.Time
	DryRun bool
	// PageSize bounds one transaction when no selection is given; 0 means 500.
	PageSize int
	// After pages by number when no selection is given (a dry run removes nothing,
	// so it must move on by itself).
	After int64
	// Who is named in the log line.
	Who string
	// Run names a clean-up run (CleanupWorkflow sets its workflow id): its pages keep
	// one log line up to date, each in the transaction that removes, so a run leaves
	// one line however many pages it takes. Empty: a line per call.
	Run string
}

// CleanupInput starts a clean-up run; Result carries a run across continue-as-new.
type CleanupInput struct {
	CleanupRequest
	Result CleanupOutcome
}

// CleanupRefused is a message that may not be removed, and why.
type CleanupRefused struct {
	Number int64  `json:"number"`
	Reason string `json:"reason"`
}

// CleanupResult says what one page of clean-up removed (or, in a dry run, would
// remove).
type CleanupResult struct {
	DryRun      bool             `json:"dry_run"`
	Removed     []int64          `json:"removed"`
	Refused     []CleanupRefused `json:"refused"`
	Attachments int              `json:"attachments"`
	Bytes       int64            `json:"bytes"`
	// More is set when a page was full: call again, with After = Next.
	More bool  `json:"more"`
	Next int64 `json:"next"`
}

// CleanupOutcome is what a clean-up run removed (or would remove).
type CleanupOutcome struct {
	DryRun      bool             `json:"dry_run"`
	Removed     int              `json:"removed"`
	Numbers     []int64          `json:"numbers"`
	Refused     []CleanupRefused `json:"refused"`
	Attachments int              `json:"attachments"`
	Bytes       int64            `json:"bytes"`
}

// MaxCleanupListed bounds the numbers a run returns; Postgres' log holds them all.
const MaxCleanupListed = 10000
