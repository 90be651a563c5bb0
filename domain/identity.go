package domain

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Identity types Digipoort knows for identiteitBelanghebbende (koppelvlak 1.2).
const (
	// IdentityBTW is the VAT number (btw-identificatienummer) with its country code, as
	// production clients of widely used ERP systems send it for VAT, VAT correction and
	// ICP returns.
	IdentityBTW = "BTW"
	// IdentityFi is the fiscaal nummer; Logius' conformance samples send it for VAT
	// returns too, with the omzetbelastingnummer without country code (001000044B37).
	IdentityFi   = "Fi"
	IdentityLHnr = "LHnr"
	IdentityKvK  = "kvk"
)

// SubjectKind says what the subject (belanghebbende) of a message type is: which
// spellings of it are one subject, and which identity types can name it.
type SubjectKind string

const (
	// SubjectVATNumber is a Dutch VAT number. It is stored as the omzetbelastingnummer
	// (9 digits, B, 2 digits: 001000044B37, as the XBRL instance names it); "NL" in
	// front is accepted and dropped, so both spellings are one declaration.
	SubjectVATNumber SubjectKind = "vat"
	// SubjectBSN is a burgerservicenummer: 9 digits that pass the elfproef.
	SubjectBSN SubjectKind = "bsn"
	// SubjectRSIN is the fiscal number of an entity: 9 digits.
	SubjectRSIN SubjectKind = "rsin"
	// SubjectLHNumber is a loonheffingennummer: 9 digits, L, 2 digits.
	SubjectLHNumber SubjectKind = "lhnr"
	// SubjectKvKNumber is a KvK number: 8 digits.
	SubjectKvKNumber SubjectKind = "kvk"
	// SubjectText is free text, for types not sent through Digipoort.
	SubjectText SubjectKind = ""
)

// numberRule is how a subject becomes the nummer of one identity type.
type numberRule struct {
	How    string
	number func(subject string) string
}

type subjectForm struct {
	// Expected says what the subject must look like, for errors and `starter types`.
	Expected string
	pattern  *regexp.Regexp
	// elfproef is set only where every valid number is certain to pass it: the BSN is
	// issued that way. An RSIN is believed to pass it too, and a VAT number's digits
	// often do, but Koerier refuses nothing on a belief (Digipoort checks the return).
	elfproef bool
	// rules lists the identity types that can name a subject of this kind.
	rules map[string]numberRule
}

func same(s string) string { return s }

var subjectForms = map[SubjectKind]subjectForm{
	SubjectVATNumber: {
		Expected: "a Dutch VAT number: NL, 9 digits, B, 2 digits, such as NL001000044B37 (the NL may be left out)",
		pattern:  regexp.MustCompile(`^[0-9]{9}B[0-9]{2}$`),
		rules: map[string]numberRule{
			IdentityBTW: {How: "the VAT number with country code NL (001000044B37 → NL001000044B37)",
				number: func(s string) string { return "NL" + s }},
			IdentityFi: {How: "the omzetbelastingnummer without country code, as Logius' conformance samples send it (NL001000044B37 → 001000044B37)",
				number: same},
		},
	},
	SubjectBSN: {
		Expected: "a BSN: 9 digits that pass the elfproef (write an 8-digit BSN with a leading 0)",
		pattern:  regexp.MustCompile(`^[0-9]{9}$`),
		elfproef: true,
		rules:    map[string]numberRule{IdentityFi: {How: "the BSN as it is (9 digits)", number: same}},
	},
	SubjectRSIN: {
		Expected: "an RSIN (fiscal number): 9 digits",
		pattern:  regexp.MustCompile(`^[0-9]{9}$`),
		rules:    map[string]numberRule{IdentityFi: {How: "the RSIN as it is (9 digits)", number: same}},
	},
	SubjectLHNumber: {
		Expected: "a loonheffingennummer: 9 digits, L, 2 digits, such as 123456789L01",
		pattern:  regexp.MustCompile(`^[0-9]{9}L[0-9]{2}$`),
		rules:    map[string]numberRule{IdentityLHnr: {How: "the loonheffingennummer as it is", number: same}},
	},
	SubjectKvKNumber: {
		Expected: "a KvK number: 8 digits",
		pattern:  regexp.MustCompile(`^[0-9]{8}$`),
		rules:    map[string]numberRule{IdentityKvK: {How: "the KvK number as it is (8 digits)", number: same}},
	},
}

// Expected says what a subject of this kind must look like.
func (k SubjectKind) Expected() string {
	if f, ok := subjectForms[k]; ok {
		return f.Expected
	}
	return "text"
}

