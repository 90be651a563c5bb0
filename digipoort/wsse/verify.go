package wsse

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// VerifyOptions say what Verify accepts.
type VerifyOptions struct {
	// Trust decides whether a certificate that produced a valid signature may sign
	// this message; nil trusts nobody. See TrustCertificates.
	Trust func(*x509.Certificate) error
	// TrustAt, when set, is used instead of Trust and is given the signed Created
	// time. See TrustCertificatesAt.
	TrustAt func(cert *x509.Certificate, created time.Time) error
	// Now is the time the timestamp is checked against; zero means time.Now().
	Now time.Time
	// Tolerance is the clock skew allowed on Created and Expires. A negative
	// tolerance disables the timestamp time check (the Timestamp must still be there
	// and be signed); only tests on captured responses should do that.
	Tolerance time.Duration
}

// Verification describes a verified signature.
type Verification struct {
	Signer  *x509.Certificate
	Created time.Time
	Expires time.Time
	// SignedIDs are the IDs of the referenced elements, in reference order.
	SignedIDs []string
}

// Verify checks the WS-Security signature of the message:
//
//   - exactly one Security header with exactly one ds:Signature and one Timestamp;
//   - SignedInfo canonicalised with exclusive C14N, RSA-SHA1/256/512;
//   - every Reference is a same-document "#id" that resolves to exactly one element
//     in the whole document (an ID used twice is refused), uses only the exclusive C14N
//     transform and a SHA-1/256/512 digest, and its digest matches;
//   - every referenced element stands where WUS puts it: the Body under the Envelope,
//     the Timestamp and the token directly under the Security header, addressing
//     headers directly under soapenv:Header; nothing else may be referenced;
//   - the Body, the Timestamp and every WS-Addressing header are among the signed
//     references, so a payload moved elsewhere or an unsigned header is refused;
//   - KeyInfo is a SecurityTokenReference to an X509v3 BinarySecurityToken in the same
//     Security header, the signature value verifies with that certificate's key, and
//     opts.Trust accepts the certificate;
//   - the Timestamp has Created and Expires, lying within opts.Tolerance of opts.Now.
//
// On success m.Addressing holds the values of exactly the addressing headers that were
// verified.
func (m *Message) Verify(opts VerifyOptions) (*Verification, error) {
	v, err := m.verify(func(cert *x509.Certificate, created time.Time) error {
		switch {
		case opts.TrustAt != nil:
			return opts.TrustAt(cert, created)
		case opts.Trust == nil:
			return errors.New("no trusted certificates configured")
		}
		return opts.Trust(cert)
	})
	if err != nil {
		return nil, err
	}
	if err := checkTimestampTime(v.Created, v.Expires, opts); err != nil {
		return nil, err
	}
	return v, nil
}

