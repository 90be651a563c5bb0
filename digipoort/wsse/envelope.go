package wsse

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
)

// Layout chooses the prefixes and ID style of a signed envelope. Both are valid
// WS-Security; the Digipoort layout reproduces byte-for-byte the shape of Digipoort's
// own responses (see shared/digipoort/fixtures/valid-deliver-response.xml): prefixes
// s/u on the Security header, a default-namespace ds:Signature, wsu declared on every
// signed header, IDs w_N and a SecurityTokenReference carrying xmlns="". The
// simulator signs with it so that clients are exercised against the real shape.
type Layout int

const (
	LayoutClient Layout = iota
	LayoutDigipoort
)

// Credentials sign an envelope.
type Credentials struct {
	Certificate *x509.Certificate
	Key         crypto.Signer // must hold an RSA key for the RSA algorithms
}

// SignOptions configure SignedEnvelope.
type SignOptions struct {
	Algorithm Algorithm
	Layout    Layout
	// Created is the Timestamp's creation time (zero: now); TTL sets Expires
	// (zero: 5 minutes).
	Created time.Time
	TTL     time.Duration
}

var idCounter atomic.Int64

// SignedEnvelope builds a SOAP 1.1 envelope around payload (which becomes the single
// child of Body; nil leaves Body empty) with the WS-Addressing headers of addr and a
// WS-Security header: Timestamp, the certificate as BinarySecurityToken and a
// signature over Timestamp, every addressing header and Body.
func SignedEnvelope(payload *etree.Element, addr Addressing, creds Credentials, opts SignOptions) ([]byte, error) {
	if creds.Certificate == nil || creds.Key == nil {
		return nil, fmt.Errorf("wsse: signing needs a certificate and its private key")
	}
	sigURI, digestURI, hash, err := opts.Algorithm.uris()
	if err != nil {
		return nil, err
	}
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	dp := opts.Layout == LayoutDigipoort

	var nextID func(kind string) string
	if dp {
		n := idCounter.Add(10) - 10
		nextID = func(string) string { n++; return "w_" + strconv.FormatInt(n, 10) }
	} else {
		nextID = func(kind string) string { return kind + "-" + uuid.NewString() }
	}

	doc := etree.NewDocument()
	env := doc.CreateElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", NSSoap)
	env.CreateAttr("xmlns:wsa", NSWSA)
	if !dp {
		env.CreateAttr("xmlns:wsse", NSWSSE)
		env.CreateAttr("xmlns:wsu", NSWSU)
		env.CreateAttr("xmlns:ds", NSDSig)
	}
	header := env.CreateElement("soapenv:Header")

	// Security header with Timestamp and BinarySecurityToken.
	var sec, ts *etree.Element
	tokenID := "X509-" + uuid.NewString()
	if dp {
		tokenID = "SecurityToken-" + uuid.NewString()
		sec = header.CreateElement("s:Security")
		sec.CreateAttr("soapenv:mustUnderstand", "1")
		sec.CreateAttr("xmlns:d", NSDSig)
		sec.CreateAttr("xmlns:s", NSWSSE)
		sec.CreateAttr("xmlns:u", NSWSU)
		sec.CreateAttr("xmlns:x", NSExcC14N)
		ts = sec.CreateElement("u:Timestamp")
		ts.CreateAttr("u:Id", nextID("TS"))
		ts.CreateElement("u:Created").SetText(xsdTime(created))
		ts.CreateElement("u:Expires").SetText(xsdTime(created.Add(ttl)))
		bst := sec.CreateElement("wsse:BinarySecurityToken")
		bst.CreateAttr("wsu:Id", tokenID)
		bst.CreateAttr("EncodingType", EncodingBase64)
		bst.CreateAttr("ValueType", ValueTypeX509v3)
		bst.CreateAttr("xmlns:wsu", NSWSU)
		bst.CreateAttr("xmlns:wsse", NSWSSE)
		bst.SetText(base64.StdEncoding.EncodeToString(creds.Certificate.Raw))
	} else {
		sec = header.CreateElement("wsse:Security")
		sec.CreateAttr("soapenv:mustUnderstand", "1")
		ts = sec.CreateElement("wsu:Timestamp")
		ts.CreateAttr("wsu:Id", nextID("TS"))
		ts.CreateElement("wsu:Created").SetText(xsdTime(created))
		ts.CreateElement("wsu:Expires").SetText(xsdTime(created.Add(ttl)))
		bst := sec.CreateElement("wsse:BinarySecurityToken")
		bst.CreateAttr("EncodingType", EncodingBase64)
		bst.CreateAttr("ValueType", ValueTypeX509v3)
		bst.CreateAttr("wsu:Id", tokenID)
		bst.SetText(base64.StdEncoding.EncodeToString(creds.Certificate.Raw))
	}

	// Addressing headers, each with an ID.
	signedEls := []*etree.Element{ts}
	addHeader := func(name, value string) *etree.Element {
		h := header.CreateElement("wsa:" + name)
		h.CreateAttr("wsu:Id", nextID("id-"+name))
		if dp {
			h.CreateAttr("xmlns:wsu", NSWSU)
		}
		if name == "ReplyTo" {
			h.CreateElement("wsa:Address").SetText(value)
		} else {
			h.SetText(value)
		}
		signedEls = append(signedEls, h)
		return h
	}
	if dp {
		// Digipoort's order: To, MessageID, Action, RelatesTo.
		addOpt(addHeader, "To", addr.To)
		addOpt(addHeader, "MessageID", addr.MessageID)
		addOpt(addHeader, "Action", addr.Action)
		addOpt(addHeader, "RelatesTo", addr.RelatesTo)
		addOpt(addHeader, "ReplyTo", addr.ReplyTo)
	} else {
		addOpt(addHeader, "Action", addr.Action)
		addOpt(addHeader, "MessageID", addr.MessageID)
		addOpt(addHeader, "To", addr.To)
		addOpt(addHeader, "RelatesTo", addr.RelatesTo)
		addOpt(addHeader, "ReplyTo", addr.ReplyTo)
	}

	body := env.CreateElement("soapenv:Body")
	bodyID := nextID("id-Body")
	body.CreateAttr("wsu:Id", bodyID)
	if dp {
		body.CreateAttr("xmlns:wsu", NSWSU)
		// Digipoort lists the Body last.
	}
	if payload != nil {
		body.AddChild(payload)
	}
	if dp {
		signedEls = append(signedEls, body)
	} else {
		signedEls = append([]*etree.Element{body}, signedEls...)
	}

	// Signature.
	var sig, si *etree.Element
	p := "ds:"
	if dp {
		p = ""
		sig = sec.CreateElement("Signature")
		sig.CreateAttr("xmlns", NSDSig)
	} else {
		sig = sec.CreateElement("ds:Signature")
	}
	// ws adds the indentation Digipoort's own signatures carry (text nodes inside
	// SignedInfo are part of what is signed); the client layout has none.
	ws := func(el *etree.Element, text string) {
		if dp {
			el.CreateText(text)
		}
	}
	ws(sig, "\n")
	si = sig.CreateElement(p + "SignedInfo")
	ws(si, "\n  ")
	si.CreateElement(p+"CanonicalizationMethod").CreateAttr("Algorithm", algExcC14N)
	ws(si, "\n  ")
	si.CreateElement(p+"SignatureMethod").CreateAttr("Algorithm", sigURI)
	dh, ok := digestHash(digestURI)
	if !ok {
		return nil, fmt.Errorf("wsse: digest %s", digestURI)
	}
	for _, el := range signedEls {
		d, err := digest(el, "", dh)
		if err != nil {
			return nil, fmt.Errorf("wsse: canonicalizing %s: %w", el.Tag, err)
		}
		ws(si, "\n  ")
		ref := si.CreateElement(p + "Reference")
		ref.CreateAttr("URI", "#"+idOf(el))
		ws(ref, "\n    ")
		trs := ref.CreateElement(p + "Transforms")
		ws(trs, "\n      ")
		trs.CreateElement(p+"Transform").CreateAttr("Algorithm", algExcC14N)
		ws(trs, "\n    ")
		ws(ref, "\n    ")
		ref.CreateElement(p+"DigestMethod").CreateAttr("Algorithm", digestURI)
		ws(ref, "\n    ")
		ref.CreateElement(p + "DigestValue").SetText(base64.StdEncoding.EncodeToString(d))
		ws(ref, "\n  ")
	}
	ws(si, "\n")
	canonical, err := canonicalize(si, "")
	if err != nil {
		return nil, fmt.Errorf("wsse: canonicalizing SignedInfo: %w", err)
	}
	h := hash.New()
	h.Write(canonical)
	sigValue, err := creds.Key.Sign(rand.Reader, h.Sum(nil), hash)
	if err != nil {
		return nil, fmt.Errorf("wsse: signing: %w", err)
	}
	ws(sig, "\n    ")
	sig.CreateElement(p + "SignatureValue").SetText(base64.StdEncoding.EncodeToString(sigValue))
	ki := sig.CreateElement(p + "KeyInfo")
	str := ki.CreateElement("wsse:SecurityTokenReference")
	if dp {
		str.CreateAttr("xmlns:wsse", NSWSSE)
		str.CreateAttr("xmlns", "")
	}
	r := str.CreateElement("wsse:Reference")
	r.CreateAttr("URI", "#"+tokenID)
	r.CreateAttr("ValueType", ValueTypeX509v3)

	return write(doc)
}

