package domain

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// UBL 2.1 namespaces. An element is known by its namespace, not by its prefix: a
// document may bind cbc and cac to any prefix it likes.
const (
	UBLInvoiceNamespace    = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
	UBLCreditNoteNamespace = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
	ublCAC                 = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
	ublCBC                 = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
	ublEXT                 = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
)

// The customisations Koerier sends: the receivers it mails to read these two.
const (
	CustomizationPeppolBIS = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
	CustomizationNLCIUS    = "urn:cen.eu:en16931:2017#compliant#urn:fdc:nen.nl:nlcius:v1.0"
)

// Limits on what the parser takes in: a UBL invoice is a few kilobytes plus an optional
// PDF; anything far beyond is hostile or a mistake, and must not exhaust memory.
const (
	maxEInvoiceDepth    = 64
	maxEInvoiceElements = 100000
)

// EInvoice is what Koerier reads from a UBL 2.1 Invoice or CreditNote.
type EInvoice struct {
	Kind            string // "Invoice" or "CreditNote"
	CustomizationID string
	Number          string    // cbc:ID
	IssueDate       time.Time // cbc:IssueDate (date only, UTC)
	Currency        string    // DocumentCurrencyCode
	SupplierName    string    // AccountingSupplierParty/Party/PartyName/Name, else PartyLegalEntity/RegistrationName
	// SupplierKey identifies the supplier for duplicate detection: EndpointID
	// "scheme:value" if present, else the VAT CompanyID, else the upper-cased name.
	SupplierKey   string
	SupplierEmail string
	CustomerName  string
	// CustomerEmail is the document's own address (EndpointID schemeID="EM", else
	// Party/Contact/ElectronicMail); an address given at queue time is not put here,
	// see Recipient.
	CustomerEmail                string
	LineTotal, TaxTotal, Payable string // decimal text as in the document, e.g. "447.70"
	// PDF is the first embedded document with mimeCode application/pdf, decoded, or nil.
	PDF *EmbeddedFile
}

// EmbeddedFile is a file carried inside a UBL document.
type EmbeddedFile struct {
	Name, MimeType string
	Content        []byte
}

// EInvoiceError is a failed check of a UBL document. Rule names the check, so that a
// caller (the API's 422, a test) can tell the checks apart without parsing Message.
type EInvoiceError struct{ Rule, Message string }

func (e *EInvoiceError) Error() string { return e.Rule + ": " + e.Message }

func einvoiceErr(rule, format string, args ...any) *EInvoiceError {
	return &EInvoiceError{Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// CheckEInvoice checks a UBL document before it is queued and reads it. to is an
// address given at queue time ("" if none); it stands in for a missing customer
// address. On failure the error is one *EInvoiceError or an errors.Join of several,
// the first of which errors.As finds.
func CheckEInvoice(content []byte, to string) (EInvoice, error) {
	doc, err := parseUBL(content)
	if err != nil {
		return EInvoice{}, err
	}
	errs := doc.checkCustomization()
	inv, readErrs := doc.read(true)
	errs = append(errs, readErrs...)
	errs = append(errs, checkRecipient(inv, to)...)
	errs = append(errs, doc.checkAmounts(inv)...)
	if len(errs) > 0 {
		return EInvoice{}, joinRuleErrors(errs)
	}
	return inv, nil
}

// ReadEInvoice reads a received UBL document with the same parser, checking only what
// storing it needs (well-formed, namespace, number, supplier, issue date): a supplier's
// invoice with a wrong sum is still the supplier's invoice, and is kept.
func ReadEInvoice(content []byte) (EInvoice, error) {
	doc, err := parseUBL(content)
	if err != nil {
		return EInvoice{}, err
	}
	inv, errs := doc.read(false)
	if len(errs) > 0 {
		return EInvoice{}, joinRuleErrors(errs)
	}
	return inv, nil
}

// Recipient is the address the invoice goes to: to if given, else CustomerEmail.
func (e EInvoice) Recipient(to string) string {
	to = strings.TrimSpace(to)
	if to == "" {
		return e.CustomerEmail
	}
	if a, err := mail.ParseAddress(to); err == nil {
		return a.Address
	}
	return to
}

// SubjectAndPeriod are the subject and period an e-invoice is queued under: the
// invoice number (NormalizeText) and the month of issue. CheckEInvoice refuses a number
// that does not fit a subject, so for a checked invoice these are always valid.
func (e EInvoice) SubjectAndPeriod() (subject, period string) {
	subject, err := NormalizeText("invoice number", e.Number)
	if err != nil {
		subject = strings.TrimSpace(e.Number)
	}
	// A slash separates the fields of a declaration's key (Declaration.Validate), and
	// Dutch invoice numbers often have one (2026/0417): it is queued as 2026-0417. The
	// document and the e-mail keep the invoice's own number. An environment that numbers
	// both 2026/0417 and 2026-0417 in one month would see the second as a new version.
	subject = strings.ReplaceAll(subject, "/", "-")
	if !e.IssueDate.IsZero() {
		period = e.IssueDate.Format("2006-01")
	}
	return subject, period
}

// joinRuleErrors joins the failed checks of one document in order, so that errors.As
// finds the first. One failure is returned as it is.
func joinRuleErrors[E error](errs []E) error {
	if len(errs) == 1 {
		return errs[0]
	}
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}

// attrValue is an unqualified attribute's trimmed value, "" if absent.
func (n *node) attrValue(local string) string {
	v, _ := n.attrLookup(local)
	return v
}

func (n *node) attrLookup(local string) (string, bool) {
	for _, a := range n.attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return strings.TrimSpace(a.Value), true
		}
	}
	return "", false
}