// verify checks everything but the age of the Timestamp. trust decides about the
// signing certificate given the signed Created time.
func (m *Message) verify(trust func(cert *x509.Certificate, created time.Time) error) (*Verification, error) {
	if m.security == nil {
		return nil, ErrUnsigned
	}
	sigs := childrenNS(m.security, NSDSig, "Signature")
	if len(sigs) == 0 {
		return nil, ErrUnsigned
	}
	if len(sigs) > 1 {
		return nil, malformed("more than one Signature in the Security header")
	}
	sig := sigs[0]
	signedInfo, err := onlyChild(sig, NSDSig, "SignedInfo")
	if err != nil {
		return nil, err
	}
	c14nMethod, err := onlyChild(signedInfo, NSDSig, "CanonicalizationMethod")
	if err != nil {
		return nil, err
	}
	if a, _ := attrPlain(c14nMethod, "Algorithm"); a != algExcC14N {
		return nil, malformed("SignedInfo canonicalization %q not supported (want exclusive C14N)", a)
	}
	sigMethod, err := onlyChild(signedInfo, NSDSig, "SignatureMethod")
	if err != nil {
		return nil, err
	}
	sigAlg, _ := attrPlain(sigMethod, "Algorithm")
	sigHash, ok := signatureHash(sigAlg)
	if !ok {
		return nil, malformed("signature method %q not supported", sigAlg)
	}

	// References.
	refs := childrenNS(signedInfo, NSDSig, "Reference")
	if len(refs) == 0 {
		return nil, malformed("SignedInfo has no Reference")
	}
	signed := map[*etree.Element]bool{}
	var ids []string
	for _, ref := range refs {
		id, target, err := m.resolveReference(ref)
		if err != nil {
			return nil, err
		}
		if signed[target] {
			return nil, malformed("element #%s referenced twice", id)
		}
		if err := m.checkPlace(id, target); err != nil {
			return nil, err
		}
		if err := checkDigest(ref, target, id); err != nil {
			return nil, err
		}
		signed[target] = true
		ids = append(ids, id)
	}

	// What must be signed.
	if !signed[m.body] {
		return nil, fmt.Errorf("%w: the Body is not signed", ErrSignature)
	}
	tss := childrenNS(m.security, NSWSU, "Timestamp")
	if len(tss) != 1 {
		return nil, fmt.Errorf("%w: want exactly one Timestamp in the Security header, found %d", ErrTimestamp, len(tss))
	}
	if !signed[tss[0]] {
		return nil, fmt.Errorf("%w: the Timestamp is not signed", ErrSignature)
	}
	for _, h := range m.wsa {
		if !signed[h] {
			return nil, fmt.Errorf("%w: addressing header wsa:%s is not signed", ErrSignature, h.Tag)
		}
	}

	// Key: SecurityTokenReference -> BinarySecurityToken in this Security header.
	cert, err := m.signingCertificate(sig)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, malformed("signing certificate has a %T key; RSA expected", cert.PublicKey)
	}
	sv, err := onlyChild(sig, NSDSig, "SignatureValue")
	if err != nil {
		return nil, err
	}
	sigBytes, err := decodeB64(sv.Text())
	if err != nil {
		return nil, malformed("SignatureValue is not base64: %v", err)
	}
	canonical, err := canonicalize(signedInfo, inclusivePrefixes(c14nMethod))
	if err != nil {
		return nil, malformed("canonicalizing SignedInfo: %v", err)
	}
	h := sigHash.New()
	h.Write(canonical)
	if err := rsa.VerifyPKCS1v15(pub, sigHash, h.Sum(nil), sigBytes); err != nil {
		return nil, fmt.Errorf("%w: signature value does not match the SignedInfo for the token's key", ErrSignature)
	}

	// Everything below reads signed content only.
	created, expires, err := readTimestamp(tss[0])
	if err != nil {
		return nil, err
	}
	if err := trust(cert, created); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	addr, err := m.signedAddressing(signed)
	if err != nil {
		return nil, err
	}
	m.Addressing = addr
	return &Verification{Signer: cert, Created: created, Expires: expires, SignedIDs: ids}, nil
}

// checkPlace refuses a signed element that is not where the WUS profile puts it.
// References resolve by ID anywhere in the document, so without this a signed header
// can be moved (into another header, the Security header, the Signature) and still
// verify while the message, read by position, no longer has it: a captured response
// would then be accepted as the answer to another request (signature wrapping).
func (m *Message) checkPlace(id string, el *etree.Element) error {
	var ok bool
	switch {
	case el.NamespaceURI() == NSWSA:
		ok = el.Parent() == m.header
	case is(el, NSWSU, "Timestamp"), is(el, NSWSSE, "BinarySecurityToken"):
		ok = el.Parent() == m.security
	case is(el, NSSoap, "Body"):
		ok = el == m.body
	}
	if ok {
		return nil
	}
	where := "nothing"
	if p := el.Parent(); p != nil {
		where = p.FullTag()
	}
	return fmt.Errorf("%w: signed element #%s (%s) stands inside %s, not where the WUS profile puts it (signature wrapping?)",
		ErrSignature, id, el.FullTag(), where)
}

// signedAddressing reads the addressing values from the signed header elements that
// stand directly in soapenv:Header. With checkPlace and the rule that every addressing
// header is signed, these are the elements Parse read; reading them here makes the
// reported values come from verified elements by construction, not by coincidence.
func (m *Message) signedAddressing(signed map[*etree.Element]bool) (Addressing, error) {
	var hs []*etree.Element
	seen := map[string]bool{}
	for _, h := range m.header.ChildElements() {
		if h.NamespaceURI() == NSWSA && signed[h] {
			if seen[h.Tag] {
				return Addressing{}, malformed("duplicate wsa:%s header", h.Tag)
			}
			seen[h.Tag] = true
			hs = append(hs, h)
		}
	}
	return readAddressing(hs)
}

func onlyChild(el *etree.Element, ns, local string) (*etree.Element, error) {
	cs := childrenNS(el, ns, local)
	if len(cs) != 1 {
		return nil, malformed("want exactly one %s in %s, found %d", local, el.Tag, len(cs))
	}
	return cs[0], nil
}

