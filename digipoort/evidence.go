package digipoort

import (
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

// Evidence is what a stored signed Digipoort response proves: who signed it and when,
// and what it says about a delivery. Only a verified response says anything: the
// fields after Expires are filled only when Verified is true.
type Evidence struct {
	// Verified is true when the signature, every reference and the signer check out
	// against the trusted certificates (wsse.VerifyStored); the timestamp's age is not
	// held against it, since a proof is read long after it was received.
	Verified bool
	// Reason says why a response is not verified.
	Reason string
	// Signer is the certificate that signed the response.
	Signer Signer
	// Created and Expires are the signed WS-Security Timestamp: Created is when
	// Digipoort signed the response.
	Created, Expires time.Time

	// Action, MessageID and RelatesTo are the signed WS-Addressing headers; RelatesTo
	// names the request the response answers.
	Action, MessageID, RelatesTo string
	// Operation is the operation the response answers ("aanleveren",
	// "getStatussenProces", "getNieuweStatussenProces", …), from its payload element.
	Operation string
	// Kenmerk is Digipoort's process kenmerk: of the delivery (aanleverResponse) or of
	// the statuses.
	Kenmerk string
	// Aanleverkenmerk, Berichtsoort, Belanghebbende and Aangeleverd are an
	// aanleverResponse's: Aangeleverd (tijdstempelAangeleverd) is when Digipoort
	// received the delivery, the time a filing deadline is held against.
	Aanleverkenmerk string
	Berichtsoort    string
	Belanghebbende  Identity
	Aangeleverd     time.Time
	// Statuses are the statuses in the response, in its order: every StatusResultaat
	// of a status response, or the optional status of an aanleverResponse.
	Statuses []Status
}

// Signer describes a signing certificate.
type Signer struct {
	Subject, Issuer, Serial string
	NotBefore, NotAfter     time.Time
}

// ReadEvidence verifies a stored response exactly as received, offline, against the
// trusted signing certificates (wsse.VerifyStored) and decodes what it says:
// aanleverResponse (kenmerk, aanleverkenmerk, tijdstempelAangeleverd and its optional
// status) and getStatussenProces / getNieuweStatussenProces responses (every status).
// A verified response of another operation is reported with its Operation only.
//
// The error is non-nil when the response is not verified (Verified false, Reason says
// why, and the error wraps wsse.ErrSignature, ErrUntrusted, ErrUnsigned, ErrTimestamp
// or ErrMalformed), or when a verified payload cannot be decoded. The content of a
// response that is not verified is not decoded: it is not evidence of anything.
func ReadEvidence(data []byte, trusted []*x509.Certificate) (Evidence, error) {
	st, err := wsse.VerifyStored(data, trusted)
	if err != nil {
		return Evidence{Reason: err.Error()}, fmt.Errorf("the response is not verified: %w", err)
	}
	ev := Evidence{
		Verified: true,
		Signer: Signer{Subject: st.Signer.Subject.String(), Issuer: st.Signer.Issuer.String(), Serial: st.Signer.SerialNumber.String(),
			NotBefore: st.Signer.NotBefore, NotAfter: st.Signer.NotAfter},
		Created: st.Created, Expires: st.Expires,
		Action: st.Message.Addressing.Action, MessageID: st.Message.Addressing.MessageID, RelatesTo: st.Message.Addressing.RelatesTo,
	}
	p := st.Message.Payload()
	if p == nil || p.NamespaceURI() != wire.NS || !strings.HasSuffix(p.Tag, "Response") {
		got := "nothing"
		if p != nil {
			got = "{" + p.NamespaceURI() + "}" + p.Tag
		}
		return ev, fmt.Errorf("the response verifies but its Body holds %s, not a Digipoort response ({%s}…Response)", got, wire.NS)
	}
	ev.Operation = strings.TrimSuffix(p.Tag, "Response")
	if p.Tag == "aanleverResponse" {
		ev.Operation = wire.OpAanleveren
	}
	x, err := st.Message.PayloadXML()
	if err != nil {
		return ev, fmt.Errorf("the response verifies but its %s payload cannot be read: %w", p.Tag, err)
	}
	switch ev.Operation {
	case wire.OpAanleveren:
		var r wire.AanleverResponse
		if err := xml.Unmarshal(x, &r); err != nil {
			return ev, fmt.Errorf("the response verifies but its aanleverResponse cannot be decoded: %w", err)
		}
		ev.Kenmerk, ev.Aanleverkenmerk, ev.Berichtsoort = r.Kenmerk, r.Aanleverkenmerk, r.Berichtsoort
		ev.Belanghebbende, ev.Aangeleverd = fromWire(r.IdentiteitBelanghebbende), r.TijdstempelAangeleverd.Time
		if r.Statuscode != "" {
			s := Status{Kenmerk: r.Kenmerk, Code: r.Statuscode, Description: r.Statusomschrijving, Details: r.Statusdetails,
				Belanghebbende: ev.Belanghebbende}
			if r.TijdstempelStatus != nil {
				s.Time = r.TijdstempelStatus.Time
			}
			if r.StatusFoutcode != nil {
				s.ErrorCode, s.ErrorDescription = r.StatusFoutcode.Foutcode, r.StatusFoutcode.Foutbeschrijving
			}
			ev.Statuses = []Status{s}
		}
	case wire.OpGetStatussenProces, wire.OpGetNieuweStatussenProces, wire.OpGetNieuweStatussen:
		var r wire.StatusResponse
		if err := xml.Unmarshal(x, &r); err != nil {
			return ev, fmt.Errorf("the response verifies but its %s cannot be decoded: %w", p.Tag, err)
		}
		if r.Return.XMLName.Local != ev.Operation+"Return" {
			return ev, fmt.Errorf("the response verifies but its %s lacks %sReturn", p.Tag, ev.Operation)
		}
		for _, res := range r.Return.Resultaat {
			s := Status{Kenmerk: res.Kenmerk, Code: res.Statuscode, Time: res.TijdstempelStatus.Time, Description: res.Statusomschrijving,
				Details: res.Statusdetails, Belanghebbende: fromWire(res.IdentiteitBelanghebbende)}
			if res.StatusFoutcode != nil {
				s.ErrorCode, s.ErrorDescription = res.StatusFoutcode.Foutcode, res.StatusFoutcode.Foutbeschrijving
			}
			ev.Statuses = append(ev.Statuses, s)
			if ev.Kenmerk == "" {
				ev.Kenmerk = res.Kenmerk
			}
		}
	}
	return ev, nil
}
