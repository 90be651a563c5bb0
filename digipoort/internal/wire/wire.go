// Package wire holds the XML payloads of Digipoort koppelvlak 1.2 (the elements of
// digipoort-koppelvlak-1.2.xsd that WUS requests and responses carry in the SOAP
// Body), the service paths and the SOAP/WS-Addressing action URIs. It is shared by the
// client and the simulator so that both speak exactly the same shapes; element order
// follows the XSD sequences.
package wire

import (
	"encoding/xml"
	"time"
)

// NS is the namespace of every payload element.
const NS = "http://logius.nl/digipoort/koppelvlakservices/1.2/"

// Service identifies one of the three WUS services.
type Service struct {
	Path      string // appended to the base URL
	ActionNS  string // prefix of the SOAPAction / wsa:Action URIs
	FaultElem string // local name of the fault detail element
	FaultCode string // prefix of this service's fault codes (ALS, STS, OPS)
}

var (
	Aanlever = Service{
		Path:      "/wus/2.0/aanleverservice/1.2",
		ActionNS:  "http://logius.nl/digipoort/wus/2.0/aanleverservice/1.2/AanleverService/",
		FaultElem: "aanleverFault",
		FaultCode: "ALS",
	}
	Statusinformatie = Service{
		Path:      "/wus/2.0/statusinformatieservice/1.2",
		ActionNS:  "http://logius.nl/digipoort/wus/2.0/statusinformatieservice/1.2/StatusinformatieService/",
		FaultElem: "statusinformatieFault",
		FaultCode: "STS",
	}
	Ophaal = Service{
		Path:      "/wus/2.0/ophaalservice/1.2",
		ActionNS:  "http://logius.nl/digipoort/wus/2.0/ophaalservice/1.2/OphaalService/",
		FaultElem: "ophaalFault",
		// Digipoort's published fault codes cover ALS and STS; the ophaal prefix is not
		// confirmed. Classification does not depend on it.
		FaultCode: "OPS",
	}
)

// Operation names (the WSDL operation, also the SOAPAction suffix before "Request").
const (
	OpAanleveren                = "aanleveren"
	OpGetStatussenProces        = "getStatussenProces"
	OpGetNieuweStatussenProces  = "getNieuweStatussenProces"
	OpGetNieuweStatussen        = "getNieuweStatussen"
	OpGetBerichtsoorten         = "getBerichtsoorten"
	OpGetProcessen              = "getProcessen"
	OpGetBerichten              = "getBerichten"
	OpGetNieuweBerichten        = "getNieuweBerichten"
	OpGetBerichtenLijst         = "getBerichtenLijst"
	OpGetNieuweBerichtenLijst   = "getNieuweBerichtenLijst"
	OpGetBerichtenKenmerk       = "getBerichtenKenmerk"
	OpGetNieuweBerichtenKenmerk = "getNieuweBerichtenKenmerk"
)

// ServiceOf returns the service an operation belongs to.
func ServiceOf(op string) (Service, bool) {
	switch op {
	case OpAanleveren:
		return Aanlever, true
	case OpGetStatussenProces, OpGetNieuweStatussenProces, OpGetNieuweStatussen, OpGetBerichtsoorten, OpGetProcessen:
		return Statusinformatie, true
	case OpGetBerichten, OpGetNieuweBerichten, OpGetBerichtenLijst, OpGetNieuweBerichtenLijst, OpGetBerichtenKenmerk, OpGetNieuweBerichtenKenmerk:
		return Ophaal, true
	}
	return Service{}, false
}

// RequestAction is the SOAPAction header and wsa:Action of a request.
func RequestAction(s Service, op string) string { return s.ActionNS + op + "Request" }

// ResponseAction is the wsa:Action of a response.
func ResponseAction(s Service, op string) string { return s.ActionNS + op + "Response" }

// FaultAction is the wsa:Action of a fault.
func FaultAction(s Service, op string) string { return s.ActionNS + op + "/Fault/" }

// Identiteit is an identity (identiteitType): nummer (at most 35 characters) and its
// type (at most 20: Fi, BTW, LHnr, kvk, OIN), both required.
type Identiteit struct {
	Nummer string `xml:"nummer" xsd:"max=35"`
	Type   string `xml:"type" xsd:"max=20"`
}