func addOpt(add func(name, value string) *etree.Element, name, value string) {
	if value != "" {
		add(name, value)
	}
}

// FaultEnvelope builds the unsigned fault envelope Digipoort sends: addressing headers
// without IDs, a soapenv:Fault with faultcode, faultstring, faultactor and a detail
// element (f.Detail, e.g. "aanleverFault") in the koppelvlak namespace holding
// foutcode and foutbeschrijving.
func FaultEnvelope(addr Addressing, f Fault, detailNS string) ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soapenv:Envelope")
	env.CreateAttr("xmlns:soapenv", NSSoap)
	env.CreateAttr("xmlns:wsa", NSWSA)
	header := env.CreateElement("soapenv:Header")
	for _, h := range [][2]string{{"To", addr.To}, {"MessageID", addr.MessageID}, {"Action", addr.Action}, {"RelatesTo", addr.RelatesTo}} {
		if h[1] != "" {
			header.CreateElement("wsa:" + h[0]).SetText(h[1])
		}
	}
	fault := env.CreateElement("soapenv:Body").CreateElement("soapenv:Fault")
	fault.CreateElement("faultcode").SetText(f.Code)
	fault.CreateElement("faultstring").SetText(f.String)
	if f.Actor != "" {
		fault.CreateElement("faultactor").SetText(f.Actor)
	}
	if f.Detail != "" {
		d := fault.CreateElement("detail").CreateElement("fault:" + f.Detail)
		d.CreateAttr("xmlns:fault", detailNS)
		d.CreateElement("fault:foutcode").SetText(f.Foutcode)
		d.CreateElement("fault:foutbeschrijving").SetText(f.Foutbeschrijving)
	}
	return write(doc)
}

func write(doc *etree.Document) ([]byte, error) {
	// Canonical escaping keeps \r and tabs in text and attributes intact through a
	// parse, so what was signed is what the receiver canonicalises.
	doc.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	return doc.WriteToBytes()
}

func xsdTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
