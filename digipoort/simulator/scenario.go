package simulator

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Scenario names a behaviour of the simulator for one delivery. Like Logius'
// conformance environment, the scenario is picked from the aanleverkenmerk: a
// case-insensitive match of the name or of the name as a prefix
// ("Foutuitvragendepartij-42"); the longest matching name wins. Any other
// aanleverkenmerk gets Happyflow, unless a scenario was set for it through SetScenario
// or the control API.
//
// The names are those of Logius' conformance environment (LogiusScenarios), except
// the ones starting with "Koerier", which are this simulator's own (KoerierScenarios):
// behaviour the real Digipoort shows but the conformance environment offers no
// aanleverkenmerk for.
type Scenario string

// Logius' conformance scenarios. Their status sequences follow the conformance
// environment where it is known (the happy flow, captured from it) and Logius'
// published status flow (metrokaart, "Statussen en foutcodes Digipoort") for the rest:
// Digipoort first validates the message itself (301; 311 when that fails), only then
// delivers it to the authority (405, then 400, 410 or 420), and the authority's verdict
// comes last (500 accepted, 510 rejected).
const (
	// Happyflow: 105, 100, 110, 200, 301, 301, 405, 400, 500, the sequence Logius'
	// conformance environment returns (301 twice included), the 500 carrying the
	// Belastingdienst's acknowledgement (an XML Responsemessage, ResponseType
	// acknowledgement) in statusdetails, and a reply message for pickup when it ends.
	Happyflow Scenario = "Happyflow"
	// AanleverFault: aanleveren answers with SOAP fault ALS100 (final), shaped like
	// the captured conformance fault; no process.
	AanleverFault Scenario = "AanleverFault"
	// StatusInformatieFault: the delivery succeeds (happy flow) but
	// getStatussenProces/getNieuweStatussenProces for its kenmerk answer with SOAP
	// fault STS100 (final), shaped like the captured conformance fault.
	StatusInformatieFault Scenario = "StatusInformatieFault"
	// Afleverfout: … 405, 410 with AFS400: Digipoort could not deliver to the
	// authority (final).
	Afleverfout Scenario = "Afleverfout"
	// Foutuitvragendepartij: the authority rejects the message after it was delivered:
	// … 405, 400, 510, the authority's Responsemessage (ResponseType error) in
	// statusdetails.
	Foutuitvragendepartij Scenario = "Foutuitvragendepartij"
	// TechnischProbleemAfleveren: … 405, 420 (technical problem delivering; Digipoort
	// retries), then recovery: 400, 500.
	TechnischProbleemAfleveren Scenario = "TechnischProbleemAfleveren"
	// MaximaalAantalAfleverpogingen: … 405, 420, 420 with AFS600: Digipoort gave up
	// after retrying for 72 hours (final, failed).
	MaximaalAantalAfleverpogingen Scenario = "MaximaalAantalAfleverpogingen"
	// ZwaarbelastAanleveren: deliveries with this aanleverkenmerk get an ALS400
	// "zwaarbelast" fault during Options.OverloadWindow after the first attempt; after
	// that the happy flow.
	ZwaarbelastAanleveren Scenario = "ZwaarbelastAanleveren"
	// OverbelastAanleveren: the first Options.OverloadAttempts deliveries with this
	// aanleverkenmerk get an ALS400 "overbelast" fault (transient); later ones the
	// happy flow.
	OverbelastAanleveren Scenario = "OverbelastAanleveren"
	// ZwaarbelastStatusInformatie: status requests for the kenmerk get an STS400
	// "zwaarbelast" fault during Options.OverloadWindow after the first one.
	ZwaarbelastStatusInformatie Scenario = "ZwaarbelastStatusInformatie"
	// OverbelastStatusInformatie: the first Options.OverloadAttempts status requests
	// for the kenmerk get an STS400 "overbelast" fault (transient), then the happy flow.
	OverbelastStatusInformatie Scenario = "OverbelastStatusInformatie"
)