// IdentityTypes lists the identity types that can name a subject of this kind.
func (k SubjectKind) IdentityTypes() []string {
	var out []string
	for t := range subjectForms[k].rules {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// NumberRule says how a subject of this kind becomes the nummer of identity type t;
// ok is false when t cannot name such a subject.
func (k SubjectKind) NumberRule(t string) (how string, ok bool) {
	r, ok := subjectForms[k].rules[t]
	return r.How, ok
}

// canonicalIdentityType returns Digipoort's spelling of an identity type given in any
// case, or "" when Koerier does not know it.
func canonicalIdentityType(t string) string {
	for _, known := range []string{IdentityBTW, IdentityFi, IdentityLHnr, IdentityKvK} {
		if strings.EqualFold(strings.TrimSpace(t), known) {
			return known
		}
	}
	return ""
}

// zeroWidth are invisible characters that a copy from a web page or a spreadsheet
// leaves in a number; they are dropped, so that such a copy is the same subject.
func zeroWidth(r rune) bool {
	switch r {
	case '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF', '\u00AD':
		return true
	}
	return false
}

// NormalizeText is the form in which two spellings of a subject or a period compare
// equal: Unicode NFKC (full-width digits and letters become ASCII, a no-break space a
// space), zero-width characters dropped, surrounding space trimmed. A control
// character (tabs and line breaks included, and the invisible format characters that
// reorder text) is refused: it is never part of a number or a period, and what it
// hides would be stored as a declaration of its own.
func NormalizeText(field, raw string) (string, error) {
	if !utf8.ValidString(raw) {
		return "", fmt.Errorf("%s is not valid UTF-8", field)
	}
	var b strings.Builder
	pos := 0
	for _, r := range raw {
		pos++
		switch {
		case zeroWidth(r):
			continue
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			return "", fmt.Errorf("%s %q contains control character U+%04X at position %d: remove it", field, truncate(raw, 40), r, pos)
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(norm.NFKC.String(b.String())), nil
}

// NormalizePeriod is a period in its stored form: NormalizeText, upper case (2026-q3 is
// 2026-Q3).
func NormalizePeriod(raw string) (string, error) {
	p, err := NormalizeText("period", raw)
	return strings.ToUpper(p), err
}

// compactNumber drops the separators people write numbers with and upper-cases the
// letters, which no number form distinguishes.
func compactNumber(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r == ' ' || r == '.' || r == '-' {
			return -1
		}
		return r
	}, s))
}

var vatWithCountry = regexp.MustCompile(`^NL[0-9]{9}B[0-9]{2}$`)

// NormalizeSubject is a subject of this kind in its stored form, or an error that says
// what form is expected. For a message type, use TypeSpec.NormalizeSubject: its errors
// name the type and its identity type too.
func (k SubjectKind) NormalizeSubject(raw string) (string, error) {
	s, err := NormalizeText("subject", raw)
	if err != nil {
		return "", err
	}
	out, why := k.canonical(s)
	if why != "" {
		return "", fmt.Errorf("subject %q %s: expected %s", truncate(raw, 40), why, k.Expected())
	}
	return out, nil
}

// canonical turns a normalised text into the stored form of a subject of this kind,
// or says why it is not one.
func (k SubjectKind) canonical(s string) (out, why string) {
	form, ok := subjectForms[k]
	if !ok {
		return s, ""
	}
	s = compactNumber(s)
	if k == SubjectVATNumber && vatWithCountry.MatchString(s) {
		s = s[2:]
	}
	if !form.pattern.MatchString(s) {
		return "", "does not have the expected form"
	}
	if form.elfproef && !Elfproef(s) {
		return "", "fails the elfproef (check it for a typo)"
	}
	return s, ""
}

// Elfproef is the BSN's check: 9 digits d1…d9 with 9·d1 + 8·d2 + … + 2·d8 − d9 a
// multiple of 11.
func Elfproef(digits string) bool {
	if len(digits) != 9 {
		return false
	}
	sum := 0
	for i, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
		w := 9 - i
		if i == 8 {
			w = -1
		}
		sum += w * int(r-'0')
	}
	return sum%11 == 0
}

// IdentityNumber is the nummer of identiteitBelanghebbende for a stored subject and
// the identity type stored with its message. Both were fixed at queue time, so a
// change of settings never changes what a message in flight is sent with. A subject
// that fits no rule of the identity type (stored before subjects were checked) is sent
// as stored.
func IdentityNumber(identityType, subject string) string {
	for _, k := range []SubjectKind{SubjectVATNumber, SubjectBSN, SubjectRSIN, SubjectLHNumber, SubjectKvKNumber} {
		form := subjectForms[k]
		if r, ok := form.rules[identityType]; ok && form.pattern.MatchString(subject) {
			return r.number(subject)
		}
	}
	return subject
}

// SubjectOfNumber is the stored form of the subject that an identiteitBelanghebbende
// nummer reported by Digipoort names: a reply about NL001000044B37 (type BTW) is about
// the message whose subject is 001000044B37.
func SubjectOfNumber(nummer string) string {
	s, err := NormalizeText("nummer", nummer)
	if err != nil {
		return nummer
	}
	c := compactNumber(s)
	if vatWithCountry.MatchString(c) {
		return c[2:]
	}
	for _, form := range subjectForms {
		if form.pattern.MatchString(c) {
			return c
		}
	}
	return s // no number Koerier knows: compared as reported
}
