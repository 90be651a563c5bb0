package simulator

import (
	"fmt"
	"sort"
	"strings"
)

// Scenario names a behaviour of the simulator for one delivery. Like Logius'
// conformance environment, the scenario is picked from the aanleverkenmerk: a
// case-insensitive match of the name or of the name as a prefix
// ("Foutuitvragendepartij-42"); the longest matching name wins. Any other
// aanleverkenmerk gets Happyflow, unless a scenario was set for it through SetScenario
// or the control API.
type Scenario string

const (
	// Happyflow: 105, 100, 110, 200, 301, 301, 405, 400, 500 (the sequence Logius'
	// conformance environment returns, 301 twice included) and a reply message for
	// pickup when it ends.
	Happyflow Scenario = "Happyflow"
	// AanleverFault: aanleveren answers with SOAP fault ALS100 (final); no process.
	AanleverFault Scenario = "AanleverFault"
	// Afleverfout: … 405, 410 with AFS400: Digipoort could not deliver to the
	// authority.
	Afleverfout Scenario = "Afleverfout"
	// Foutuitvragendepartij: the authority rejects the message: … 405, 400, 311 with
	// VAS500 and <msg> lines in statusdetails.
	Foutuitvragendepartij Scenario = "Foutuitvragendepartij"
	// Afkeuruitvragendepartij (the 510 variant, a name of this simulator): … 405,
	// 400, 510 with <msg> lines in statusdetails.
	Afkeuruitvragendepartij Scenario = "Afkeuruitvragendepartij"
	// TechnischProbleemAfleveren: … 405, 420 (technical problem delivering; Digipoort
	// retries), then recovery: 400, 500.
	TechnischProbleemAfleveren Scenario = "TechnischProbleemAfleveren"
	// MaximaalAantalAfleverpogingen: … 405, 420, 420 with AFS600: Digipoort gave up
	// after its delivery attempts.
	MaximaalAantalAfleverpogingen Scenario = "MaximaalAantalAfleverpogingen"
	// OverbelastAanleveren: the first Options.OverloadAttempts deliveries with this
	// aanleverkenmerk get an ALS400 "overbelast" fault (transient); later ones the
	// happy flow.
	OverbelastAanleveren Scenario = "OverbelastAanleveren"
	// ZwaarbelastAanleveren: deliveries with this aanleverkenmerk get an ALS400
	// "zwaarbelast" fault during Options.OverloadWindow after the first attempt; after
	// that the happy flow.
	ZwaarbelastAanleveren Scenario = "ZwaarbelastAanleveren"
	// StatusInformatieFault: the delivery succeeds (happy flow) but
	// getStatussenProces/getNieuweStatussenProces for its kenmerk answer with SOAP
	// fault STS100 (final).
	StatusInformatieFault Scenario = "StatusInformatieFault"
	// OverbelastStatusInformatie: the first Options.OverloadAttempts status requests
	// for the kenmerk get an STS400 "overbelast" fault (transient), then the happy flow.
	OverbelastStatusInformatie Scenario = "OverbelastStatusInformatie"
	// ZwaarbelastStatusInformatie: status requests for the kenmerk get an STS400
	// "zwaarbelast" fault during Options.OverloadWindow after the first one.
	ZwaarbelastStatusInformatie Scenario = "ZwaarbelastStatusInformatie"
)

// Scenarios lists every scenario.
func Scenarios() []Scenario {
	return []Scenario{Happyflow, AanleverFault, Afleverfout, Foutuitvragendepartij, Afkeuruitvragendepartij,
		TechnischProbleemAfleveren, MaximaalAantalAfleverpogingen, OverbelastAanleveren, ZwaarbelastAanleveren,
		StatusInformatieFault, OverbelastStatusInformatie, ZwaarbelastStatusInformatie}
}

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

// step is one status of a process.
type step struct {
	Code, Omschrijving         string
	Foutcode, Foutbeschrijving string
	Details                    string
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
		Foutcode: "VAS500", Foutbeschrijving: "Het bericht is inhoudelijk afgekeurd door de uitvragende partij.",
		Details: "<msg>Bedrag omzet hoog tarief (rubriek 1a) ontbreekt of is onjuist.</msg>\n" +
			"<msg>Het totaal te betalen bedrag sluit niet aan bij de rubrieken.</msg>"}
	st405 = step{Code: "405", Omschrijving: "Afleveren naar uitvragende partij bezig"}
	st400 = step{Code: "400", Omschrijving: "Afleveren uitvragende partij gelukt"}
	st410 = step{Code: "410", Omschrijving: "Afleveren uitvragende partij niet gelukt",
		Foutcode: "AFS400", Foutbeschrijving: "Het bericht kon niet worden afgeleverd bij de uitvragende partij."}
	st420 = step{Code: "420", Omschrijving: "Technisch probleem bij afleveren",
		Foutcode: "AFS500", Foutbeschrijving: "Technisch probleem bij de afleverservice; Digipoort probeert het opnieuw."}
	st420Final = step{Code: "420", Omschrijving: "Technisch probleem bij afleveren",
		Foutcode: "AFS600", Foutbeschrijving: "Het maximaal aantal afleverpogingen is bereikt."}
	st500 = step{Code: "500", Omschrijving: "Validatie bij de uitvragende partij gelukt"}
	st510 = step{Code: "510", Omschrijving: "Validatie bij de uitvragende partij niet gelukt",
		Details: "<msg>De aangifte is afgekeurd door de uitvragende partij.</msg>"}
)

// steps returns the status sequence of a scenario for a sender; an unknown client
// certificate ends in 210 whatever the scenario.
func steps(sc Scenario, knownClient bool) []step {
	if !knownClient {
		return []step{st105, st100, st110, st210}
	}
	pre := []step{st105, st100, st110, st200, st301}
	switch sc {
	case Afleverfout:
		return append(pre, st405, st410)
	case Foutuitvragendepartij:
		return append(pre, st405, st400, st311)
	case Afkeuruitvragendepartij:
		return append(pre, st405, st400, st510)
	case TechnischProbleemAfleveren:
		return append(pre, st405, st420, st400, st500)
	case MaximaalAantalAfleverpogingen:
		return append(pre, st405, st420, st420Final)
	}
	return append(pre, st301, st405, st400, st500)
}