// BerichtInhoud is berichtInhoudType; Inhoud is base64 text (encoding/xml would
// write a []byte as raw text).
type BerichtInhoud struct {
	MimeType     string `xml:"mimeType" xsd:"max=255"`
	Bestandsnaam string `xml:"bestandsnaam" xsd:"max=80"`
	Inhoud       string `xml:"inhoud" xsd:"base64Binary,max=20971520"`
}

// Fout is the foutType of a fault detail and of statusFoutcode: foutcode (at most 20
// characters, e.g. ALS100) and foutbeschrijving, both required.
type Fout struct {
	Foutcode         string `xml:"foutcode" xsd:"max=20"`
	Foutbeschrijving string `xml:"foutbeschrijving" xsd:"max=1048576"`
}

// Time formats xsd:dateTime the way Digipoort does (UTC, milliseconds).
type Time struct{ time.Time }

func (t Time) MarshalText() ([]byte, error) {
	return []byte(t.UTC().Format("2006-01-02T15:04:05.000Z")), nil
}

func (t *Time) UnmarshalText(b []byte) error {
	v, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// ParseTime parses an xsd:dateTime; one without zone is taken as UTC.
func ParseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if v, err := time.Parse(layout, s); err == nil {
			return v, nil
		}
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return time.Time{}, err
}

// TimePtr returns nil for the zero time, so that optional elements are omitted.
func TimePtr(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	return &Time{t}
}

// AanleverRequest is the body of aanleveren. Only berichtsoort, the belanghebbende, its
// rol and berichtInhoud are required; the optional ones (minOccurs 0) carry omitempty
// so that an unset field is left out rather than sent empty.
//
// The xsd tags of every request type carry what encoding/xml cannot say (the maximum
// length, base64Binary, anyURI); with the xml tags they make RequestSchema, which
// schema_test.go compares with Logius' XSD element by element.
type AanleverRequest struct {
	XMLName                  xml.Name      `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ aanleverRequest"`
	Kenmerk                  string        `xml:"kenmerk,omitempty" xsd:"max=40"`
	Berichtsoort             string        `xml:"berichtsoort" xsd:"max=80"`
	Aanleverkenmerk          string        `xml:"aanleverkenmerk,omitempty" xsd:"max=40"`
	EerderAanleverkenmerk    string        `xml:"eerderAanleverkenmerk,omitempty" xsd:"max=40"`
	IdentiteitBelanghebbende Identiteit    `xml:"identiteitBelanghebbende"`
	RolBelanghebbende        string        `xml:"rolBelanghebbende" xsd:"max=40"`
	IdentiteitOntvanger      *Identiteit   `xml:"identiteitOntvanger,omitempty"`
	RolOntvanger             string        `xml:"rolOntvanger,omitempty" xsd:"max=40"`
	BerichtInhoud            BerichtInhoud `xml:"berichtInhoud"`
	BerichtBijlagen          *Bijlagen     `xml:"berichtBijlagen,omitempty"`
	AutorisatieAdres         string        `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
}

// Bijlagen is berichtBijlagenType: one or more attachments to the business document
// (whether a process takes them is up to that process).
type Bijlagen struct {
	Bijlage []BerichtInhoud `xml:"bijlage"`
}

// AanleverResponse answers aanleveren. kenmerk (the process every later status and
// reply carries) and tijdstempelAangeleverd are always there; the status elements are
// optional, and a statusFoutcode among them means the delivery failed.
type AanleverResponse struct {
	XMLName                  xml.Name    `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ aanleverResponse"`
	Kenmerk                  string      `xml:"kenmerk"`
	Berichtsoort             string      `xml:"berichtsoort"`
	Aanleverkenmerk          string      `xml:"aanleverkenmerk,omitempty"`
	EerderAanleverkenmerk    string      `xml:"eerderAanleverkenmerk,omitempty"`
	TijdstempelAangeleverd   Time        `xml:"tijdstempelAangeleverd"`
	IdentiteitBelanghebbende Identiteit  `xml:"identiteitBelanghebbende"`
	RolBelanghebbende        string      `xml:"rolBelanghebbende"`
	IdentiteitOntvanger      *Identiteit `xml:"identiteitOntvanger,omitempty"`
	RolOntvanger             string      `xml:"rolOntvanger,omitempty"`
	AutorisatieAdres         string      `xml:"autorisatieAdres,omitempty"`
	Statuscode               string      `xml:"statuscode,omitempty"`
	TijdstempelStatus        *Time       `xml:"tijdstempelStatus,omitempty"`
	Statusomschrijving       string      `xml:"statusomschrijving,omitempty"`
	StatusFoutcode           *Fout       `xml:"statusFoutcode,omitempty"`
	Statusdetails            string      `xml:"statusdetails,omitempty"`
}

