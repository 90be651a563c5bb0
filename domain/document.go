package domain

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DocumentKind is what the first file of a message (berichtInhoud) must be.
type DocumentKind string

const (
	// DocumentXBRL is an XBRL instance: the returns of the Belastingdienst's SBR
	// processes (VAT, VAT correction, ICP, income and corporate tax) and KvK filings.
	DocumentXBRL DocumentKind = "xbrl"
	// DocumentXML is an XML document of another kind: the payroll return is XML of the
	// Belastingdienst's own schema, not XBRL.
	DocumentXML DocumentKind = "xml"
)

// XBRLInstanceNamespace is the namespace of an XBRL instance's root element xbrl
// (XBRL 2.1; conventionally prefixed xbrli).
const XBRLInstanceNamespace = "http://www.xbrl.org/2003/instance"

// Describe says what a document of this kind is, for errors and `starter types`.
func (k DocumentKind) Describe() string {
	if k == DocumentXBRL {
		return "an XBRL instance (root element xbrli:xbrl in namespace " + XBRLInstanceNamespace + ")"
	}
	return "an XML document"
}

// CheckDocument checks that the first file of a message of type typ is the document
// the type expects, before it is stored: a picture or a PDF queued as a VAT return
// would otherwise be delivered and fail at Digipoort (or worse, at the authority) days
// later. The error says what the file was found to be.
func CheckDocument(kind DocumentKind, typ MessageType, a Attachment) error {
	want := kind.Describe()
	if !a.IsXML() {
		return fmt.Errorf("the first file %s of a %s message must be %s with mime type text/xml or application/xml, but it is declared as %s",
			a.FileName, typ, want, orNone(a.MimeType))
	}
	found, root, err := rootElement(a.Content)
	if err != nil {
		return fmt.Errorf("the first file %s of a %s message must be %s, but it %s", a.FileName, typ, want, found)
	}
	if kind == DocumentXBRL && (root.Space != XBRLInstanceNamespace || root.Local != "xbrl") {
		return fmt.Errorf("the first file %s of a %s message must be %s, but its root element is %s", a.FileName, typ, want, describeName(root))
	}
	return nil
}

// rootElement returns the root element's name; otherwise what the content looks like
// instead, and an error.
func rootElement(content []byte) (found string, root xml.Name, err error) {
	if sniffed := http.DetectContentType(content); !strings.Contains(sniffed, "xml") && !strings.HasPrefix(sniffed, "text/") {
		return fmt.Sprintf("looks like %s, not XML", sniffed), root, errors.New("not XML")
	}
	if !utf8.Valid(content) {
		return "is not valid UTF-8, so not XML Digipoort takes", root, errors.New("not UTF-8")
	}
	dec := xml.NewDecoder(bytes.NewReader(content))
	dec.Strict = true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return "has no root element", root, errors.New("no root element")
		}
		if err != nil {
			line, _ := dec.InputPos()
			return fmt.Sprintf("is not well-formed XML (line %d: %v)", line, err), root, err
		}
		if se, ok := tok.(xml.StartElement); ok {
			return "", se.Name, nil
		}
	}
}

func describeName(n xml.Name) string {
	if n.Space == "" {
		return "<" + n.Local + "> in no namespace"
	}
	return fmt.Sprintf("<%s> in namespace %s", n.Local, n.Space)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