// Koerier's own scenarios (not in Logius' conformance environment).
const (
	// KoerierValidatieNietGelukt: Digipoort's own validation of the message fails:
	// 105, 100, 110, 200, 311 with VAS500 and <msg> lines in statusdetails; nothing is
	// delivered to the authority (no 405). Logius documents 311/VAS500 but offers no
	// conformance aanleverkenmerk for it.
	KoerierValidatieNietGelukt Scenario = "KoerierValidatieNietGelukt"
)

// LogiusScenarios lists the scenarios of Logius' conformance environment, in the order
// Logius lists them.
func LogiusScenarios() []Scenario {
	return []Scenario{Happyflow, AanleverFault, StatusInformatieFault, Afleverfout, Foutuitvragendepartij,
		TechnischProbleemAfleveren, MaximaalAantalAfleverpogingen, ZwaarbelastAanleveren, OverbelastAanleveren,
		ZwaarbelastStatusInformatie, OverbelastStatusInformatie}
}

// KoerierScenarios lists the simulator's own scenarios.
func KoerierScenarios() []Scenario { return []Scenario{KoerierValidatieNietGelukt} }

// Scenarios lists every scenario: Logius' and then Koerier's own.
func Scenarios() []Scenario { return append(LogiusScenarios(), KoerierScenarios()...) }

// IsLogius reports whether Logius' conformance environment has the scenario.
func (sc Scenario) IsLogius() bool { return slices.Contains(LogiusScenarios(), sc) }

// ParseScenario accepts a scenario name, case-insensitively.
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range Scenarios() {
		if strings.EqualFold(string(sc), strings.TrimSpace(s)) {
			return sc, nil
		}
	}
	names := make([]string, 0, len(Scenarios()))
	for _, sc := range Scenarios() {
		names = append(names, string(sc))
	}
	return "", fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(names, ", "))
}

// ScenarioFor returns the scenario the name rules pick for an aanleverkenmerk.
func ScenarioFor(aanleverkenmerk string) Scenario {
	ak := strings.ToLower(aanleverkenmerk)
	byLength := Scenarios()
	sort.SliceStable(byLength, func(i, j int) bool { return len(byLength[i]) > len(byLength[j]) })
	for _, sc := range byLength {
		if strings.HasPrefix(ak, strings.ToLower(string(sc))) {
			return sc
		}
	}
	return Happyflow
}

// Outcome is how a scenario ends for the sender.
type Outcome string

const (
	// OutcomeAccepted: the authority accepted the message (500).
	OutcomeAccepted Outcome = "accepted"
	// OutcomeRejected: the message was refused on its content, by Digipoort's
	// validation (311) or by the authority (510).
	OutcomeRejected Outcome = "rejected"
	// OutcomeFailed: Digipoort could not deliver the message (410, or 420 with
	// AFS600 after 72 hours of retries).
	OutcomeFailed Outcome = "failed"
	// OutcomeRefused: aanleveren answered with a final SOAP fault; there is no process.
	OutcomeRefused Outcome = "refused"
)

// Expectation is what a client should observe when it delivers one message with a
// scenario's aanleverkenmerk to the simulator (or to Logius' conformance environment,
// for the Logius scenarios), with a certificate Digipoort knows. A conformance run
// delivers one message per scenario and compares.
type Expectation struct {
	Scenario Scenario
	// Logius: the scenario exists in Logius' conformance environment.
	Logius bool
	// DeliverFault is the foutcode of the SOAP fault aanleveren answers with ("" =
	// none). DeliverFaultTransient: it passes; delivering again later succeeds.
	DeliverFault          string
	DeliverFaultTransient bool
	// StatusFault is the foutcode of the SOAP fault getStatussenProces answers with for
	// the delivery's kenmerk ("" = none); StatusFaultTransient: it passes.
	StatusFault          string
	StatusFaultTransient bool
	// Codes are the status codes of the process in order (nil when there is none),
	// FinalFoutcode the statusFoutcode of the last one.
	Codes         []string
	FinalFoutcode string
	// Outcome is how the delivery ends. With a final StatusFault the status service
	// never tells it, although the process runs (and ends) as Codes say.
	Outcome Outcome
}

// Final is the last status code ("" when there is no process).
func (e Expectation) Final() string {
	if len(e.Codes) == 0 {
		return ""
	}
	return e.Codes[len(e.Codes)-1]
}

