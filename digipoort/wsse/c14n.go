package wsse

import (
	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// canonicalize returns the exclusive XML canonical form (without comments) of el as it
// stands in its document, i.e. with the namespaces its ancestors declare in scope.
// inclusivePrefixes is the InclusiveNamespaces PrefixList of the transform, if any.
func canonicalize(el *etree.Element, inclusivePrefixes string) ([]byte, error) {
	return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList(inclusivePrefixes).Canonicalize(detach(el))
}

// detach copies el and declares on the copy every namespace that is in scope for el
// through its ancestors and not re-declared by el itself. The canonicaliser then sees
// the element exactly as it is in context. (goxmldsig's NSDetatch does the same but
// refuses sub-trees of more than 1000 elements.)
func detach(el *etree.Element) *etree.Element {
	inherited := map[string]string{} // prefix ("" = default) -> URI, innermost wins
	var chain []*etree.Element
	for p := el.Parent(); p != nil; p = p.Parent() {
		chain = append(chain, p)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, a := range chain[i].Attr {
			switch {
			case a.Space == "xmlns":
				inherited[a.Key] = a.Value
			case a.Space == "" && a.Key == "xmlns":
				inherited[""] = a.Value
			}
		}
	}
	cp := el.Copy()
	declared := map[string]bool{}
	for _, a := range cp.Attr {
		switch {
		case a.Space == "xmlns":
			declared[a.Key] = true
		case a.Space == "" && a.Key == "xmlns":
			declared[""] = true
		}
	}
	for prefix, uri := range inherited {
		if declared[prefix] || prefix == "xml" || prefix == "xmlns" {
			continue
		}
		if prefix == "" {
			if uri != "" {
				cp.CreateAttr("xmlns", uri)
			}
			continue
		}
		cp.CreateAttr("xmlns:"+prefix, uri)
	}
	return cp
}

// nsScope tracks the namespace declarations in scope while walking a tree.
type nsScope map[string]string

func (s nsScope) child(el *etree.Element) nsScope {
	var n nsScope
	for _, a := range el.Attr {
		if a.Space == "xmlns" || (a.Space == "" && a.Key == "xmlns") {
			if n == nil {
				n = make(nsScope, len(s)+2)
				for k, v := range s {
					n[k] = v
				}
			}
			if a.Space == "xmlns" {
				n[a.Key] = a.Value
			} else {
				n[""] = a.Value
			}
		}
	}
	if n == nil {
		return s
	}
	return n
}

func (s nsScope) lookup(prefix string) (string, bool) {
	switch prefix {
	case "xml":
		return "http://www.w3.org/XML/1998/namespace", true
	case "xmlns":
		return "http://www.w3.org/2000/xmlns/", true
	}
	uri, ok := s[prefix]
	if prefix == "" {
		return uri, true // no default namespace declared = no namespace
	}
	return uri, ok && uri != ""
}
