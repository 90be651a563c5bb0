package wsse

import (
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// Errors returned by Parse and Verify; test with errors.Is.
var (
	// ErrMalformed: the bytes are not a SOAP 1.1 envelope of the expected shape.
	ErrMalformed = errors.New("malformed SOAP envelope")
	// ErrUnsigned: the envelope carries no WS-Security signature.
	ErrUnsigned = errors.New("envelope is not signed")
	// ErrSignature: a digest or the signature value does not match; the message was
	// changed after signing or signed with another key.
	ErrSignature = errors.New("signature does not verify")
	// ErrUntrusted: the signature is valid but the signing certificate is not trusted.
	ErrUntrusted = errors.New("signing certificate is not trusted")
	// ErrTimestamp: the WS-Security timestamp is missing, expired or from the future.
	ErrTimestamp = errors.New("security timestamp not acceptable")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Addressing holds the WS-Addressing headers of an envelope.
type Addressing struct {
	To        string
	Action    string
	MessageID string
	RelatesTo string
	// ReplyTo is the address in wsa:ReplyTo/wsa:Address; on building, a non-empty
	// value adds the header (Digipoort only accepts the anonymous address).
	ReplyTo string
}

// Fault is a SOAP 1.1 fault with Digipoort's detail (aanleverFault,
// statusinformatieFault, ophaalFault: foutcode and foutbeschrijving).
type Fault struct {
	Code   string // faultcode, e.g. "soapenv:Client"
	String string // faultstring, e.g. "Algemene fout"
	Actor  string // faultactor
	// Detail is the local name of the detail element (e.g. "aanleverFault"); empty
	// when the fault has no Digipoort detail.
	Detail           string
	Foutcode         string
	Foutbeschrijving string
}

// CodeLocal returns the local part of the fault code ("Client", "Server", ...).
func (f *Fault) CodeLocal() string {
	if i := strings.LastIndexByte(f.Code, ':'); i >= 0 {
		return f.Code[i+1:]
	}
	return f.Code
}

// Message is a parsed envelope. Its payload must not be trusted before Verify
// succeeded (faults are never signed by Digipoort and are returned unverified).
type Message struct {
	Addressing Addressing
	// Fault is set when the Body holds a SOAP fault.
	Fault *Fault

	doc      *etree.Document
	envelope *etree.Element
	header   *etree.Element
	body     *etree.Element
	payload  *etree.Element
	security *etree.Element
	wsa      []*etree.Element // the addressing header elements
	ids      map[string][]*etree.Element
}

// MaxDepth bounds the nesting depth Parse accepts.
const MaxDepth = 64

// Parse reads a SOAP 1.1 envelope and checks its structure: one Envelope root with at
// most one Header and exactly one Body holding at most one element, declared
// namespace prefixes, no DTD and no duplicate attributes. It records every ID; Verify
// refuses a reference to an ID that more than one element carries. It does not check
// signatures; see Verify. Until Verify succeeded, nothing Parse read (Addressing
// included) may be trusted.
func Parse(data []byte) (*Message, error) {
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{PreserveDuplicateAttrs: true, MaxDepth: MaxDepth}
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, malformed("not well-formed XML: %v", err)
	}
	var root *etree.Element
	for _, t := range doc.Child {
		switch t := t.(type) {
		case *etree.Element:
			if root != nil {
				return nil, malformed("more than one root element")
			}
			root = t
		case *etree.Directive:
			return nil, malformed("DTD/directive not allowed")
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, malformed("text outside the root element")
			}
		}
	}
	if root == nil {
		return nil, malformed("no root element")
	}
	m := &Message{doc: doc, envelope: root, ids: map[string][]*etree.Element{}}
	if err := m.index(root, nsScope{}); err != nil {
		return nil, err
	}
	if !is(root, NSSoap, "Envelope") {
		return nil, malformed("root is {%s}%s, want a SOAP 1.1 Envelope", root.NamespaceURI(), root.Tag)
	}
	for _, c := range root.ChildElements() {
		switch {
		case is(c, NSSoap, "Header") && m.header == nil && m.body == nil:
			m.header = c
		case is(c, NSSoap, "Body") && m.body == nil:
			m.body = c
		default:
			return nil, malformed("unexpected element %s in Envelope", c.FullTag())
		}
	}
	if m.body == nil {
		return nil, malformed("no Body")
	}
	if err := m.readHeader(); err != nil {
		return nil, err
	}
	for _, t := range m.body.Child {
		switch t := t.(type) {
		case *etree.Element:
			if m.payload != nil {
				return nil, malformed("Body holds more than one element")
			}
			m.payload = t
		case *etree.CharData:
			if !t.IsWhitespace() {
				return nil, malformed("text in Body")
			}
		}
	}
	if m.payload != nil && is(m.payload, NSSoap, "Fault") {
		f, err := parseFault(m.payload)
		if err != nil {
			return nil, err
		}
		m.Fault = f
	}
	return m, nil
}

