package domain

import "strings"

// CodeKind says what a Digipoort status code means for the process.
type CodeKind string

const (
	KindIntermediate CodeKind = "intermediate"
	KindWarning      CodeKind = "warning"
	KindFinalSuccess CodeKind = "final_success"
	KindFinalError   CodeKind = "final_error"
	KindError        CodeKind = "error"
	KindUnknown      CodeKind = "unknown"
)

// CodeInfo is what Koerier makes of one Digipoort status code.
type CodeInfo struct {
	Code    string
	Status  Status
	Kind    CodeKind
	Meaning string
	// Advice tells the operator what to do; empty when nothing needs doing.
	Advice string
	// NeedsAction is set when an operator must look at the message.
	NeedsAction bool
}

// Error reports whether the code is a problem worth an F line in the log.
func (c CodeInfo) Error() bool {
	return c.Kind == KindFinalError || c.Kind == KindError || c.Kind == KindUnknown
}

// codes follows shared/digipoort/NOTES.md. Codes whose meaning Logius does not publish
// (220, 710) are treated as errors that end the process, because waiting for a reply
// that will not come would leave the message silently stuck.
var codes = map[string]CodeInfo{
	"105": {Status: StatusSent, Kind: KindIntermediate, Meaning: "aanleverproces gestart"},
	"100": {Status: StatusReceiptConfirmed, Kind: KindIntermediate, Meaning: "aanleveren gelukt"},
	"110": {Status: StatusInProgress, Kind: KindIntermediate, Meaning: "aanleverproces wordt aangeboden"},
	"200": {Status: StatusInProgress, Kind: KindIntermediate, Meaning: "authenticatie gelukt"},
	"210": {Status: StatusFailed, Kind: KindFinalError, Meaning: "authenticatie niet gelukt",
		Advice: "check the client certificate (valid, not expired, PKIoverheid) and whether Digipoort knows it; " +
			"then restore the message to resend it", NeedsAction: true},
	"220": {Status: StatusFailed, Kind: KindFinalError, Meaning: "fout bij authenticatie (betekenis niet gepubliceerd)",
		Advice: "ask Logius what status 220 means for this kenmerk; restore the message to resend it once solved", NeedsAction: true},
	"230": {Status: StatusInProgress, Kind: KindWarning, Meaning: "technisch probleem bij de AuSP"},
	"301": {Status: StatusInProgress, Kind: KindIntermediate, Meaning: "validatie gelukt"},
	"311": {Status: StatusRejected, Kind: KindFinalError, Meaning: "validatie niet gelukt",
		Advice: "the declaration does not pass Digipoort's validation (see the details): correct it in the environment and queue a new version", NeedsAction: true},
	"321": {Status: StatusInProgress, Kind: KindWarning, Meaning: "technische problemen bij validatie"},
	"405": {Status: StatusInProgress, Kind: KindIntermediate, Meaning: "afleveren naar uitvragende partij bezig"},
	"400": {Status: StatusInProgress, Kind: KindIntermediate, Meaning: "afleveren uitvragende partij gelukt"},
	"410": {Status: StatusFailed, Kind: KindFinalError, Meaning: "afleveren uitvragende partij niet gelukt",
		Advice: "Digipoort could not hand the declaration to the authority: restore the message to resend it", NeedsAction: true},
	"420": {Status: StatusInProgress, Kind: KindWarning, Meaning: "technisch probleem afleveren; Digipoort probeert het tot 72 uur opnieuw"},
	"500": {Status: StatusAccepted, Kind: KindFinalSuccess, Meaning: "validatie bij de uitvragende partij gelukt"},
	"510": {Status: StatusRejected, Kind: KindFinalError, Meaning: "afgekeurd door de uitvragende partij",
		Advice: "the authority rejected the declaration: read its reply, correct the declaration and queue a new version", NeedsAction: true},
	"710": {Status: StatusFailed, Kind: KindFinalError, Meaning: "fout (betekenis niet gepubliceerd)",
		Advice: "ask Logius what status 710 means for this kenmerk; restore the message to resend it once solved", NeedsAction: true},
	"720": {Status: StatusInProgress, Kind: KindWarning, Meaning: "waarschuwing (betekenis niet gepubliceerd)"},
}

// KnownCodes lists every Digipoort status code Koerier interprets.
func KnownCodes() []string {
	out := make([]string, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// InterpretCode maps a Digipoort status code to a Koerier status. An unknown code
// neither panics nor ends the process: the message stays in progress and needs an
// operator, because guessing final success or failure could file twice or not at all.
func InterpretCode(code string) CodeInfo {
	code = strings.TrimSpace(code)
	if info, ok := codes[code]; ok {
		info.Code = code
		return info
	}
	advice := "Digipoort sent status code " + quoteCode(code) +
		" that Koerier does not know: look the kenmerk up with `starter digipoort status` and decide by hand"
	return CodeInfo{
		Code:        code,
		Status:      StatusInProgress,
		Kind:        KindUnknown,
		Meaning:     "onbekende statuscode",
		Advice:      advice,
		NeedsAction: true,
	}
}

func quoteCode(code string) string {
	if code == "" {
		return "(empty)"
	}
	return `"` + code + `"`
}

// DeriveStatus is the status a set of Digipoort codes leads to: the highest of their
// statuses, whatever order they came in. A delivery without any code yet is sent.
func DeriveStatus(codes []string) Status {
	best := StatusSent
	for _, c := range codes {
		if s := InterpretCode(c).Status; Higher(s, best) {
			best = s
		}
	}
	return best
}
