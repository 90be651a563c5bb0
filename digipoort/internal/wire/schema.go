package wire

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// This file checks a request payload against the structure Logius' XSD gives it
// (digipoort-koppelvlak-1.2.xsd), without an XSD engine: the structure is derived from
// the request types of this package (their xml and xsd tags), and schema_test.go proves
// that what is derived equals the XSD, element by element, and that the check agrees
// with xmllint on valid and broken requests. Digipoort answers a request that breaks
// the XSD with the service's x100 fault ("voldoet niet aan de koppelvlakspecificaties");
// the simulator needs the check to do the same, and Go has no XSD validator without cgo.

// Simple types of the XSD that the request elements use.
const (
	TypeComplex          = "complex"
	TypeNormalizedString = "normalizedString" // whiteSpace collapse, maxLength in characters
	TypeDateTime         = "dateTime"
	TypeBase64Binary     = "base64Binary" // maxLength in decoded octets
	TypeAnyURI           = "anyURI"
)

// Unbounded is Element.MaxOccurs for maxOccurs="unbounded".
const Unbounded = -1

// Element is one element of a request as the XSD declares it: its name (in NS), how
// often it may occur, its type and, for a complex type, its children in sequence.
type Element struct {
	Name      string
	MinOccurs int
	MaxOccurs int
	Type      string
	MaxLength int // simple types; 0: no limit
	Children  []Element
}

// RequestElement is the name of the request element of an operation
// ("aanleverRequest" for aanleveren, op+"Request" for the others).
func RequestElement(op string) string {
	if op == OpAanleveren {
		return "aanleverRequest"
	}
	return op + "Request"
}

// requestTypes are the types whose fields make each operation's request element.
var requestTypes = map[string]reflect.Type{
	OpAanleveren:                reflect.TypeFor[AanleverRequest](),
	OpGetStatussenProces:        reflect.TypeFor[StatusWindowRequest](),
	OpGetNieuweStatussenProces:  reflect.TypeFor[StatusWindowRequest](),
	OpGetNieuweStatussen:        reflect.TypeFor[GetNieuweStatussenRequest](),
	OpGetBerichtsoorten:         reflect.TypeFor[GetBerichtsoortenRequest](),
	OpGetProcessen:              reflect.TypeFor[GetProcessenRequest](),
	OpGetBerichten:              reflect.TypeFor[GetBerichtenRequest](),
	OpGetNieuweBerichten:        reflect.TypeFor[GetBerichtenRequest](),
	OpGetBerichtenLijst:         reflect.TypeFor[GetBerichtenLijstRequest](),
	OpGetNieuweBerichtenLijst:   reflect.TypeFor[GetBerichtenLijstRequest](),
	OpGetBerichtenKenmerk:       reflect.TypeFor[GetBerichtenKenmerkRequest](),
	OpGetNieuweBerichtenKenmerk: reflect.TypeFor[GetBerichtenKenmerkRequest](),
}

var (
	schemaOnce sync.Once
	schemas    map[string]Element
	schemaErr  error
)

// RequestSchema returns the request element of an operation as derived from its Go
// type. It fails only when a request type's tags are wrong (a programming error that
// schema_test.go catches).
func RequestSchema(op string) (Element, error) {
	schemaOnce.Do(func() {
		schemas = map[string]Element{}
		for o, t := range requestTypes {
			children, err := fieldsOf(t)
			if err != nil {
				schemaErr = fmt.Errorf("wire: request type %s: %w", t.Name(), err)
				return
			}
			schemas[o] = Element{Name: RequestElement(o), MinOccurs: 1, MaxOccurs: 1, Type: TypeComplex, Children: children}
		}
	})
	if schemaErr != nil {
		return Element{}, schemaErr
	}
	e, ok := schemas[op]
	if !ok {
		return Element{}, fmt.Errorf("wire: no request schema for operation %q", op)
	}
	return e, nil
}

var (
	timeType     = reflect.TypeFor[Time]()
	xmlNameType  = reflect.TypeFor[xml.Name]()
	simpleByName = map[string]string{TypeNormalizedString: TypeNormalizedString, TypeBase64Binary: TypeBase64Binary, TypeAnyURI: TypeAnyURI}
)