// index walks the tree: checks that every prefix is declared, that no element has the
// same attribute twice, and records every ID attribute (wsu:Id, Id, ID, xml:id).
func (m *Message) index(el *etree.Element, scope nsScope) error {
	scope = scope.child(el)
	if _, ok := scope.lookup(el.Space); !ok {
		return malformed("undeclared namespace prefix %q on %s", el.Space, el.Tag)
	}
	seen := make(map[[2]string]bool, len(el.Attr))
	for _, a := range el.Attr {
		var uri string
		if a.Space != "" && a.Space != "xmlns" {
			u, ok := scope.lookup(a.Space)
			if !ok {
				return malformed("undeclared namespace prefix %q on attribute %s", a.Space, a.Key)
			}
			uri = u
		} else if a.Space == "xmlns" {
			uri = "xmlns"
		}
		k := [2]string{uri, a.Key}
		if a.Space == "" && a.Key == "xmlns" {
			k = [2]string{"xmlns", ""}
		}
		if seen[k] {
			return malformed("duplicate attribute %s on %s", a.FullKey(), el.FullTag())
		}
		seen[k] = true
		if isIDAttr(uri, a.Key) {
			m.ids[a.Value] = append(m.ids[a.Value], el)
		}
	}
	for _, c := range el.ChildElements() {
		if err := m.index(c, scope); err != nil {
			return err
		}
	}
	return nil
}

func isIDAttr(uri, key string) bool {
	switch {
	case uri == NSWSU && key == "Id":
		return true
	case uri == "" && (key == "Id" || key == "ID" || key == "id"):
		return true
	case uri == "http://www.w3.org/XML/1998/namespace" && key == "id":
		return true
	}
	return false
}

func (m *Message) readHeader() error {
	if m.header == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, h := range m.header.ChildElements() {
		switch {
		case is(h, NSWSSE, "Security"):
			if m.security != nil {
				return malformed("more than one wsse:Security header")
			}
			m.security = h
		case h.NamespaceURI() == NSWSA:
			if seen[h.Tag] {
				return malformed("duplicate wsa:%s header", h.Tag)
			}
			seen[h.Tag] = true
			m.wsa = append(m.wsa, h)
		default:
			if mu := attrNS(h, NSSoap, "mustUnderstand"); mu == "1" || mu == "true" {
				return malformed("header %s must be understood but is not known", h.FullTag())
			}
		}
	}
	a, err := readAddressing(m.wsa)
	if err != nil {
		return err
	}
	m.Addressing = a
	return nil
}

// relationshipReply is the default (and the only meaningful) wsa:RelatesTo relationship
// for a response: "this is the reply to that message".
const relationshipReply = "http://www.w3.org/2005/08/addressing/reply"

// readAddressing reads the values of the given addressing header elements (direct
// children of soapenv:Header, one per name).
func readAddressing(headers []*etree.Element) (Addressing, error) {
	var a Addressing
	for _, h := range headers {
		var dst *string
		switch h.Tag {
		case "To":
			dst = &a.To
		case "Action":
			dst = &a.Action
		case "MessageID":
			dst = &a.MessageID
		case "RelatesTo":
			if rt, ok := attrPlain(h, "RelationshipType"); ok && strings.TrimSpace(rt) != relationshipReply {
				return a, malformed("wsa:RelatesTo has RelationshipType %q; only a reply relationship links a response to its request", rt)
			}
			dst = &a.RelatesTo
		case "ReplyTo":
			if addr := childNS(h, NSWSA, "Address"); addr != nil {
				dst = &a.ReplyTo
				h = addr
			}
		}
		if dst == nil {
			continue
		}
		v, err := textOnly(h)
		if err != nil {
			return a, err
		}
		*dst = v
	}
	return a, nil
}