// Expected returns what a scenario does; see Expectation.
func Expected(sc Scenario) Expectation {
	e := Expectation{Scenario: sc, Logius: sc.IsLogius()}
	flow := steps(sc, true)
	for _, st := range flow {
		e.Codes = append(e.Codes, st.Code)
	}
	last := flow[len(flow)-1]
	e.FinalFoutcode = last.Foutcode
	e.Outcome = outcomeOf(last)
	switch sc {
	case AanleverFault:
		e.DeliverFault, e.Codes, e.FinalFoutcode, e.Outcome = "ALS100", nil, "", OutcomeRefused
	case ZwaarbelastAanleveren, OverbelastAanleveren:
		e.DeliverFault, e.DeliverFaultTransient = "ALS400", true
	case StatusInformatieFault:
		e.StatusFault = "STS100"
	case ZwaarbelastStatusInformatie, OverbelastStatusInformatie:
		e.StatusFault, e.StatusFaultTransient = "STS400", true
	}
	return e
}

// Expectations returns Expected for every scenario, in the order of Scenarios.
func Expectations() []Expectation {
	out := make([]Expectation, 0, len(Scenarios()))
	for _, sc := range Scenarios() {
		out = append(out, Expected(sc))
	}
	return out
}

func outcomeOf(last step) Outcome {
	switch last.Code {
	case "500":
		return OutcomeAccepted
	case "311", "510":
		return OutcomeRejected
	}
	return OutcomeFailed
}

// step is one status of a process. The statusomschrijvingen are those of Logius'
// published status list; the captured conformance statuses end them with a full stop
// ("Aanleverproces gestart."), which the simulator leaves out: Koerier shows the text,
// never matches on it.
type step struct {
	Code, Omschrijving         string
	Foutcode, Foutbeschrijving string
	Details                    string
	// Response: the authority's Responsemessage goes in statusdetails (see
	// process.responsemessage), of this ResponseType.
	Response string
}

var (
	st105 = step{Code: "105", Omschrijving: "Aanleverproces gestart"}
	st100 = step{Code: "100", Omschrijving: "Aanleveren gelukt"}
	st110 = step{Code: "110", Omschrijving: "Aanleverproces wordt aangeboden"}
	st200 = step{Code: "200", Omschrijving: "Authenticatie gelukt"}
	st210 = step{Code: "210", Omschrijving: "Authenticatie niet gelukt",
		Details: "Het certificaat waarmee is aangeleverd is niet bekend bij Digipoort (simulator)."}
	st301 = step{Code: "301", Omschrijving: "Validatie gelukt"}
	st311 = step{Code: "311", Omschrijving: "Validatie niet gelukt",
		Foutcode: "VAS500", Foutbeschrijving: "Het bericht voldoet niet aan de validatieregels van Digipoort.",
		Details: "<msg>Bedrag omzet hoog tarief (rubriek 1a) ontbreekt of is onjuist.</msg>\n" +
			"<msg>Het totaal te betalen bedrag sluit niet aan bij de rubrieken.</msg>"}
	st405 = step{Code: "405", Omschrijving: "Afleveren naar uitvragende partij bezig"}
	st400 = step{Code: "400", Omschrijving: "Afleveren uitvragende partij gelukt"}
	st410 = step{Code: "410", Omschrijving: "Afleveren uitvragende partij niet gelukt",
		Foutcode: "AFS400", Foutbeschrijving: "Het bericht kon niet worden afgeleverd bij de uitvragende partij."}
	// The foutcode of a 420 that Digipoort still retries is not published; AFS500 is
	// the simulator's.
	st420 = step{Code: "420", Omschrijving: "Technisch probleem bij afleveren",
		Foutcode: "AFS500", Foutbeschrijving: "Technisch probleem bij de afleverservice; Digipoort probeert het opnieuw."}
	st420Final = step{Code: "420", Omschrijving: "Technisch probleem bij afleveren",
		Foutcode: "AFS600", Foutbeschrijving: "Het maximaal aantal afleverpogingen is bereikt."}
	st500 = step{Code: "500", Omschrijving: "Validatie bij de uitvragende partij gelukt", Response: responseAcknowledgement}
	st510 = step{Code: "510", Omschrijving: "Validatie bij de uitvragende partij niet gelukt", Response: responseError}
)

