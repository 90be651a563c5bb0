package domain

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// node is one element of a parsed document. A tree, rather than xml.Unmarshal into
// structs, lets the checks name the path of what is wrong and look at every amount.
type node struct {
	name xml.Name
	attr []xml.Attr
	text strings.Builder
	kids []*node
	line int
}

func (n *node) value() string { return strings.TrimSpace(n.text.String()) }

// xmlLimits bound what readXMLTree takes in, so that a hostile or mistaken file cannot
// exhaust memory. Each document kind sets its own.
type xmlLimits struct {
	bytes, elements, depth int
}

// xmlProblem is what readXMLTree found wrong. The callers' rules and advice differ per
// kind of document; what went wrong does not.
type xmlProblem int

const (
	xmlTooLarge    xmlProblem = iota + 1 // more bytes than the limit
	xmlEmpty                             // nothing but white space
	xmlNotUTF8                           // not UTF-8 text
	xmlMalformed                         // the decoder's error at Line
	xmlDeclaration                       // a <!…> declaration (DOCTYPE, ENTITY) at Line
	xmlTooBig                            // more elements or deeper nesting than the limits, at Line
	xmlSecondRoot                        // a second root element, Name, at Line
	xmlStrayText                         // text outside the root element at Line
	xmlNoElement                         // no element at all
	xmlUnclosed                          // the file ends inside element Name
)

// xmlTreeError says what went wrong and where. Its text is the finding without advice;
// callers add what to do in their own terms.
type xmlTreeError struct {
	Problem xmlProblem
	Line    int
	Name    string // the element (second root, unclosed) or declaration keyword
	Size    int    // the file's length, for xmlTooLarge
	Limits  xmlLimits
	Err     error // the decoder's error, for xmlMalformed
}

func (e *xmlTreeError) Error() string {
	switch e.Problem {
	case xmlTooLarge:
		return fmt.Sprintf("the file is %d bytes, at most %d are accepted", e.Size, e.Limits.bytes)
	case xmlEmpty:
		return "the file is empty"
	case xmlNotUTF8:
		return "the file is not UTF-8 text"
	case xmlMalformed:
		return fmt.Sprintf("the file is not well-formed XML at line %d: %v", e.Line, e.Err)
	case xmlDeclaration:
		return fmt.Sprintf("line %d has a <!%s> declaration", e.Line, e.Name)
	case xmlTooBig:
		return fmt.Sprintf("the document has more than %d elements or is nested deeper than %d (line %d)", e.Limits.elements, e.Limits.depth, e.Line)
	case xmlSecondRoot:
		return fmt.Sprintf("line %d starts a second root element <%s>", e.Line, e.Name)
	case xmlStrayText:
		return fmt.Sprintf("line %d has text outside the root element", e.Line)
	case xmlNoElement:
		return "the file has no XML element"
	case xmlUnclosed:
		return fmt.Sprintf("the file ends before <%s> is closed: the file is cut off", e.Name)
	}
	return fmt.Sprintf("unknown XML problem %d", e.Problem)
}

func (e *xmlTreeError) Unwrap() error { return e.Err }

// readXMLTree reads content, less a UTF-8 byte-order mark, into a tree: one well-formed
// UTF-8 XML document without a DOCTYPE, within lim. It returns the root element.
func readXMLTree(content []byte, lim xmlLimits) (*node, *xmlTreeError) {
	size := len(content)
	fail := func(p xmlProblem, line int, name string) (*node, *xmlTreeError) {
		return nil, &xmlTreeError{Problem: p, Line: line, Name: name, Size: size, Limits: lim}
	}
	if size > lim.bytes {
		return fail(xmlTooLarge, 0, "")
	}
	content = bytes.TrimPrefix(content, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(content)) == 0 {
		return fail(xmlEmpty, 0, "")
	}
	if !utf8.Valid(content) {
		return fail(xmlNotUTF8, 0, "")
	}
	dec := xml.NewDecoder(bytes.NewReader(content))
	dec.Strict = true
	var root *node
	var stack []*node
	elements := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		line, _ := dec.InputPos()
		if err != nil {
			return nil, &xmlTreeError{Problem: xmlMalformed, Line: line, Limits: lim, Err: err}
		}
		switch t := tok.(type) {
		case xml.Directive:
			// A DOCTYPE may declare entities; encoding/xml does not expand them, but
			// neither UBL nor ISO 20022 has any use for one, and refusing it keeps entity
			// tricks out entirely.
			return fail(xmlDeclaration, line, directiveName(t))
		case xml.StartElement:
			elements++
			if elements > lim.elements || len(stack) >= lim.depth {
				return fail(xmlTooBig, line, "")
			}
			n := &node{name: t.Name, attr: t.Attr, line: line}
			if len(stack) == 0 {
				if root != nil {
					return fail(xmlSecondRoot, line, t.Name.Local)
				}
				root = n
			} else {
				parent := stack[len(stack)-1]
				parent.kids = append(parent.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return fail(xmlStrayText, line, "")
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
		}
	}
	switch {
	case root == nil:
		return fail(xmlNoElement, 0, "")
	case len(stack) != 0:
		return fail(xmlUnclosed, 0, stack[len(stack)-1].name.Local)
	}
	return root, nil
}

// directiveName is the keyword of a <!…> declaration (DOCTYPE, ENTITY), for messages.
func directiveName(d xml.Directive) string {
	if f := strings.Fields(string(d)); len(f) > 0 {
		return truncate(f[0], 20)
	}
	return ""
}