// fieldsOf derives the child sequence of a struct: the xml tag gives name and order
// (omitempty or a pointer: minOccurs 0; a slice: maxOccurs unbounded), the xsd tag the
// simple type ("base64Binary", "anyURI"; default normalizedString) and "max=N".
func fieldsOf(t reflect.Type) ([]Element, error) {
	var out []Element
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == xmlNameType {
			continue
		}
		tag := f.Tag.Get("xml")
		if tag == "" || tag == "-" || strings.Contains(tag, ",any") || strings.Contains(tag, ",attr") {
			return nil, fmt.Errorf("field %s: request fields must be plain elements (xml tag %q)", f.Name, tag)
		}
		name, opts, _ := strings.Cut(tag, ",")
		e := Element{Name: name, MinOccurs: 1, MaxOccurs: 1}
		if strings.Contains(","+opts+",", ",omitempty,") {
			e.MinOccurs = 0
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			e.MinOccurs = 0
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			e.MaxOccurs = Unbounded
			ft = ft.Elem()
		}
		switch {
		case ft == timeType:
			e.Type = TypeDateTime
		case ft.Kind() == reflect.Struct:
			e.Type = TypeComplex
			children, err := fieldsOf(ft)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			e.Children = children
		case ft.Kind() == reflect.String:
			e.Type = TypeNormalizedString
			for _, part := range strings.Split(f.Tag.Get("xsd"), ",") {
				switch {
				case part == "":
				case strings.HasPrefix(part, "max="):
					n, err := strconv.Atoi(strings.TrimPrefix(part, "max="))
					if err != nil || n <= 0 {
						return nil, fmt.Errorf("field %s: xsd max %q is not a positive number", f.Name, part)
					}
					e.MaxLength = n
				case simpleByName[part] != "":
					e.Type = simpleByName[part]
				default:
					return nil, fmt.Errorf("field %s: unknown xsd tag part %q", f.Name, part)
				}
			}
			if e.MaxLength == 0 {
				return nil, fmt.Errorf("field %s: every text element of the XSD has a maxLength; give it xsd:\"max=N\"", f.Name)
			}
		default:
			return nil, fmt.Errorf("field %s: type %s has no XSD counterpart here", f.Name, ft)
		}
		out = append(out, e)
	}
	return out, nil
}

// Problem is the kind of a SchemaError.
type Problem string

const (
	ProblemNotXML      Problem = "not-xml"      // the payload is not well-formed XML
	ProblemNamespace   Problem = "namespace"    // an element is not in NS
	ProblemUnknown     Problem = "unknown"      // an element or attribute the XSD does not declare there
	ProblemOrder       Problem = "order"        // an element after one that must follow it
	ProblemMissing     Problem = "missing"      // a required element is absent
	ProblemTooMany     Problem = "too-many"     // an element more often than maxOccurs
	ProblemTooLong     Problem = "too-long"     // a value longer than maxLength
	ProblemInvalid     Problem = "invalid"      // a value that is not of its type (dateTime, base64Binary, anyURI)
	ProblemText        Problem = "text"         // text in an element that holds only elements, or an element in a text element
	ProblemWrongOpName Problem = "wrong-opname" // the root is not the operation's request element
)

// SchemaError says how a request payload breaks the XSD: the problem, the path of the
// element (e.g. "aanleverRequest/berichtInhoud/bestandsnaam") and what was found.
type SchemaError struct {
	Problem Problem
	Path    string
	Detail  string
	// Before names, for ProblemMissing, the element read where the missing one was
	// due (it may have come out of order rather than be absent).
	Before string
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("request does not match the koppelvlak 1.2 XSD (%s) at %s: %s", e.Problem, e.Path, e.Detail)
}