// StatusWindowRequest is the shape of getStatussenProcesRequest and
// getNieuweStatussenProcesRequest: XMLName carries no name in its tag, so that the
// value set per operation (Name(op+"Request")) is the one marshalled, and decoding
// accepts either.
type StatusWindowRequest struct {
	XMLName          xml.Name
	Kenmerk          string `xml:"kenmerk" xsd:"max=40"`
	AutorisatieAdres string `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
	TijdstempelVanaf *Time  `xml:"tijdstempelVanaf,omitempty"`
	TijdstempelTot   *Time  `xml:"tijdstempelTot,omitempty"`
}

// GetNieuweStatussenRequest asks for the statuses not fetched before of every process
// of one berichtsoort and belanghebbende (both required).
type GetNieuweStatussenRequest struct {
	XMLName                  xml.Name   `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getNieuweStatussenRequest"`
	Berichtsoort             string     `xml:"berichtsoort" xsd:"max=80"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	AutorisatieAdres         string     `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
	TijdstempelVanaf         *Time      `xml:"tijdstempelVanaf,omitempty"`
	TijdstempelTot           *Time      `xml:"tijdstempelTot,omitempty"`
}

// StatusResultaat is one status of a process. statuscode, tijdstempelStatus and
// statusomschrijving (at most 80 characters) are required; statusFoutcode and
// statusdetails are optional.
type StatusResultaat struct {
	Kenmerk                  string     `xml:"kenmerk"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	Statuscode               string     `xml:"statuscode"`
	TijdstempelStatus        Time       `xml:"tijdstempelStatus"`
	Statusomschrijving       string     `xml:"statusomschrijving"`
	StatusFoutcode           *Fout      `xml:"statusFoutcode,omitempty"`
	Statusdetails            string     `xml:"statusdetails,omitempty"`
}

// StatusResponse is getStatussenProcesResponse / getNieuweStatussenProcesResponse:
// one wrapper element (…Return) holding StatusResultaat elements.
type StatusResponse struct {
	XMLName xml.Name
	Return  struct {
		XMLName   xml.Name
		Resultaat []StatusResultaat `xml:"StatusResultaat"`
	} `xml:",any"`
}

// GetBerichtsoortenRequest asks which berichtsoorten Digipoort knows for a
// belanghebbende (required).
type GetBerichtsoortenRequest struct {
	XMLName                  xml.Name   `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getBerichtsoortenRequest"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	AutorisatieAdres         string     `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
}

// GetBerichtsoortenResponse holds zero or more bare berichtsoort elements in
// getBerichtsoortenReturn.
type GetBerichtsoortenResponse struct {
	XMLName xml.Name `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getBerichtsoortenResponse"`
	Return  struct {
		Berichtsoort []string `xml:"berichtsoort"`
	} `xml:"getBerichtsoortenReturn"`
}

// GetProcessenRequest lists the processes of one berichtsoort and belanghebbende;
// both are required, berichtsoort first.
type GetProcessenRequest struct {
	XMLName                  xml.Name   `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getProcessenRequest"`
	Berichtsoort             string     `xml:"berichtsoort" xsd:"max=80"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	AutorisatieAdres         string     `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
}

// ProcesResultaat is one process. The XSD gives it no aanleverkenmerk, so a delivery
// whose answer was lost cannot be found by Koerier's own reference alone (see
// Client.FindDelivery).
type ProcesResultaat struct {
	Kenmerk                  string      `xml:"kenmerk"`
	Berichtsoort             string      `xml:"berichtsoort"`
	IdentiteitBelanghebbende Identiteit  `xml:"identiteitBelanghebbende"`
	IdentiteitOntvanger      *Identiteit `xml:"identiteitOntvanger,omitempty"`
}

// GetProcessenResponse holds zero or more ProcesResultaat elements in
// getProcessenReturn.
type GetProcessenResponse struct {
	XMLName xml.Name `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getProcessenResponse"`
	Return  struct {
		Resultaat []ProcesResultaat `xml:"ProcesResultaat"`
	} `xml:"getProcessenReturn"`
}