// all returns the children at a path such as "cac:Party/cbc:EndpointID", where
// cac and cbc stand for the UBL namespaces whatever prefix the document used.
func (n *node) all(path string) []*node {
	cur := []*node{n}
	for _, step := range strings.Split(path, "/") {
		prefix, local, _ := strings.Cut(step, ":")
		space := ublCBC
		if prefix == "cac" {
			space = ublCAC
		}
		var next []*node
		for _, c := range cur {
			for _, k := range c.kids {
				if k.name.Space == space && k.name.Local == local {
					next = append(next, k)
				}
			}
		}
		cur = next
	}
	return cur
}

// first is the first element at path, or nil.
func (n *node) first(path string) *node {
	if all := n.all(path); len(all) > 0 {
		return all[0]
	}
	return nil
}

// textAt is the trimmed text of the first element at path, "" if there is none.
func (n *node) textAt(path string) string {
	if f := n.first(path); f != nil {
		return f.value()
	}
	return ""
}

type ublDoc struct {
	root *node
	kind string // "Invoice" or "CreditNote"
}

// parseUBL reads content into a tree and checks what every later step relies on: one
// well-formed UTF-8 XML document without a DOCTYPE, whose root is a UBL 2.1 Invoice or
// CreditNote.
func parseUBL(content []byte) (*ublDoc, error) {
	root, terr := readXMLTree(content, xmlLimits{bytes: MaxAttachmentSize, elements: maxEInvoiceElements, depth: maxEInvoiceDepth})
	if terr != nil {
		return nil, ublTreeErr(terr)
	}
	doc := &ublDoc{root: root}
	switch {
	case root.name.Space == UBLInvoiceNamespace && root.name.Local == "Invoice":
		doc.kind = "Invoice"
	case root.name.Space == UBLCreditNoteNamespace && root.name.Local == "CreditNote":
		doc.kind = "CreditNote"
	default:
		return nil, einvoiceErr("ubl.namespace", "the root element is <%s> in namespace %q; a UBL 2.1 e-invoice is <Invoice> in %q or <CreditNote> in %q",
			root.name.Local, root.name.Space, UBLInvoiceNamespace, UBLCreditNoteNamespace)
	}
	// Every child of the root is a cbc, cac or ext element in UBL 2.1. One in another
	// namespace is almost always a wrongly bound prefix, which would otherwise show up
	// as a confusing "required element missing".
	for _, k := range root.kids {
		switch k.name.Space {
		case ublCBC, ublCAC, ublEXT:
		default:
			return nil, einvoiceErr("ubl.namespace", "<%s> at line %d is in namespace %q; UBL 2.1 puts the elements of an %s in cbc (%s) or cac (%s): check the xmlns declarations",
				k.name.Local, k.line, k.name.Space, doc.kind, ublCBC, ublCAC)
		}
	}
	return doc, nil
}