// ValidateRequest checks a request payload (the element in the SOAP Body, as
// Message.PayloadXML returns it) against the XSD structure of the operation: the root
// element, the namespace of every element, the order of the sequence, no undeclared
// elements or attributes, minOccurs/maxOccurs, maxLength and the lexical form of
// dateTime, base64Binary and anyURI. It returns a *SchemaError, or nil.
func ValidateRequest(op string, payload []byte) error {
	schema, err := RequestSchema(op)
	if err != nil {
		return err
	}
	d := xml.NewDecoder(bytes.NewReader(payload))
	for {
		tok, err := d.Token()
		if err != nil {
			return &SchemaError{Problem: ProblemNotXML, Path: "/", Detail: fmt.Sprintf("no request element: %v", err)}
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if start.Name.Space != NS || start.Name.Local != schema.Name {
			return &SchemaError{Problem: ProblemWrongOpName, Path: "/",
				Detail: fmt.Sprintf("the root element is {%s}%s, operation %s takes {%s}%s", start.Name.Space, start.Name.Local, op, NS, schema.Name)}
		}
		if err := validateElement(d, start, schema, schema.Name); err != nil {
			return err
		}
		// Nothing but whitespace, comments and processing instructions may follow.
		for {
			tok, err := d.Token()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return &SchemaError{Problem: ProblemNotXML, Path: "/", Detail: err.Error()}
			}
			switch t := tok.(type) {
			case xml.StartElement:
				return &SchemaError{Problem: ProblemUnknown, Path: "/", Detail: "a second element " + t.Name.Local + " after the request element"}
			case xml.CharData:
				if len(bytes.TrimSpace(t)) > 0 {
					return &SchemaError{Problem: ProblemText, Path: "/", Detail: "text after the request element"}
				}
			}
		}
	}
}

const nsXSI = "http://www.w3.org/2001/XMLSchema-instance"

func checkAttrs(start xml.StartElement, path string) error {
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns"):
		case a.Name.Space == nsXSI && (a.Name.Local == "schemaLocation" || a.Name.Local == "noNamespaceSchemaLocation"):
		default:
			return &SchemaError{Problem: ProblemUnknown, Path: path, Detail: fmt.Sprintf("attribute %s is not declared", attrName(a.Name))}
		}
	}
	return nil
}

func attrName(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return "{" + n.Space + "}" + n.Local
}

// validateElement checks the element whose start tag was just read, up to and
// including its end tag.
func validateElement(d *xml.Decoder, start xml.StartElement, e Element, path string) error {
	if err := checkAttrs(start, path); err != nil {
		return err
	}
	if e.Type != TypeComplex {
		return validateSimple(d, e, path)
	}
	idx, count := 0, 0 // position in e.Children and occurrences of e.Children[idx] so far
	// missing checks that the children from idx up to (not including) upTo occurred
	// often enough; found names the element that was read instead, if any.
	missing := func(upTo int, found string) error {
		detail := "required element is missing"
		if found != "" {
			detail += "; it must come before " + found
		}
		if idx < len(e.Children) && count < e.Children[idx].MinOccurs {
			return &SchemaError{Problem: ProblemMissing, Path: path + "/" + e.Children[idx].Name, Detail: detail, Before: found}
		}
		for k := idx + 1; k < upTo; k++ {
			if e.Children[k].MinOccurs > 0 {
				return &SchemaError{Problem: ProblemMissing, Path: path + "/" + e.Children[k].Name, Detail: detail, Before: found}
			}
		}
		return nil
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return &SchemaError{Problem: ProblemNotXML, Path: path, Detail: err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			cpath := path + "/" + t.Name.Local
			j := -1
			for k := idx; k < len(e.Children); k++ {
				if e.Children[k].Name == t.Name.Local {
					j = k
					break
				}
			}
			declared := func() bool {
				for _, c := range e.Children {
					if c.Name == t.Name.Local {
						return true
					}
				}
				return false
			}
			switch {
			case t.Name.Space != NS && declared():
				ns := t.Name.Space
				if ns == "" {
					ns = "no namespace"
				}
				return &SchemaError{Problem: ProblemNamespace, Path: cpath, Detail: fmt.Sprintf("element is in %s, the XSD puts it in %s", ns, NS)}
			case t.Name.Space != NS || !declared():
				return &SchemaError{Problem: ProblemUnknown, Path: cpath, Detail: fmt.Sprintf("element {%s}%s is not declared here", t.Name.Space, t.Name.Local)}
			case j < 0:
				return &SchemaError{Problem: ProblemOrder, Path: cpath, Detail: "element comes after " + e.Children[idx].Name + ", the XSD sequence has it before"}
			case j == idx:
				count++
			default:
				if err := missing(j, t.Name.Local); err != nil {
					return err
				}
				idx, count = j, 1
			}
			if c := e.Children[idx]; c.MaxOccurs != Unbounded && count > c.MaxOccurs {
				return &SchemaError{Problem: ProblemTooMany, Path: cpath, Detail: fmt.Sprintf("element occurs more than %d time(s)", c.MaxOccurs)}
			}
			if err := validateElement(d, t, e.Children[idx], cpath); err != nil {
				return err
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return &SchemaError{Problem: ProblemText, Path: path, Detail: "text in an element that holds only elements"}
			}
		case xml.EndElement:
			return missing(len(e.Children), "")
		}
	}
}

