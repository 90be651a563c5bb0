// Package wsse builds and checks the SOAP 1.1 envelopes Digipoort's WUS 2.0 profile
// uses: WS-Addressing 2005/08 headers, a WS-Security header with a Timestamp and the
// signer's X.509 certificate as BinarySecurityToken, and one XML signature whose
// references cover the Body, the Timestamp and every addressing header, with a
// SecurityTokenReference to the token as KeyInfo.
//
// # Libraries
//
// XML is handled with github.com/beevik/etree and canonicalised with the exclusive
// C14N implementation of github.com/russellhaering/goxmldsig
// (dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList). goxmldsig is the maintained
// Go XML-DSig library (used by the major Go SAML stacks) and its canonicaliser is
// tested against the W3C vectors; reproducing the digests of a real Digipoort
// response (shared/digipoort/fixtures) is part of this package's tests. Its
// ValidationContext only validates single-reference enveloped signatures, which is
// not the WS-Security shape, so the multi-reference digest/sign/verify logic, the
// token resolution and the anti-wrapping checks live here.
//
// One detail: goxmldsig's etreeutils.NSDetatch (used to give a sub-element its
// in-scope namespace declarations before canonicalising) refuses sub-trees of more
// than 1000 elements, which a getBerichten or getProcessen response easily exceeds.
// This package detaches elements itself (same result, no limit) and hands the copy
// to goxmldsig's canonicaliser.
//
// # Signature wrapping
//
// A Reference finds its element by ID anywhere in the document, while the message is
// read by position (the wsa:RelatesTo under soapenv:Header, the element in Body). An
// attacker who keeps a signed element intact but moves it elsewhere (into another
// header, the Security header, the Signature) keeps the signature valid and changes what
// is read: a captured response, its RelatesTo moved away, would read as relating to
// nothing and pass as the answer to another request. Verify therefore refuses a
// reference to an ID that more than one element carries, and a signed element that is
// not where WUS puts it: addressing headers directly under soapenv:Header, the
// Timestamp (and token) directly under the Security header, the Body under the
// Envelope; nothing else may be referenced. It requires the Body, the Timestamp and
// every addressing header to be signed, and fills Message.Addressing from exactly the
// signed headers. Values must be plain text (an element inside would make the value
// read a prefix of what was signed). The Timestamp needs Created and Expires.
//
// # Stored responses
//
// VerifyStored checks a response kept as received, long after the fact (proof that a
// return was delivered): everything Verify checks except the age of the Timestamp, with
// the signer required to have been trusted and valid at the signed Created time.
package wsse

import (
	"crypto"
	"fmt"
	"strings"
)

// Namespaces used in WUS envelopes.
const (
	NSSoap    = "http://schemas.xmlsoap.org/soap/envelope/"
	NSWSA     = "http://www.w3.org/2005/08/addressing"
	NSWSSE    = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
	NSWSU     = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
	NSDSig    = "http://www.w3.org/2000/09/xmldsig#"
	NSExcC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"

	// AnonymousAddress is the WS-Addressing anonymous endpoint.
	AnonymousAddress = "http://www.w3.org/2005/08/addressing/anonymous"

	// ValueTypeX509v3 and EncodingBase64 describe a BinarySecurityToken holding a
	// DER certificate.
	ValueTypeX509v3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
	EncodingBase64  = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

	algExcC14N    = NSExcC14N
	algRSASHA1    = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algRSASHA256  = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA512  = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	algDigestSHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
	algDigest256  = "http://www.w3.org/2001/04/xmlenc#sha256"
	algDigest512  = "http://www.w3.org/2001/04/xmlenc#sha512"
)

// Algorithm is the signature algorithm used to sign an envelope. The digest method of
// the references follows it: SHA-1 for RSA-SHA1 (what Digipoort's WSDL prescribes),
// SHA-256 for RSA-SHA256.
type Algorithm string

const (
	RSASHA1   Algorithm = "rsa-sha1"
	RSASHA256 Algorithm = "rsa-sha256"
)

// ParseAlgorithm accepts "rsa-sha1" or "rsa-sha256" (case-insensitive).
func ParseAlgorithm(s string) (Algorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "rsa-sha1", "sha1":
		return RSASHA1, nil
	case "rsa-sha256", "sha256":
		return RSASHA256, nil
	}
	return "", fmt.Errorf("unknown signature algorithm %q (use rsa-sha1 or rsa-sha256)", s)
}

func (a Algorithm) uris() (sigURI, digestURI string, hash crypto.Hash, err error) {
	switch a {
	case RSASHA1, "":
		return algRSASHA1, algDigestSHA1, crypto.SHA1, nil
	case RSASHA256:
		return algRSASHA256, algDigest256, crypto.SHA256, nil
	}
	return "", "", 0, fmt.Errorf("unknown signature algorithm %q", string(a))
}

func signatureHash(uri string) (crypto.Hash, bool) {
	switch uri {
	case algRSASHA1:
		return crypto.SHA1, true
	case algRSASHA256:
		return crypto.SHA256, true
	case algRSASHA512:
		return crypto.SHA512, true
	}
	return 0, false
}

func digestHash(uri string) (crypto.Hash, bool) {
	switch uri {
	case algDigestSHA1:
		return crypto.SHA1, true
	case algDigest256:
		return crypto.SHA256, true
	case algDigest512:
		return crypto.SHA512, true
	}
	return 0, false
}
