package wsse

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Stored is a stored response that verified offline (VerifyStored).
type Stored struct {
	Message          *Message          // the parsed message (payload, addressing)
	Signer           *x509.Certificate // the certificate that signed it
	Created, Expires time.Time         // from the signed Timestamp
}

// VerifyStored verifies a stored response exactly as received, offline: the signature, the
// references, and that the signing certificate is trusted and was valid at the time the
// response was signed (its Timestamp Created), not necessarily now. The age of the timestamp is
// not checked.
//
// Trusted means pinned (the signer is byte for byte one of trusted) or chaining to a CA
// certificate in trusted, with the chain evaluated at Created. Revocation is not
// checked: there is no network here, and a certificate revoked after signing does not
// undo a filing. Errors wrap ErrMalformed, ErrUnsigned, ErrSignature, ErrUntrusted or
// ErrTimestamp.
//
// What this proves rests on the signer's key: Created is stated by the signer, so a key
// that leaked after its certificate expired could sign a back-dated response. That is
// why a certificate is also required to have been valid at Created, not only trusted.
func VerifyStored(data []byte, trusted []*x509.Certificate) (*Stored, error) {
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if m.Fault != nil {
		return nil, fmt.Errorf("%w: the stored response is a SOAP fault (%s %s), which Digipoort does not sign",
			ErrUnsigned, m.Fault.Code, m.Fault.Foutcode)
	}
	v, err := m.verify(trustAt(trusted))
	if err != nil {
		return nil, err
	}
	return &Stored{Message: m, Signer: v.Signer, Created: v.Created, Expires: v.Expires}, nil
}

// trustAt is the trust of a proof: the signer must be one of certs itself (pinned)
// and have been valid at the signing time. A trusted CA is not enough here: a
// PKIoverheid CA issues certificates to many organisations, possibly the filer itself,
// who could then sign its own "delivered on time".
func trustAt(certs []*x509.Certificate) func(*x509.Certificate, time.Time) error {
	return func(cert *x509.Certificate, at time.Time) error {
		if len(certs) == 0 {
			return errors.New("no trusted certificates given")
		}
		for _, c := range certs {
			if bytes.Equal(c.Raw, cert.Raw) {
				if at.Before(cert.NotBefore) || at.After(cert.NotAfter) {
					return fmt.Errorf("certificate %q (serial %s) was not valid when the response was signed (%s): valid from %s to %s",
						cert.Subject.String(), cert.SerialNumber.String(), at.UTC().Format(time.RFC3339),
						cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
				}
				return nil
			}
		}
		return fmt.Errorf("certificate %q (serial %s) is not one of the %d trusted signing certificates; a proof must be signed by a "+
			"certificate trusted itself (Digipoort's own signing certificate), not merely by one a trusted CA issued",
			cert.Subject.String(), cert.SerialNumber.String(), len(certs))
	}
}