// steps returns the status sequence of a scenario for a sender; an unknown client
// certificate ends in 210 whatever the scenario.
func steps(sc Scenario, knownClient bool) []step {
	if !knownClient {
		return []step{st105, st100, st110, st210}
	}
	received := []step{st105, st100, st110, st200}
	validated := append(slices.Clip(received), st301, st301, st405)
	switch sc {
	case KoerierValidatieNietGelukt:
		return append(received, st311)
	case Afleverfout:
		return append(validated, st410)
	case Foutuitvragendepartij:
		return append(validated, st400, st510)
	case TechnischProbleemAfleveren:
		return append(validated, st420, st400, st500)
	case MaximaalAantalAfleverpogingen:
		return append(validated, st420, st420Final)
	}
	return append(validated, st400, st500)
}

// ResponseTypes of the authority's Responsemessage in statusdetails.
const (
	responseAcknowledgement = "acknowledgement"
	responseError           = "error"
)

// amsterdam is the Belastingdienst's clock; its Responsemessage carries local time
// with offset.
var amsterdam = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Amsterdam"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// responsemessage is the Belastingdienst's answer that the real Digipoort puts in the
// statusdetails of 500 (and, presumably, 510): an XML document as text. The shape is
// that of a status 500 captured from Logius' conformance environment (published with
// the open-source wus.core client, testdata/valid-newstatus-response.xml):
//
//	<Responsemessage version="2006.1">
//	<Identification>
//	<MessageId>BERICHTKENMERK-VAN-AANLEVERING</MessageId>
//	<RefersToMessageId>PROCESKENMERK-VAN-AANLEVERING</RefersToMessageId>
//	<MessageIdBd>BERICHTID-VANUIT-BD</MessageIdBd>
//	<DatumTijdOntvangst>2009-08-19T19:44:13+02:00</DatumTijdOntvangst>
//	<ResponseType>acknowledgement</ResponseType>
//	</Identification>
//	<Specification>
//	<Class>A</Class>
//	<Code>0001</Code>
//	<Description>Status: Verwerkbaar</Description>
//	</Specification>
//	</Responsemessage>
//
// The simulator fills in what the placeholders name: the wsa:MessageID of the
// aanleveren request (the berichtkenmerk), the process kenmerk, an id of its own for
// the Belastingdienst's message and the time of receipt in Amsterdam time. Clients
// such as Microsoft's Business Central store statusdetails that start with "<" as a
// document. The error variant for 510 (ResponseType error, Class F) is the simulator's
// assumption: no capture of it was found.
func (p *process) responsemessage(responseType string, received time.Time) string {
	class, code, description := "A", "0001", "Status: Verwerkbaar"
	if responseType == responseError {
		class, code, description = "F", "0002", "Status: Niet verwerkbaar. De aangifte is afgekeurd door de Belastingdienst."
	}
	var b strings.Builder
	b.WriteString(`<Responsemessage version="2006.1">` + "\n<Identification>\n")
	fmt.Fprintf(&b, "<MessageId>%s</MessageId>\n", xmlAttr(p.messageID))
	fmt.Fprintf(&b, "<RefersToMessageId>%s</RefersToMessageId>\n", xmlAttr(p.kenmerk))
	fmt.Fprintf(&b, "<MessageIdBd>%s</MessageIdBd>\n", xmlAttr(p.bdMessageID))
	fmt.Fprintf(&b, "<DatumTijdOntvangst>%s</DatumTijdOntvangst>\n", received.In(amsterdam).Format("2006-01-02T15:04:05-07:00"))
	fmt.Fprintf(&b, "<ResponseType>%s</ResponseType>\n</Identification>\n<Specification>\n", responseType)
	fmt.Fprintf(&b, "<Class>%s</Class>\n<Code>%s</Code>\n<Description>%s</Description>\n", class, code, xmlAttr(description))
	b.WriteString("</Specification>\n</Responsemessage>")
	return b.String()
}