func inclusivePrefixes(el *etree.Element) string {
	if in := childNS(el, NSExcC14N, "InclusiveNamespaces"); in != nil {
		v, _ := attrPlain(in, "PrefixList")
		return v
	}
	return ""
}

func (m *Message) resolveReference(ref *etree.Element) (string, *etree.Element, error) {
	uri, _ := attrPlain(ref, "URI")
	if !strings.HasPrefix(uri, "#") || len(uri) < 2 {
		return "", nil, malformed("reference URI %q is not a same-document #id reference", uri)
	}
	id := uri[1:]
	targets := m.ids[id]
	switch len(targets) {
	case 0:
		return "", nil, fmt.Errorf("%w: reference #%s resolves to no element", ErrSignature, id)
	case 1:
	default:
		return "", nil, malformed("ID %q is used by %d elements (signature wrapping?)", id, len(targets))
	}
	return id, targets[0], nil
}

func checkDigest(ref, target *etree.Element, id string) error {
	var prefixes string
	if tr := childrenNS(ref, NSDSig, "Transforms"); len(tr) > 0 {
		if len(tr) > 1 {
			return malformed("reference #%s has more than one Transforms", id)
		}
		ts := childrenNS(tr[0], NSDSig, "Transform")
		if len(ts) != 1 {
			return malformed("reference #%s: want exactly one (exclusive C14N) transform, found %d", id, len(ts))
		}
		if a, _ := attrPlain(ts[0], "Algorithm"); a != algExcC14N {
			return malformed("reference #%s: transform %q not supported", id, a)
		}
		prefixes = inclusivePrefixes(ts[0])
	}
	dm, err := onlyChild(ref, NSDSig, "DigestMethod")
	if err != nil {
		return err
	}
	alg, _ := attrPlain(dm, "Algorithm")
	hash, ok := digestHash(alg)
	if !ok {
		return malformed("reference #%s: digest method %q not supported", id, alg)
	}
	dv, err := onlyChild(ref, NSDSig, "DigestValue")
	if err != nil {
		return err
	}
	want, err := decodeB64(dv.Text())
	if err != nil {
		return malformed("reference #%s: DigestValue is not base64", id)
	}
	got, err := digest(target, prefixes, hash)
	if err != nil {
		return malformed("reference #%s: %v", id, err)
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("%w: digest of #%s (%s) does not match; the element was changed after signing", ErrSignature, id, target.Tag)
	}
	return nil
}

func digest(el *etree.Element, prefixes string, hash crypto.Hash) ([]byte, error) {
	c, err := canonicalize(el, prefixes)
	if err != nil {
		return nil, err
	}
	h := hash.New()
	h.Write(c)
	return h.Sum(nil), nil
}

func (m *Message) signingCertificate(sig *etree.Element) (*x509.Certificate, error) {
	ki, err := onlyChild(sig, NSDSig, "KeyInfo")
	if err != nil {
		return nil, err
	}
	str, err := onlyChild(ki, NSWSSE, "SecurityTokenReference")
	if err != nil {
		return nil, err
	}
	r, err := onlyChild(str, NSWSSE, "Reference")
	if err != nil {
		return nil, err
	}
	uri, _ := attrPlain(r, "URI")
	if !strings.HasPrefix(uri, "#") || len(uri) < 2 {
		return nil, malformed("SecurityTokenReference URI %q is not a #id reference", uri)
	}
	targets := m.ids[uri[1:]]
	if len(targets) != 1 {
		return nil, malformed("SecurityTokenReference %s resolves to %d elements", uri, len(targets))
	}
	bst := targets[0]
	if !is(bst, NSWSSE, "BinarySecurityToken") || bst.Parent() != m.security {
		return nil, malformed("SecurityTokenReference %s does not point at a BinarySecurityToken in the Security header", uri)
	}
	if vt, _ := attrPlain(bst, "ValueType"); vt != ValueTypeX509v3 {
		return nil, malformed("BinarySecurityToken ValueType %q; want X509v3", vt)
	}
	if et, ok := attrPlain(bst, "EncodingType"); ok && et != EncodingBase64 {
		return nil, malformed("BinarySecurityToken EncodingType %q; want Base64Binary", et)
	}
	der, err := decodeB64(bst.Text())
	if err != nil {
		return nil, malformed("BinarySecurityToken is not base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, malformed("BinarySecurityToken is not an X.509 certificate: %v", err)
	}
	return cert, nil
}

// readTimestamp reads Created and Expires. Both are required: Digipoort sends both, and
// a Timestamp without Expires would be valid for ever.
func readTimestamp(ts *etree.Element) (created, expires time.Time, err error) {
	read := func(name string) (time.Time, error) {
		els := childrenNS(ts, NSWSU, name)
		if len(els) != 1 {
			return time.Time{}, fmt.Errorf("%w: want exactly one %s in the Timestamp, found %d", ErrTimestamp, name, len(els))
		}
		v, err := textOnly(els[0])
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %v", ErrTimestamp, name, err)
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s %q is not an xsd:dateTime", ErrTimestamp, name, v)
		}
		return t, nil
	}
	if created, err = read("Created"); err != nil {
		return created, expires, err
	}
	if expires, err = read("Expires"); err != nil {
		return created, expires, err
	}
	if expires.Before(created) {
		return created, expires, fmt.Errorf("%w: Expires %s lies before Created %s", ErrTimestamp,
			expires.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339))
	}
	return created, expires, nil
}