// ublTreeErr names the rule a tree problem breaks and says what to do in UBL terms.
func ublTreeErr(e *xmlTreeError) *EInvoiceError {
	rule, advice := "ubl.well-formed", ""
	switch e.Problem {
	case xmlTooLarge:
		rule, advice = "ubl.size", ": send the PDF rendition separately or shrink it"
	case xmlTooBig:
		rule, advice = "ubl.size", ": this is not an invoice Koerier can read"
	case xmlEmpty, xmlNoElement:
		advice = ": queue the UBL XML of the invoice"
	case xmlNotUTF8:
		advice = ", so not a UBL XML document (is it a PDF or an image?): queue the UBL XML of the invoice"
	case xmlDeclaration:
		advice = ": a UBL document has no DOCTYPE or other declaration; remove it"
	case xmlSecondRoot:
		advice = ": a file holds one invoice"
	case xmlStrayText:
		advice = ": the file is not a UBL XML document"
	}
	return &EInvoiceError{Rule: rule, Message: e.Error() + advice}
}

var (
	ublDate     = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	ublCurrency = regexp.MustCompile(`^[A-Z]{3}$`)
	ublDecimal  = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)
)

// read takes the fields of EInvoice from the document. It checks what a stored
// invoice cannot do without (number, issue date, supplier); forQueue adds what
// sending it needs of the fields read here.
func (d *ublDoc) read(forQueue bool) (EInvoice, []*EInvoiceError) {
	r := d.root
	var errs []*EInvoiceError
	inv := EInvoice{
		Kind:            d.kind,
		CustomizationID: r.textAt("cbc:CustomizationID"),
		Number:          r.textAt("cbc:ID"),
		Currency:        r.textAt("cbc:DocumentCurrencyCode"),
		LineTotal:       r.textAt("cac:LegalMonetaryTotal/cbc:LineExtensionAmount"),
		Payable:         r.textAt("cac:LegalMonetaryTotal/cbc:PayableAmount"),
	}
	if tt := d.taxTotal(inv.Currency); tt != nil {
		inv.TaxTotal = tt.textAt("cbc:TaxAmount")
	}

	if inv.Number == "" {
		errs = append(errs, einvoiceErr("ubl.required.id", "%s/cbc:ID (the invoice number) is missing or empty: give the invoice its number", d.kind))
	} else if n, err := NormalizeText("invoice number", inv.Number); err != nil {
		errs = append(errs, einvoiceErr("ubl.number", "%s/cbc:ID: %v", d.kind, err))
	} else if forQueue && utf8.RuneCountInString(n) > MaxSubjectLen {
		errs = append(errs, einvoiceErr("ubl.number-length", "%s/cbc:ID %q is %d characters; Koerier files an e-invoice under its number, which may be at most %d: use a shorter invoice number",
			d.kind, truncate(n, 40), utf8.RuneCountInString(n), MaxSubjectLen))
	}

	switch date := r.textAt("cbc:IssueDate"); {
	case date == "":
		errs = append(errs, einvoiceErr("ubl.required.issue-date", "%s/cbc:IssueDate is missing or empty: give the date of issue as YYYY-MM-DD", d.kind))
	case !ublDate.MatchString(date):
		errs = append(errs, einvoiceErr("ubl.issue-date", "%s/cbc:IssueDate %q is not a date as YYYY-MM-DD (for example 2026-11-20)", d.kind, truncate(date, 40)))
	default:
		t, err := time.ParseInLocation("2006-01-02", date, time.UTC)
		if err != nil {
			errs = append(errs, einvoiceErr("ubl.issue-date", "%s/cbc:IssueDate %q is not a date that exists: correct it", d.kind, date))
		}
		inv.IssueDate = t
	}

	supplier := r.first("cac:AccountingSupplierParty/cac:Party")
	customer := r.first("cac:AccountingCustomerParty/cac:Party")
	if supplier != nil {
		inv.SupplierName = partyName(supplier)
		inv.SupplierEmail = partyEmail(supplier)
		inv.SupplierKey = supplierKey(supplier, inv.SupplierName)
	}
	if customer != nil {
		inv.CustomerName = partyName(customer)
		inv.CustomerEmail = partyEmail(customer)
	}
	if inv.SupplierName == "" {
		errs = append(errs, einvoiceErr("ubl.required.supplier-name", "%s/cac:AccountingSupplierParty/cac:Party has no cac:PartyName/cbc:Name nor cac:PartyLegalEntity/cbc:RegistrationName: name the supplier", d.kind))
	}
	inv.PDF = d.embeddedPDF()
	if !forQueue {
		return inv, errs
	}

	switch {
	case inv.Currency == "":
		errs = append(errs, einvoiceErr("ubl.required.currency", "%s/cbc:DocumentCurrencyCode is missing or empty: give the currency as an ISO 4217 code such as EUR", d.kind))
	case !ublCurrency.MatchString(inv.Currency):
		errs = append(errs, einvoiceErr("ubl.currency", "%s/cbc:DocumentCurrencyCode %q is not an ISO 4217 code of three capital letters such as EUR", d.kind, truncate(inv.Currency, 20)))
	}
	if inv.CustomerName == "" {
		errs = append(errs, einvoiceErr("ubl.required.customer-name", "%s/cac:AccountingCustomerParty/cac:Party has no cac:PartyName/cbc:Name nor cac:PartyLegalEntity/cbc:RegistrationName: name the customer", d.kind))
	}
	if _, err := d.pdfContent(); err != nil {
		errs = append(errs, err)
	}
	return inv, errs
}

