package domain

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func TestReadXMLTree(t *testing.T) {
	lim := xmlLimits{bytes: 200, elements: 5, depth: 3}
	for _, c := range []struct {
		name    string
		in      string
		problem xmlProblem
		line    int
		elem    string
	}{
		{"too large", "<a>" + strings.Repeat("x", 200) + "</a>", xmlTooLarge, 0, ""},
		{"empty after a byte-order mark", "\xef\xbb\xbf \n", xmlEmpty, 0, ""},
		{"not UTF-8", "<a>\xff</a>", xmlNotUTF8, 0, ""},
		{"mismatched tags", "<a>\n</b>", xmlMalformed, 2, ""},
		{"DOCTYPE", "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", xmlDeclaration, 2, "DOCTYPE"},
		{"too deep", "<a><b><c>\n<d/></c></b></a>", xmlTooBig, 2, ""},
		{"too many", "<a><b/><b/><b/>\n<b/><b/></a>", xmlTooBig, 2, ""},
		{"second root", "<a/>\n<b/>", xmlSecondRoot, 2, "b"},
		{"text after the root", "<a/>\nx", xmlStrayText, 2, ""},
		{"no element", "<?xml version=\"1.0\"?><!-- c -->", xmlNoElement, 0, ""},
	} {
		_, err := readXMLTree([]byte(c.in), lim)
		if err == nil || err.Problem != c.problem || err.Line != c.line || err.Name != c.elem {
			t.Errorf("%s: got %+v, want problem %d at line %d (%q)", c.name, err, c.problem, c.line, c.elem)
		}
	}

	_, err := readXMLTree([]byte("<a></b>"), lim)
	var syntax *xml.SyntaxError
	if err == nil || !errors.As(err, &syntax) || syntax.Line != 1 {
		t.Errorf("malformed: %v, want the decoder's syntax error at line 1", err)
	}

	root, err := readXMLTree([]byte("\xef\xbb\xbf<a x=\"1\">\n <b> t </b><b/></a>"), lim)
	if err != nil {
		t.Fatal(err)
	}
	if root.name.Local != "a" || len(root.kids) != 2 || root.kids[0].value() != "t" || root.kids[0].line != 2 || root.attrValue("x") != "1" {
		t.Errorf("tree read wrong: root %q, %d kids", root.name.Local, len(root.kids))
	}
}