// GetBerichtenLijstRequest is getBerichtenLijstRequest and
// getNieuweBerichtenLijstRequest (only what this certificate did not fetch before);
// like StatusWindowRequest, XMLName is set per operation (Name(op+"Request")). Every
// element is optional, and the tijdstempelVanaf/Tot window is how a receive looks back.
type GetBerichtenLijstRequest struct {
	XMLName          xml.Name
	Berichtsoort     string `xml:"berichtsoort,omitempty" xsd:"max=80"`
	AutorisatieAdres string `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
	TijdstempelVanaf *Time  `xml:"tijdstempelVanaf,omitempty"`
	TijdstempelTot   *Time  `xml:"tijdstempelTot,omitempty"`
}

// BerichtLijstResultaat names one document ready for pickup (berichtsoort,
// belanghebbende, process kenmerk) without its content, which getBerichtenKenmerk
// fetches.
type BerichtLijstResultaat struct {
	Berichtsoort             string     `xml:"berichtsoort"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	Kenmerk                  string     `xml:"kenmerk"`
}

// GetBerichtenLijstResponse holds zero or more BerichtLijstResultaat elements in
// getBerichtenLijstReturn.
type GetBerichtenLijstResponse struct {
	XMLName xml.Name `xml:"http://logius.nl/digipoort/koppelvlakservices/1.2/ getBerichtenLijstResponse"`
	Return  struct {
		Resultaat []BerichtLijstResultaat `xml:"BerichtLijstResultaat"`
	} `xml:"getBerichtenLijstReturn"`
}

// GetBerichtenKenmerkRequest is getBerichtenKenmerkRequest and its Nieuwe variant
// (XMLName set per operation): the documents of one process; kenmerk is required, the
// time window optional.
type GetBerichtenKenmerkRequest struct {
	XMLName          xml.Name
	Kenmerk          string `xml:"kenmerk" xsd:"max=40"`
	AutorisatieAdres string `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
	TijdstempelVanaf *Time  `xml:"tijdstempelVanaf,omitempty"`
	TijdstempelTot   *Time  `xml:"tijdstempelTot,omitempty"`
}

// GetBerichtenRequest is getBerichtenRequest and its Nieuwe variant (XMLName set per
// operation): the documents of one belanghebbende (required), optionally of one
// berichtsoort and within a time window.
type GetBerichtenRequest struct {
	XMLName                  xml.Name
	Berichtsoort             string     `xml:"berichtsoort,omitempty" xsd:"max=80"`
	IdentiteitBelanghebbende Identiteit `xml:"identiteitBelanghebbende"`
	AutorisatieAdres         string     `xml:"autorisatieAdres,omitempty" xsd:"anyURI,max=255"`
	TijdstempelVanaf         *Time      `xml:"tijdstempelVanaf,omitempty"`
	TijdstempelTot           *Time      `xml:"tijdstempelTot,omitempty"`
}

// BerichtResultaat is one picked-up document. aanleverkenmerk is optional and may be
// missing, so replies are linked by kenmerk first. berichtBijlagen,
// constateringenLijst and additioneleElementenLijst are not read (encoding/xml skips
// them).
type BerichtResultaat struct {
	Kenmerk                  string        `xml:"kenmerk"`
	Berichtsoort             string        `xml:"berichtsoort"`
	Berichtkenmerk           string        `xml:"berichtkenmerk"`
	Aanleverkenmerk          string        `xml:"aanleverkenmerk,omitempty"`
	EerderAanleverkenmerk    string        `xml:"eerderAanleverkenmerk,omitempty"`
	TijdstempelAangeleverd   Time          `xml:"tijdstempelAangeleverd"`
	IdentiteitBelanghebbende Identiteit    `xml:"identiteitBelanghebbende"`
	RolBelanghebbende        string        `xml:"rolBelanghebbende"`
	IdentiteitAanleveraar    string        `xml:"identiteitAanleveraar,omitempty"`
	IdentiteitOntvanger      *Identiteit   `xml:"identiteitOntvanger,omitempty"`
	RolOntvanger             string        `xml:"rolOntvanger,omitempty"`
	BerichtInhoud            BerichtInhoud `xml:"berichtInhoud"`
}

// BerichtenResponse is getBerichtenResponse / getBerichtenKenmerkResponse (and their
// Nieuwe variants): one …Return wrapper holding BerichtResultaat elements.
type BerichtenResponse struct {
	XMLName xml.Name
	Return  struct {
		XMLName   xml.Name
		Resultaat []BerichtResultaat `xml:"BerichtResultaat"`
	} `xml:",any"`
}

// Name returns the xml.Name of a payload element in NS.
func Name(local string) xml.Name { return xml.Name{Space: NS, Local: local} }