func partyName(p *node) string {
	if n := p.textAt("cac:PartyName/cbc:Name"); n != "" {
		return n
	}
	return p.textAt("cac:PartyLegalEntity/cbc:RegistrationName")
}

// partyEmail prefers the electronic address (EndpointID with scheme EM), which is what
// Peppol routes on, over the contact's address.
func partyEmail(p *node) string {
	for _, e := range p.all("cbc:EndpointID") {
		if strings.EqualFold(e.attrValue("schemeID"), "EM") && e.value() != "" {
			return e.value()
		}
	}
	return p.textAt("cac:Contact/cbc:ElectronicMail")
}

// supplierKey is the most stable identifier the supplier gives: a supplier's name is
// spelled differently from one invoice to the next, its endpoint and VAT number are not.
func supplierKey(p *node, name string) string {
	if e := p.first("cbc:EndpointID"); e != nil && e.value() != "" {
		scheme, v := e.attrValue("schemeID"), e.value()
		if strings.EqualFold(scheme, "EM") {
			v = strings.ToLower(v)
		}
		if scheme == "" {
			return v
		}
		return scheme + ":" + v
	}
	for _, ts := range p.all("cac:PartyTaxScheme") {
		if id := ts.textAt("cbc:CompanyID"); id != "" && strings.EqualFold(ts.textAt("cac:TaxScheme/cbc:ID"), "VAT") {
			return strings.ToUpper(strings.ReplaceAll(id, " ", ""))
		}
	}
	return strings.ToUpper(name)
}

func (d *ublDoc) pdfNode() *node {
	for _, o := range d.root.all("cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject") {
		if strings.EqualFold(o.attrValue("mimeCode"), "application/pdf") {
			return o
		}
	}
	return nil
}

func (d *ublDoc) pdfContent() ([]byte, *EInvoiceError) {
	o := d.pdfNode()
	if o == nil {
		return nil, nil
	}
	// Base64 in XML is commonly wrapped over lines; the whitespace is no part of it.
	text := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, o.text.String())
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, einvoiceErr("ubl.attachment", "the PDF in cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject (line %d) is not valid base64 (%v): embed it again or leave it out", o.line, err)
	}
	if len(b) == 0 {
		return nil, einvoiceErr("ubl.attachment", "the PDF in cac:AdditionalDocumentReference/cac:Attachment/cbc:EmbeddedDocumentBinaryObject (line %d) is empty: embed it again or leave it out", o.line)
	}
	return b, nil
}

// embeddedPDF is nil when there is no PDF or it cannot be decoded; CheckEInvoice
// refuses the latter through pdfContent.
func (d *ublDoc) embeddedPDF() *EmbeddedFile {
	b, err := d.pdfContent()
	if err != nil || b == nil {
		return nil
	}
	o := d.pdfNode()
	name := o.attrValue("filename")
	// The name goes into a MIME header: no directory part, nothing invisible.
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	if n, err := NormalizeText("file name", name); err == nil && n != "" {
		name = truncate(n, MaxFileNameLen)
	} else {
		name = "invoice.pdf"
	}
	return &EmbeddedFile{Name: name, MimeType: "application/pdf", Content: b}
}

