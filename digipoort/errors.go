package digipoort

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Kind says whether retrying can help.
type Kind int

const (
	// Final: retrying the same request will fail the same way; a person has to act
	// (fix the message, the certificate or the configuration).
	Final Kind = iota + 1
	// Transient: retry later (network trouble, timeouts, Digipoort overloaded or
	// having a technical problem).
	Transient
)

func (k Kind) String() string {
	switch k {
	case Final:
		return "final"
	case Transient:
		return "transient"
	}
	return "unknown"
}

// Error is the one error type the client returns. Every error from a Client method
// is (or wraps) an *Error, so its Kind (or IsFinal) always gives an answer.
type Error struct {
	Op   string // WSDL operation: "aanleveren", "getStatussenProces", …
	Kind Kind
	// Foutcode and Foutbeschrijving come from a SOAP fault detail or a statusFoutcode
	// (ALS100, STS100, …).
	Foutcode         string
	Foutbeschrijving string
	// Statuscode is set when a Digipoort status code is the reason (210).
	Statuscode string
	HTTPStatus int    // 0 when no HTTP response was received
	Msg        string // what happened and what to do about it
	Err        error  // the cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("digipoort ")
	b.WriteString(e.Op)
	b.WriteString(" (")
	b.WriteString(e.Kind.String())
	b.WriteString("): ")
	if e.Foutcode != "" {
		b.WriteString(e.Foutcode)
		if d := oneLine(e.Foutbeschrijving, 400); d != "" {
			b.WriteString(` "`)
			b.WriteString(d)
			b.WriteString(`"`)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsFinal reports whether err is a Digipoort error that retrying will not cure.
func IsFinal(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Final
}

// oneLine collapses white space (Digipoort's descriptions span lines) and bounds the
// length, so that an error stays one readable line.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// ClassifyFoutcode decides whether a Digipoort fault code (from a SOAP fault or a
// statusFoutcode) is final or transient, and says what to do. The rules:
//
//   - a description mentioning overload ("overbelast", "zwaarbelast") is transient,
//     whatever the code: Digipoort asks to come back later;
//   - codes ending in 400 (ALS400, STS400, …) are Digipoort's "technical problem"
//     codes: transient;
//   - ALS100–ALS170 (the request does not meet the koppelvlak specification), STS100
//     and every other or unknown code: final. An unknown code is final on purpose: a
//     person looks at it instead of the service retrying something it does not
//     understand.
func ClassifyFoutcode(code, description string) (Kind, string) {
	d := strings.ToLower(description)
	if strings.Contains(d, "overbelast") || strings.Contains(d, "zwaarbelast") || strings.Contains(d, "overload") {
		return Transient, "Digipoort is overloaded; retry later with back-off"
	}
	c := strings.ToUpper(strings.TrimSpace(code))
	switch {
	case strings.HasSuffix(c, "400"):
		return Transient, "technical problem at Digipoort; retry later"
	case strings.HasPrefix(c, "ALS"):
		return Final, "Digipoort refused the delivery: the request does not meet the koppelvlak specification " +
			"(check berichtsoort, identities, content and the signing certificate); fix it before delivering again"
	case strings.HasPrefix(c, "STS"):
		return Final, "Digipoort refused the status request: check the kenmerk (does it belong to a delivery made with this certificate?)"
	case strings.HasPrefix(c, "OPS"), strings.HasPrefix(c, "OPH"):
		return Final, "Digipoort refused the pickup request: check the request parameters"
	}
	return Final, "Digipoort reported an error this client does not know; look it up in Logius' list of foutcodes before retrying"
}

func newError(op string, kind Kind, msg string, cause error) *Error {
	return &Error{Op: op, Kind: kind, Msg: msg, Err: cause}
}

// transportError classifies an error from the HTTP round trip, explaining an
// untrusted server certificate from the configured CA bundle.
func (c *Client) transportError(op string, ctx context.Context, err error) *Error {
	e := transportError(op, ctx, err, c.timeout.String())
	if hint := untrustedServerHint(err, c.caCerts); hint != "" && e.Kind == Final {
		e.Msg = hint
	}
	return e
}

// transportError classifies an error from the HTTP round trip.
func transportError(op string, ctx context.Context, err error, timeout string) *Error {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		alert      tls.AlertError
		recordErr  tls.RecordHeaderError
		netErr     net.Error
		maybeSent  = op == opDeliver
		afterwards = ""
	)
	if maybeSent {
		afterwards = "; the delivery may or may not have reached Digipoort: look the delivery up (DeliveryCandidates) before delivering again"
	}
	switch {
	case ctx.Err() != nil:
		return newError(op, Transient, "the call was cancelled or its deadline passed"+afterwards, err)
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verifyErr):
		return newError(op, Final, "the TLS certificate of the Digipoort server is not trusted: check "+EnvCA+
			" (the CA bundle that issued Digipoort's server certificate, intermediates included) and "+endpointSettings, err)
	case errors.As(err, &alert):
		return newError(op, Final, "the Digipoort server broke off the TLS handshake; usually it does not accept the client "+
			"certificate: check "+EnvClientCert+"/"+EnvClientPFX+" (valid, PKIoverheid, known to Digipoort)", err)
	case errors.As(err, &recordErr):
		return newError(op, Final, "the server does not speak TLS; check "+endpointSettings, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return newError(op, Transient, "no answer from Digipoort within "+timeout+afterwards, err)
	}
	return newError(op, Transient, "network error talking to Digipoort; retry later"+afterwards, err)
}

// untrustedServerHint explains an "unknown authority" TLS failure: the CA that issued
// the last certificate the server sent is not in the bundle. The usual cause is a
// bundle with only the root: PKIoverheid server certificates are issued by an
// intermediate CA below the Staat der Nederlanden root, and a server that does not
// send that intermediate can only be verified when the bundle holds it. bundle may be
// nil (a Config built in code without ServerCACertificates).
func untrustedServerHint(err error, bundle []*x509.Certificate) string {
	var verr *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &verr) || len(verr.UnverifiedCertificates) == 0 || !errors.As(verr.Err, &unknown) {
		return ""
	}
	chain := verr.UnverifiedCertificates
	leaf, top := chain[0], chain[0]
	for range chain { // follow the chain the server sent as far as it goes
		next := issuerIn(chain, top)
		if next == nil || next == top {
			break
		}
		top = next
	}
	held := make([]string, 0, len(bundle))
	for _, b := range bundle {
		held = append(held, fmt.Sprintf("%q", b.Subject.CommonName))
	}
	holds := ""
	if len(bundle) > 0 {
		if len(held) > 6 {
			held = append(held[:6], "…")
		}
		holds = " (it holds " + strings.Join(held, ", ") + ")"
	}
	if bytes.Equal(top.RawIssuer, top.RawSubject) {
		return fmt.Sprintf("the TLS certificate of the Digipoort server (%s) chains to the root %s, which is not in %s%s: put that root and "+
			"the intermediate CA certificates below it in the bundle", name(leaf), name(top), EnvCA, holds)
	}
	for _, b := range bundle {
		if bytes.Equal(b.RawSubject, top.RawIssuer) {
			return fmt.Sprintf("the TLS certificate of the Digipoort server (%s) is issued by %s, and %s holds a certificate of that name, but not "+
				"the one that signed it (a renewed CA with a new key?): put the current %s certificate in the bundle", name(leaf), issuerName(top), EnvCA,
				issuerName(top))
		}
	}
	return fmt.Sprintf("the TLS certificate of the Digipoort server (%s) is issued by %s, which is neither in %s%s nor sent by the server: "+
		"the bundle must hold the intermediate CA certificates as well as the root: add the certificate of %s (and of any CA between it "+
		"and the root)",
		name(leaf), issuerName(top), EnvCA, holds, issuerName(top))
}

// issuerIn returns the certificate in chain that issued c.
func issuerIn(chain []*x509.Certificate, c *x509.Certificate) *x509.Certificate {
	for _, cand := range chain {
		if cand != c && bytes.Equal(cand.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(cand) == nil {
			return cand
		}
	}
	return nil
}

func name(c *x509.Certificate) string { return fmt.Sprintf("%q", c.Subject.String()) }

func issuerName(c *x509.Certificate) string { return fmt.Sprintf("%q", c.Issuer.String()) }

func faultError(op string, httpStatus int, codeLocal, faultString, foutcode, foutbeschrijving string) *Error {
	e := &Error{Op: op, HTTPStatus: httpStatus, Foutcode: foutcode, Foutbeschrijving: foutbeschrijving}
	if foutcode != "" {
		e.Kind, e.Msg = ClassifyFoutcode(foutcode, foutbeschrijving)
		return e
	}
	// A SOAP fault without Digipoort's detail.
	e.Foutbeschrijving = faultString
	kind, msg := ClassifyFoutcode("", faultString)
	switch {
	case kind == Transient:
		e.Kind, e.Msg = kind, msg
	case strings.EqualFold(codeLocal, "Server"):
		e.Kind, e.Msg = Transient, fmt.Sprintf("Digipoort answered with a server fault (%s); retry later", firstLine(faultString))
	default:
		e.Kind, e.Msg = Final, fmt.Sprintf("Digipoort answered with a %s fault without a foutcode (%s); the request was refused", codeLocal, firstLine(faultString))
	}
	return e
}

// status210Error is returned (together with the statuses) when Digipoort reports
// status 210: it could not authenticate the sender.
func status210Error(op string, s Status) *Error {
	return &Error{
		Op: op, Kind: Final, Statuscode: "210",
		Foutcode: s.ErrorCode, Foutbeschrijving: s.ErrorDescription,
		Msg: "Digipoort status 210 (authenticatie niet gelukt) for kenmerk " + s.Kenmerk +
			": Digipoort could not authenticate the sender. Check the client certificate " +
			"(KOERIER_DIGIPOORT_CLIENT_CERT or KOERIER_DIGIPOORT_CLIENT_PFX): is it valid, the intended PKIoverheid " +
			"certificate, and does Digipoort know it (registered for this berichtsoort)? Then deliver the message again",
	}
}

// MayHaveArrived reports whether a failed aanleveren may nevertheless have reached
// Digipoort: Digipoort answered (an HTTP status came back) but not with a fault of its
// own, so the answer — tampered, unsigned, untrusted, malformed — cannot tell. Such a
// delivery must be looked up (DeliveryCandidates) before it is delivered again, and must not
// be recorded as refused.
func MayHaveArrived(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Op == opDeliver && e.Foutcode == "" && e.Statuscode == "" && e.HTTPStatus != 0
}
