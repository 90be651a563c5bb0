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

// FoutcodeMaxDeliveryAttempts is the foutcode of Digipoort's last 420: it retried
// delivering to the authority for 72 hours and gave up ("maximaal aantal
// afleverpogingen bereikt"). The return never reached the authority.
const FoutcodeMaxDeliveryAttempts = "AFS600"

// gaveUp is what a 420 with AFS600 means. A 420 alone is a warning (Digipoort retries);
// with AFS600 nothing will follow it, so reading the code alone would leave the message
// in progress, unfiled, until the no-reply timeout — possibly past the filing deadline.
var gaveUp = CodeInfo{Status: StatusFailed, Kind: KindFinalError,
	Meaning: "technisch probleem afleveren; maximaal aantal afleverpogingen bereikt (AFS600)",
	Advice: "Digipoort gave up delivering the return to the authority after 72 hours of retries: it was NOT filed, and the filing " +
		"deadline may pass. Restore the message now to deliver it again (a new attempt); if the deadline is near or has passed, " +
		"tell the authority why the return is late",
	NeedsAction: true}

// KnownCodes lists every Digipoort status code Koerier interprets.
func KnownCodes() []string {
	out := make([]string, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// StatusCode is what decides the meaning of one Digipoort status: its code and the
// foutcode of its statusFoutcode (empty when it has none).
type StatusCode struct {
	Code     string
	Foutcode string
}

// InterpretStatus maps a Digipoort status (code and foutcode) to a Koerier status; it
// is the one reading of a status that the store, the activities and the command line
// use. An unknown code neither panics nor ends the process: the message stays in
// progress and needs an operator, because guessing final success or failure could
// file twice or not at all.
func InterpretStatus(code, foutcode string) CodeInfo {
	code = strings.TrimSpace(code)
	if code == "420" && strings.EqualFold(strings.TrimSpace(foutcode), FoutcodeMaxDeliveryAttempts) {
		info := gaveUp
		info.Code = code
		return info
	}
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

// InterpretCode is InterpretStatus of a status without a foutcode.
func InterpretCode(code string) CodeInfo { return InterpretStatus(code, "") }

func quoteCode(code string) string {
	if code == "" {
		return "(empty)"
	}
	return `"` + code + `"`
}

// DeriveStatus is the status a set of Digipoort statuses leads to: the highest of
// their statuses, whatever order they came in. A delivery without any status yet is
// sent.
func DeriveStatus(statuses []StatusCode) Status {
	best := StatusSent
	for _, c := range statuses {
		if s := InterpretStatus(c.Code, c.Foutcode).Status; Higher(s, best) {
			best = s
		}
	}
	return best
}
