package pipeline

import "koerier/domain"

// LogLine is a line a workflow writes to the communication log (the WriteLog
// activity's input).
type LogLine struct {
	// Message is the message the line is about; 0 for a line about a run.
	Message     int64
	Step        domain.Step
	Level       domain.Level
	Description string
	Information string
	// DedupeKey keeps a retried write single.
	DedupeKey string
}
