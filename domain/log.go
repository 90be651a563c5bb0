package domain

// Level is the level of a communication log line, as operators know it from the
// page Koerier replaces: I for information, F for an error (fout) that someone must
// look at.
type Level string

const (
	LevelInfo  Level = "I"
	LevelError Level = "F"
)

// Valid reports whether l is I or F.
func (l Level) Valid() bool { return l == LevelInfo || l == LevelError }

// Step names where in the pipeline a log line was written, so an operator can filter
// the log by what happened.
type Step string

const (
	StepQueue       Step = "queue"
	StepSend        Step = "send"
	StepReceive     Step = "receive"
	StepProcess     Step = "process"
	StepReport      Step = "report"
	StepRestore     Step = "restore"
	StepCleanup     Step = "cleanup"
	StepEnvironment Step = "environment"
	StepSendReceive Step = "send-receive"
	StepWorkflow    Step = "workflow"
	// StepCertificates is the daily check of the Digipoort certificates' expiry.
	StepCertificates Step = "certificates"
)

// Direction says whether a message goes to the authority or came from it.
type Direction string

const (
	// DirectionOut is a message an environment queued for delivery.
	DirectionOut Direction = "out"
	// DirectionIn is a reply document or an unknown reply (ONB) picked up from
	// Digipoort; it has no workflow of its own.
	DirectionIn Direction = "in"
)