func validateSimple(d *xml.Decoder, e Element, path string) error {
	var text []byte
	for {
		tok, err := d.Token()
		if err != nil {
			return &SchemaError{Problem: ProblemNotXML, Path: path, Detail: err.Error()}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &SchemaError{Problem: ProblemText, Path: path + "/" + t.Name.Local, Detail: "an element inside a text element"}
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			return checkValue(e, path, text)
		}
	}
}

// collapse applies XSD whiteSpace="collapse": runs of whitespace become one space,
// leading and trailing whitespace go.
func collapse(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }

var dateTimeRE = regexp.MustCompile(`^-?(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?$`)

func checkValue(e Element, path string, text []byte) error {
	tooLong := func(n int, unit string) error {
		return &SchemaError{Problem: ProblemTooLong, Path: path, Detail: fmt.Sprintf("%d %s, at most %d allowed", n, unit, e.MaxLength)}
	}
	switch e.Type {
	case TypeNormalizedString, TypeAnyURI:
		v := collapse(text)
		if n := utf8.RuneCountInString(v); e.MaxLength > 0 && n > e.MaxLength {
			return tooLong(n, "characters")
		}
		if e.Type == TypeAnyURI {
			if _, err := url.Parse(v); err != nil {
				return &SchemaError{Problem: ProblemInvalid, Path: path, Detail: "not an anyURI: " + err.Error()}
			}
		}
	case TypeDateTime:
		v := collapse(text)
		m := dateTimeRE.FindStringSubmatch(v)
		if m == nil {
			return &SchemaError{Problem: ProblemInvalid, Path: path, Detail: fmt.Sprintf("%q is not an xsd:dateTime", v)}
		}
		if _, err := time.Parse("2006-01-02T15:04:05", fmt.Sprintf("%04s-%s-%sT%s:%s:%s", m[1], m[2], m[3], m[4], m[5], m[6])); err != nil {
			return &SchemaError{Problem: ProblemInvalid, Path: path, Detail: fmt.Sprintf("%q is not an xsd:dateTime: %v", v, err)}
		}
	case TypeBase64Binary:
		n, err := base64Length(text)
		if err != nil {
			return &SchemaError{Problem: ProblemInvalid, Path: path, Detail: "not base64Binary: " + err.Error()}
		}
		if e.MaxLength > 0 && n > e.MaxLength {
			return tooLong(n, "octets")
		}
	}
	return nil
}

// base64Length checks the lexical form of xsd:base64Binary (the standard alphabet,
// whitespace allowed between characters, padding only at the end) and returns the
// decoded length, without decoding 27 MiB to count 20.
func base64Length(text []byte) (int, error) {
	n, pad := 0, 0
	for _, c := range text {
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		case c == '=':
			pad++
			if pad > 2 {
				return 0, errors.New("more than two padding characters")
			}
		case pad > 0:
			return 0, errors.New("characters after padding")
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		default:
			return 0, fmt.Errorf("character %q is not in the base64 alphabet", c)
		}
		n++
	}
	if n%4 != 0 {
		return 0, fmt.Errorf("%d characters, not a multiple of 4", n)
	}
	return n/4*3 - pad, nil
}