// taxTotal is the TaxTotal in the document currency: a document in a foreign currency
// may carry a second TaxTotal in its TaxCurrencyCode, without subtotals.
func (d *ublDoc) taxTotal(currency string) *node {
	for _, tt := range d.root.all("cac:TaxTotal") {
		a := tt.first("cbc:TaxAmount")
		if a == nil {
			continue
		}
		if c := a.attrValue("currencyID"); c == "" || c == currency {
			return tt
		}
	}
	return nil
}

func (d *ublDoc) checkCustomization() []*EInvoiceError {
	id := d.root.textAt("cbc:CustomizationID")
	if id == CustomizationPeppolBIS || id == CustomizationNLCIUS {
		return nil
	}
	// An extension of either (an "#conformant#" or "#extended#" suffix) still holds
	// everything the base customisation requires.
	if strings.HasPrefix(id, "urn:cen.eu:en16931:2017") &&
		(strings.Contains(id, "urn:fdc:peppol.eu:2017:poacc:billing:3.0") || strings.Contains(id, "urn:fdc:nen.nl:nlcius:v1.0")) {
		return nil
	}
	what := fmt.Sprintf("is %q", truncate(id, 120))
	if id == "" {
		what = "is missing or empty"
	}
	return []*EInvoiceError{einvoiceErr("ubl.customization", "%s/cbc:CustomizationID %s; Koerier sends Peppol BIS Billing 3.0 (%s) or NLCIUS (%s): make the invoice in one of those",
		d.kind, what, CustomizationPeppolBIS, CustomizationNLCIUS)}
}

func checkRecipient(inv EInvoice, to string) []*EInvoiceError {
	if to = strings.TrimSpace(to); to != "" {
		if _, err := mail.ParseAddress(to); err != nil {
			return []*EInvoiceError{einvoiceErr("ubl.customer-address", "the address %q given to send the invoice to is not an e-mail address (%v): correct it", truncate(to, 80), err)}
		}
		return nil
	}
	if inv.CustomerEmail == "" {
		return []*EInvoiceError{einvoiceErr("ubl.customer-address", "%s/cac:AccountingCustomerParty/cac:Party has no e-mail address (cbc:EndpointID with schemeID=\"EM\" or cac:Contact/cbc:ElectronicMail): add one, or give the address to send to when queuing", inv.Kind)}
	}
	if a, err := mail.ParseAddress(inv.CustomerEmail); err != nil || a.Name != "" {
		return []*EInvoiceError{einvoiceErr("ubl.customer-address", "the customer's e-mail address %q in %s/cac:AccountingCustomerParty is not a plain e-mail address: correct it, or give the address to send to when queuing", truncate(inv.CustomerEmail, 80), inv.Kind)}
	}
	return nil
}

// amount is one parsed amount; text is as the document has it, for messages.
type amount struct {
	text     string
	value    *big.Rat
	decimals int
}

// zero stands in for an optional amount that is absent.
var zeroAmount = amount{text: "0.00", value: new(big.Rat), decimals: 2}

const lmt = "cac:LegalMonetaryTotal/"

