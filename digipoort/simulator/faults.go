package simulator

import (
	"errors"
	"fmt"

	"koerier/digipoort/internal/wire"
)

// The refusals of the simulator: SOAP 1.1 faults, unsigned, HTTP 500, shaped like the
// captured Digipoort faults (faultstring "Algemene fout", faultactor
// "Verantwoordingsplichtige", a detail element aanleverFault / statusinformatieFault /
// ophaalFault holding foutcode and foutbeschrijving). The foutcode is the service's
// prefix (wire.Service.FaultCode: ALS, STS, OPS) and a number:
//
//   - x100 "voldoet niet aan de koppelvlakspecificaties": every request that breaks
//     the interface: not the XSD's structure, a wrong SOAPAction or WS-Addressing
//     header, an invalid or foreign WS-Security signature, a header the WSDL does not
//     allow, a missing autorisatieAdres, an unknown operation; and the AanleverFault
//     and StatusInformatieFault scenarios. Confirmed: ALS100 and STS100 with exactly
//     this text are captured from Logius' conformance environment (fixtures
//     fault-deliver-response.xml, fault-newstatus-response.xml); Logius' metrokaart
//     lists ALS100 among the codes of a failed delivery. The OPS prefix of the
//     ophaalservice is not confirmed.
//   - x400, faultcode soapenv:Server: a technical problem at Digipoort, transient
//     (overbelast/zwaarbelast, injected overload, a failure inside the simulator).
//     Confirmed for ALS400 (Logius' metrokaart: "Wanneer er een technische fout
//     optreedt, krijgt het bericht de foutcode ALS400"); STS400 and OPS400 follow the
//     same pattern, unconfirmed.
//   - a header with soapenv:mustUnderstand="1" that is not WS-Addressing or
//     WS-Security gets faultcode soapenv:MustUnderstand (SOAP 1.1 §4.4.1 requires that
//     code) with the x100 detail; what Digipoort itself answers is not known.
//
// Logius' metrokaart also lists ALS110, ALS120, ALS130, ALS140, ALS150, ALS160 and
// ALS170 as codes of a failed delivery, but no source found says which refusal each
// one is; rather than guess, the simulator does not use them (a client treats every
// ALS1xx as final anyway).

// specText opens every x100 foutbeschrijving, as in the captured faults.
const specText = "Het verzoek voldoet niet aan de koppelvlakspecificaties en kan hierdoor niet door Digipoort worden verwerkt.\n\n" +
	"De volgende fout is opgetreden: \n\n"

// soapFault is an answer the simulator gives as an (unsigned) SOAP fault.
type soapFault struct {
	code        string // SOAP 1.1 faultcode without prefix: "Client", "Server", "MustUnderstand"
	foutcode    string
	beschrijven string
}

func (f *soapFault) Error() string { return f.foutcode + ": " + f.beschrijven }

// specFault is the x100 refusal with the problem named after specText.
func specFault(svc wire.Service, format string, args ...any) *soapFault {
	return &soapFault{code: "Client", foutcode: svc.FaultCode + "100", beschrijven: specText + fmt.Sprintf(format, args...) + "\n"}
}

// scenarioFault is the x100 refusal of the AanleverFault and StatusInformatieFault
// scenarios: the captured conformance faults name no problem after specText.
func scenarioFault(svc wire.Service) *soapFault {
	return &soapFault{code: "Client", foutcode: svc.FaultCode + "100", beschrijven: specText}
}

// mustUnderstandFault refuses a header that must be understood but is not allowed.
func mustUnderstandFault(svc wire.Service, header string) *soapFault {
	f := specFault(svc, "De header %s moet worden begrepen (mustUnderstand), maar de WSDL staat alleen WS-Addressing en WS-Security toe.", header)
	f.code = "MustUnderstand"
	return f
}

// overloadFault is the transient x400 refusal of an overloaded Digipoort.
func overloadFault(svc wire.Service, word string) *soapFault {
	return &soapFault{code: "Server", foutcode: svc.FaultCode + "400",
		beschrijven: "Digipoort is op dit moment " + word + ". Probeer het later opnieuw."}
}

// technicalFault is the transient x400 refusal of a failure inside the simulator.
func technicalFault(svc wire.Service, err error) *soapFault {
	return &soapFault{code: "Server", foutcode: svc.FaultCode + "400", beschrijven: "Technische fout in de simulator: " + err.Error()}
}

// schemaFault turns a wire.SchemaError into the x100 refusal naming the element.
func schemaFault(svc wire.Service, err error) *soapFault {
	var se *wire.SchemaError
	if !errors.As(err, &se) {
		return technicalFault(svc, err)
	}
	switch se.Problem {
	case wire.ProblemNamespace:
		return specFault(svc, "Element %s staat niet in de namespace %s (%s).", se.Path, wire.NS, se.Detail)
	case wire.ProblemUnknown:
		return specFault(svc, "Element of attribuut in %s is niet toegestaan (%s).", se.Path, se.Detail)
	case wire.ProblemOrder:
		return specFault(svc, "Element %s staat op de verkeerde plaats (%s).", se.Path, se.Detail)
	case wire.ProblemMissing:
		if se.Before != "" {
			return specFault(svc, "Element %s ontbreekt of staat op de verkeerde plaats: het hoort vóór %s.", se.Path, se.Before)
		}
		return specFault(svc, "Element %s ontbreekt.", se.Path)
	case wire.ProblemTooMany:
		return specFault(svc, "Element %s komt te vaak voor (%s).", se.Path, se.Detail)
	case wire.ProblemTooLong:
		return specFault(svc, "Element %s is te lang (%s).", se.Path, se.Detail)
	case wire.ProblemInvalid:
		return specFault(svc, "Element %s heeft een ongeldige waarde (%s).", se.Path, se.Detail)
	case wire.ProblemText:
		return specFault(svc, "Element %s bevat inhoud die het XSD daar niet toestaat (%s).", se.Path, se.Detail)
	}
	return specFault(svc, "De SOAP Body bevat geen geldig verzoek: %s.", se.Detail)
}