// textOnly returns the trimmed text of an element that may hold only text (and
// comments, which canonicalisation drops as well). An element child or processing
// instruction is refused: etree's Text stops at the first one, so the value read
// would be a prefix of what was signed.
func textOnly(el *etree.Element) (string, error) {
	var b strings.Builder
	for _, t := range el.Child {
		switch t := t.(type) {
		case *etree.CharData:
			b.WriteString(t.Data)
		case *etree.Comment:
		default:
			return "", malformed("%s may hold only text", el.FullTag())
		}
	}
	return strings.TrimSpace(b.String()), nil
}

func parseFault(el *etree.Element) (*Fault, error) {
	f := &Fault{}
	for _, c := range el.ChildElements() {
		switch c.Tag {
		case "faultcode":
			f.Code = strings.TrimSpace(c.Text())
		case "faultstring":
			f.String = c.Text()
		case "faultactor":
			f.Actor = strings.TrimSpace(c.Text())
		case "detail":
			for _, d := range c.ChildElements() {
				if f.Detail != "" {
					break
				}
				code := childLocal(d, "foutcode")
				if code == nil {
					continue
				}
				f.Detail = d.Tag
				f.Foutcode = strings.TrimSpace(code.Text())
				if b := childLocal(d, "foutbeschrijving"); b != nil {
					f.Foutbeschrijving = b.Text()
				}
			}
		}
	}
	if f.Code == "" {
		return nil, malformed("fault without faultcode")
	}
	return f, nil
}

// Payload returns the element in the Body (nil for an empty Body). For a signed
// message, use it only after Verify succeeded.
func (m *Message) Payload() *etree.Element { return m.payload }

// PayloadXML serialises the Body's element with the namespaces in scope declared on
// it, ready for encoding/xml. For a signed message, use it only after Verify.
func (m *Message) PayloadXML() ([]byte, error) {
	if m.payload == nil {
		return nil, malformed("empty Body")
	}
	doc := etree.NewDocument()
	doc.SetRoot(detach(m.payload))
	doc.WriteSettings = etree.WriteSettings{CanonicalText: true, CanonicalAttrVal: true}
	return doc.WriteToBytes()
}

// Signed reports whether the envelope has a WS-Security header with a signature.
func (m *Message) Signed() bool {
	return m.security != nil && childNS(m.security, NSDSig, "Signature") != nil
}

func is(el *etree.Element, ns, local string) bool {
	return el != nil && el.Tag == local && el.NamespaceURI() == ns
}

func childNS(el *etree.Element, ns, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			return c
		}
	}
	return nil
}

func childrenNS(el *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

func childLocal(el *etree.Element, local string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == local {
			return c
		}
	}
	return nil
}

// attrNS returns the value of the attribute {ns}local of el.
func attrNS(el *etree.Element, ns, local string) string {
	for i := range el.Attr {
		a := &el.Attr[i]
		if a.Key == local && a.Space != "" && a.Space != "xmlns" && a.NamespaceURI() == ns {
			return a.Value
		}
	}
	return ""
}

// attrPlain returns the value of the unqualified attribute local of el.
func attrPlain(el *etree.Element, local string) (string, bool) {
	for _, a := range el.Attr {
		if a.Space == "" && a.Key == local {
			return a.Value, true
		}
	}
	return "", false
}

// idOf returns the wsu:Id (or Id) of el.
func idOf(el *etree.Element) string {
	if v := attrNS(el, NSWSU, "Id"); v != "" {
		return v
	}
	for _, k := range []string{"Id", "ID", "id"} {
		if v, ok := attrPlain(el, k); ok {
			return v
		}
	}
	return ""
}