// checkAmounts checks every amount (each element with a currencyID, and the totals)
// and, when they could all be read, that the sums add up. Sums use big.Rat: a float
// would call 0.1+0.2 different from 0.30.
func (d *ublDoc) checkAmounts(inv EInvoice) []*EInvoiceError {
	var errs []*EInvoiceError
	r := d.root
	taxCurrency := r.textAt("cbc:TaxCurrencyCode")
	currencyOK := ublCurrency.MatchString(inv.Currency)

	// Every amount, wherever it is: its currency, and decimal text. An amount refused
	// here is not reported again when a sum needs it.
	bad := map[*node]bool{}
	var walk func(n *node, path string, inTaxTotal bool)
	walk = func(n *node, path string, inTaxTotal bool) {
		if path != "" {
			path += "/"
		}
		path += ublPrefix(n.name.Space) + n.name.Local
		if c, ok := n.attrLookup("currencyID"); ok {
			allowed := c == inv.Currency || (inTaxTotal && taxCurrency != "" && c == taxCurrency)
			if currencyOK && !allowed {
				errs = append(errs, einvoiceErr("ubl.currency", "%s (line %d) is in currency %q but the document's currency (DocumentCurrencyCode) is %s: amounts are in the document currency",
					path, n.line, truncate(c, 20), inv.Currency))
			}
			if _, err := parseAmount(n.value()); err != nil {
				bad[n] = true
				errs = append(errs, einvoiceErr("ubl.amount", "%s (line %d) is %q, not an amount: write it as a decimal number with a point, such as 447.70", path, n.line, truncate(n.value(), 40)))
			}
		}
		for _, k := range n.kids {
			walk(k, path, inTaxTotal || (k.name.Space == ublCAC && k.name.Local == "TaxTotal"))
		}
	}
	walk(r, "", false)

	get := func(n *node, path, what string, total bool) (amount, bool) {
		el := n.first(path)
		if el == nil || el.value() == "" || bad[el] {
			return amount{}, false
		}
		a, err := parseAmount(el.value())
		if err != nil {
			errs = append(errs, einvoiceErr("ubl.amount", "%s (line %d) is %q, not an amount: write it as a decimal number with a point, such as 447.70", what, el.line, truncate(el.value(), 40)))
			return amount{}, false
		}
		if total && a.decimals > 2 {
			errs = append(errs, einvoiceErr("ubl.amount", "%s (line %d) is %s, with more than two decimals: round totals to cents", what, el.line, a.text))
			return amount{}, false
		}
		return a, true
	}
	required := func(name string) (amount, bool) {
		if r.textAt(lmt+"cbc:"+name) == "" {
			errs = append(errs, einvoiceErr("ubl.required."+kebab(name), "%s/cac:LegalMonetaryTotal/cbc:%s is missing or empty: the invoice must state it", d.kind, name))
			return amount{}, false
		}
		return get(r, lmt+"cbc:"+name, d.kind+"/cac:LegalMonetaryTotal/cbc:"+name, true)
	}
	optional := func(name string) (amount, bool) {
		if r.textAt(lmt+"cbc:"+name) == "" {
			return zeroAmount, true
		}
		return get(r, lmt+"cbc:"+name, d.kind+"/cac:LegalMonetaryTotal/cbc:"+name, true)
	}
	lineExt, okLE := required("LineExtensionAmount")
	taxExcl, okTE := required("TaxExclusiveAmount")
	taxIncl, okTI := required("TaxInclusiveAmount")
	payable, okP := required("PayableAmount")
	allowance, okA := optional("AllowanceTotalAmount")
	charge, okC := optional("ChargeTotalAmount")
	prepaid, okPP := optional("PrepaidAmount")
	rounding, okR := optional("PayableRoundingAmount")

	lineName := "InvoiceLine"
	if d.kind == "CreditNote" {
		lineName = "CreditNoteLine"
	}
	lines := r.all("cac:" + lineName)
	okLines := len(lines) > 0
	if !okLines {
		errs = append(errs, einvoiceErr("ubl.required.lines", "the %s has no cac:%s: an invoice has at least one line", d.kind, lineName))
	}
	var lineSum amount
	lineSum.value = new(big.Rat)
	lineSum.decimals = 2
	for i, l := range lines {
		what := fmt.Sprintf("%s/cac:%s[%d]/cbc:LineExtensionAmount", d.kind, lineName, i+1)
		if l.textAt("cbc:LineExtensionAmount") == "" {
			errs = append(errs, einvoiceErr("ubl.required.line-amount", "%s (line %s) is missing or empty: every line states its net amount", what, truncate(l.textAt("cbc:ID"), 20)))
			okLines = false
			continue
		}
		a, ok := get(l, "cbc:LineExtensionAmount", what, false)
		if !ok {
			okLines = false
			continue
		}
		lineSum.value.Add(lineSum.value, a.value)
		lineSum.decimals = max(lineSum.decimals, a.decimals)
	}

	tt := d.taxTotal(inv.Currency)
	var tax amount
	okTax := false
	if tt == nil {
		errs = append(errs, einvoiceErr("ubl.required.tax-total", "the %s has no cac:TaxTotal/cbc:TaxAmount in its currency %s: state the VAT total, with a cac:TaxSubtotal per VAT category (0.00 when no VAT is due)", d.kind, inv.Currency))
	} else {
		tax, okTax = get(tt, "cbc:TaxAmount", d.kind+"/cac:TaxTotal/cbc:TaxAmount", true)
		subSum := amount{value: new(big.Rat), decimals: 2}
		okSub := okTax
		for i, st := range tt.all("cac:TaxSubtotal") {
			what := fmt.Sprintf("%s/cac:TaxTotal/cac:TaxSubtotal[%d]/cbc:TaxAmount", d.kind, i+1)
			if st.textAt("cbc:TaxAmount") == "" {
				errs = append(errs, einvoiceErr("ubl.required.tax-subtotal-amount", "%s is missing or empty: every VAT subtotal states its tax", what))
				okSub = false
				continue
			}
			a, ok := get(st, "cbc:TaxAmount", what, true)
			if !ok {
				okSub = false
				continue
			}
			subSum.value.Add(subSum.value, a.value)
		}
		if okSub && subSum.value.Cmp(tax.value) != 0 {
			errs = append(errs, einvoiceErr("ubl.sum.tax", "the cac:TaxSubtotal tax amounts add up to %s but %s/cac:TaxTotal/cbc:TaxAmount says %s: correct the subtotals or the tax total",
				subSum.String(), d.kind, tax.text))
		}
	}

	if okLines && okLE && lineSum.value.Cmp(lineExt.value) != 0 {
		errs = append(errs, einvoiceErr("ubl.sum.lines", "the lines add up to %s but %s/cac:LegalMonetaryTotal/cbc:LineExtensionAmount says %s: correct the line amounts or the total",
			lineSum.String(), d.kind, lineExt.text))
	}
	if okLE && okTE && okA && okC {
		want := new(big.Rat).Sub(lineExt.value, allowance.value)
		want.Add(want, charge.value)
		if want.Cmp(taxExcl.value) != 0 {
			errs = append(errs, einvoiceErr("ubl.sum.tax-exclusive", "LineExtensionAmount %s minus AllowanceTotalAmount %s plus ChargeTotalAmount %s is %s but %s/cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount says %s: correct the totals",
				lineExt.text, allowance.text, charge.text, amount{value: want, decimals: 2}.String(), d.kind, taxExcl.text))
		}
	}
	if okTE && okTI && okTax {
		want := new(big.Rat).Add(taxExcl.value, tax.value)
		if want.Cmp(taxIncl.value) != 0 {
			errs = append(errs, einvoiceErr("ubl.sum.tax-inclusive", "TaxExclusiveAmount %s plus TaxTotal/TaxAmount %s is %s but %s/cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount says %s: correct the totals",
				taxExcl.text, tax.text, amount{value: want, decimals: 2}.String(), d.kind, taxIncl.text))
		}
	}
	if okTI && okP && okPP && okR {
		want := new(big.Rat).Sub(taxIncl.value, prepaid.value)
		want.Add(want, rounding.value)
		if want.Cmp(payable.value) != 0 {
			errs = append(errs, einvoiceErr("ubl.sum.payable", "TaxInclusiveAmount %s minus PrepaidAmount %s plus PayableRoundingAmount %s is %s but %s/cac:LegalMonetaryTotal/cbc:PayableAmount says %s: correct the amount due",
				taxIncl.text, prepaid.text, rounding.text, amount{value: want, decimals: 2}.String(), d.kind, payable.text))
		}
	}
	return errs
}

func parseAmount(s string) (amount, error) {
	if !ublDecimal.MatchString(s) || len(s) > 40 {
		return amount{}, fmt.Errorf("%q is not a decimal number", s)
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		return amount{}, fmt.Errorf("%q is not a decimal number", s)
	}
	dec := 0
	if _, frac, found := strings.Cut(s, "."); found {
		dec = len(frac)
	}
	return amount{text: s, value: v, decimals: dec}, nil
}

// String shows a computed amount with as many decimals as went into it, at least two.
func (a amount) String() string { return a.value.FloatString(max(a.decimals, 2)) }

// kebab turns an element name into the tail of a rule name: TaxExclusiveAmount
// becomes tax-exclusive-amount.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ublPrefix is the usual prefix of a UBL namespace, for paths in messages.
func ublPrefix(space string) string {
	switch space {
	case ublCAC:
		return "cac:"
	case ublCBC:
		return "cbc:"
	case ublEXT:
		return "ext:"
	}
	return ""
}