func checkTimestampTime(created, expires time.Time, opts VerifyOptions) error {
	if opts.Tolerance < 0 {
		return nil
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if created.After(now.Add(opts.Tolerance)) {
		return fmt.Errorf("%w: created %s, which is in the future (now %s, tolerance %s); check the clocks",
			ErrTimestamp, created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), opts.Tolerance)
	}
	if now.Add(-opts.Tolerance).After(expires) {
		return fmt.Errorf("%w: expired at %s (now %s, tolerance %s)",
			ErrTimestamp, expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), opts.Tolerance)
	}
	return nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.DecodeString(s)
}

// TrustCertificates returns a Trust function for VerifyOptions. A signing certificate
// is trusted when it is byte-for-byte one of certs (pinning: the recommended set-up,
// configure Digipoort's own signing certificate), or when one of certs is a CA
// certificate (BasicConstraints CA) and the signing certificate chains to it and is
// valid now. Note that trusting a CA trusts every certificate that CA issues (for a
// PKIoverheid CA: many organisations), so pin where possible.
func TrustCertificates(certs []*x509.Certificate) func(*x509.Certificate) error {
	ts := newTrustSet(certs)
	return func(cert *x509.Certificate) error { return ts.check(cert, time.Now()) }
}

// TrustCertificatesAt is TrustCertificates evaluated at the response's signed Created
// time, with a pinned certificate held to its validity period too: Koerier's client
// uses it, so an answer it acts on is one that will still verify as proof later.
func TrustCertificatesAt(certs []*x509.Certificate) func(*x509.Certificate, time.Time) error {
	ts := newTrustSet(certs)
	ts.pinnedValidity = true
	return ts.check
}

type trustSet struct {
	// pinnedValidity also holds a pinned certificate to its validity period.
	pinnedValidity bool
	certs          []*x509.Certificate
	pool           *x509.CertPool // the CA certificates among certs
	cas            int
}

func newTrustSet(certs []*x509.Certificate) *trustSet {
	ts := &trustSet{certs: certs, pool: x509.NewCertPool()}
	for _, c := range certs {
		if c.IsCA {
			ts.pool.AddCert(c)
			ts.cas++
		}
	}
	return ts
}

// check: pinned, or chaining to a trusted CA at time at.
func (ts *trustSet) check(cert *x509.Certificate, at time.Time) error {
	for _, c := range ts.certs {
		if bytes.Equal(c.Raw, cert.Raw) {
			// Pinned is not forever: a signing certificate that had expired (or was not
			// yet valid) when it signed makes an answer that will never hold as proof.
			if ts.pinnedValidity && (at.Before(cert.NotBefore) || at.After(cert.NotAfter)) {
				return fmt.Errorf("certificate %q (serial %s) is trusted but was not valid at %s (valid from %s to %s): if Digipoort renewed "+
					"its signing certificate, add the new one", cert.Subject.String(), cert.SerialNumber.String(), at.UTC().Format(time.RFC3339),
					cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
			}
			return nil
		}
	}
	if ts.cas > 0 {
		_, err := cert.Verify(x509.VerifyOptions{Roots: ts.pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err == nil {
			return nil
		}
		return fmt.Errorf("certificate %q is not one of the %d trusted signing certificates and does not chain to a trusted CA at %s: %v",
			cert.Subject.String(), len(ts.certs), at.UTC().Format(time.RFC3339), err)
	}
	return fmt.Errorf("certificate %q (serial %s) is not one of the %d trusted signing certificates",
		cert.Subject.String(), cert.SerialNumber.String(), len(ts.certs))
}
