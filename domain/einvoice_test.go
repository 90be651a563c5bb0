package domain

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readEInvoiceFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "einvoice", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit replaces each old text by its new one; every old text must occur exactly once,
// so that a change to the example cannot silently make a variant test nothing.
func edit(t testing.TB, doc []byte, oldNew ...string) []byte {
	t.Helper()
	s := string(doc)
	for i := 0; i < len(oldNew); i += 2 {
		if n := strings.Count(s, oldNew[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times, want 1", oldNew[i], n)
		}
		s = strings.Replace(s, oldNew[i], oldNew[i+1], 1)
	}
	return []byte(s)
}

// rules lists the Rule of every EInvoiceError in err, in order.
func rules(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *EInvoiceError
		if errors.As(err, &e) {
			out = append(out, e.Rule)
		}
	}
	walk(err)
	return out
}

func TestCheckEInvoiceExample(t *testing.T) {
	inv, err := CheckEInvoice(readEInvoiceFile(t, "example-invoice.xml"), "")
	if err != nil {
		t.Fatalf("the example invoice is refused: %v", err)
	}
	want := EInvoice{
		Kind:            "Invoice",
		CustomizationID: CustomizationPeppolBIS,
		Number:          "2026-0417",
		IssueDate:       time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Currency:        "EUR",
		SupplierName:    "Drukkerij Voorbeeld B.V.",
		SupplierKey:     "0106:90000001",
		SupplierEmail:   "facturen@drukkerij.example",
		CustomerName:    "Klant Voorbeeld B.V.",
		CustomerEmail:   "crediteuren@klant.example",
		LineTotal:       "370.00",
		TaxTotal:        "77.70",
		Payable:         "447.70",
	}
	if inv.PDF != nil {
		t.Errorf("PDF = %+v, the example embeds none", inv.PDF)
	}
	if !inv.IssueDate.Equal(want.IssueDate) || inv.IssueDate.Location() != time.UTC {
		t.Errorf("IssueDate = %v, want %v", inv.IssueDate, want.IssueDate)
	}
	inv.IssueDate, want.IssueDate = time.Time{}, time.Time{}
	if inv != want {
		t.Errorf("read\n %+v\nwant\n %+v", inv, want)
	}
	if s, p := (EInvoice{Number: " 2026-0417 ", IssueDate: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)}).SubjectAndPeriod(); s != "2026-0417" || p != "2026-11" {
		t.Errorf("SubjectAndPeriod = %q, %q; want 2026-0417, 2026-11", s, p)
	}
	if got := inv.Recipient(""); got != "crediteuren@klant.example" {
		t.Errorf("Recipient(\"\") = %q", got)
	}
	if got := inv.Recipient("Boekhouding <boekhouding@klant.example>"); got != "boekhouding@klant.example" {
		t.Errorf("Recipient(to) = %q, want the address given at queue time", got)
	}
}

func TestCheckEInvoiceRules(t *testing.T) {
	base := readEInvoiceFile(t, "example-invoice.xml")
	const (
		invoiceNS  = `<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"`
		supplierEP = `<cbc:EndpointID schemeID="0106">90000001</cbc:EndpointID>`
		customerEP = `<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`
		customerCt = `<cac:Contact><cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>`
		lineExt    = `<cbc:LineExtensionAmount currencyID="EUR">370.00</cbc:LineExtensionAmount>`
		taxExcl    = `<cbc:TaxExclusiveAmount currencyID="EUR">370.00</cbc:TaxExclusiveAmount>`
		taxIncl    = `<cbc:TaxInclusiveAmount currencyID="EUR">447.70</cbc:TaxInclusiveAmount>`
		payable    = `<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`
		line2      = `<cbc:LineExtensionAmount currencyID="EUR">120.00</cbc:LineExtensionAmount>`
		subTax     = "</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"EUR\">77.70</cbc:TaxAmount>"
		totalTax   = "<cac:TaxTotal>\n    <cbc:TaxAmount currencyID=\"EUR\">77.70</cbc:TaxAmount>"
	)
	supplierNames := []string{"<cac:PartyName><cbc:Name>Drukkerij Voorbeeld B.V.</cbc:Name></cac:PartyName>", "",
		"<cbc:RegistrationName>Drukkerij Voorbeeld B.V.</cbc:RegistrationName>", ""}
	customerNames := []string{"<cac:PartyName><cbc:Name>Klant Voorbeeld B.V.</cbc:Name></cac:PartyName>", "",
		"<cbc:RegistrationName>Klant Voorbeeld B.V.</cbc:RegistrationName>", ""}

	for _, tc := range []struct {
		name, rule string
		doc        []byte
		to         string
		msg        string // a part of the message
	}{
		{name: "cut off", rule: "ubl.well-formed", doc: base[:len(base)/2], msg: "not well-formed XML at line"},
		{name: "mismatched tags", rule: "ubl.well-formed", doc: edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>2026-0417</cbc:Id>"), msg: "line 7"},
		{name: "DOCTYPE with entities", rule: "ubl.well-formed",
			doc: edit(t, base, `<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE Invoice [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>`),
			msg: "DOCTYPE"},
		{name: "undeclared entity", rule: "ubl.well-formed", doc: edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>&nr;</cbc:ID>")},
		{name: "Latin-1 declared", rule: "ubl.well-formed", doc: edit(t, base, `encoding="UTF-8"`, `encoding="ISO-8859-1"`)},
		{name: "two roots", rule: "ubl.well-formed", doc: append(bytes.Clone(base), "<Invoice/>"...), msg: "second root"},
		{name: "empty", rule: "ubl.well-formed", doc: []byte(" \n"), msg: "empty"},
		{name: "wrong root namespace", rule: "ubl.namespace", doc: edit(t, base, invoiceNS, `<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-3"`), msg: "Invoice-3"},
		{name: "credit note root in invoice namespace", rule: "ubl.namespace",
			doc: edit(t, base, "<Invoice xmlns=", "<CreditNote xmlns=", "</Invoice>", "</CreditNote>")},
		{name: "wrong cbc namespace", rule: "ubl.namespace",
			doc: edit(t, base, `xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"`, `xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-1"`),
			msg: "<CustomizationID> at line 5"},
		{name: "customization BIS 2", rule: "ubl.customization",
			doc: edit(t, base, "urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>", "urn:www.peppol.eu:bis:peppol4a:ver2.0</cbc:CustomizationID>"),
			msg: "urn:fdc:nen.nl:nlcius:v1.0"},
		{name: "no customization", rule: "ubl.customization", doc: edit(t, base, "<cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>", ""), msg: "missing"},
		{name: "no number", rule: "ubl.required.id", doc: edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID> </cbc:ID>"), msg: "Invoice/cbc:ID"},
		{name: "tab in number", rule: "ubl.number", doc: edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>2026&#9;0417</cbc:ID>"), msg: "control character"},
		{name: "number too long", rule: "ubl.number-length", doc: edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>"+strings.Repeat("9", 36)+"</cbc:ID>"), msg: "at most 35"},
		{name: "no issue date", rule: "ubl.required.issue-date", doc: edit(t, base, "<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "")},
		{name: "issue date in Dutch order", rule: "ubl.issue-date", doc: edit(t, base, "<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "<cbc:IssueDate>20-11-2026</cbc:IssueDate>"), msg: "YYYY-MM-DD"},
		{name: "issue date that does not exist", rule: "ubl.issue-date", doc: edit(t, base, "<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "<cbc:IssueDate>2026-02-30</cbc:IssueDate>")},
		{name: "no currency", rule: "ubl.required.currency", doc: edit(t, base, "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>", "")},
		{name: "currency in lower case", rule: "ubl.currency", doc: edit(t, base, "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>", "<cbc:DocumentCurrencyCode>eur</cbc:DocumentCurrencyCode>")},
		{name: "amount in another currency", rule: "ubl.currency", doc: edit(t, base, line2, `<cbc:LineExtensionAmount currencyID="USD">120.00</cbc:LineExtensionAmount>`),
			msg: "Invoice/cac:InvoiceLine/cbc:LineExtensionAmount (line 90) is in currency \"USD\""},
		{name: "no supplier name", rule: "ubl.required.supplier-name", doc: edit(t, base, supplierNames...), msg: "AccountingSupplierParty"},
		{name: "no customer name", rule: "ubl.required.customer-name", doc: edit(t, base, customerNames...), msg: "AccountingCustomerParty"},
		{name: "no customer address", rule: "ubl.customer-address", doc: edit(t, base, customerEP, "", customerCt, ""), msg: "give the address to send to"},
		{name: "customer address invalid", rule: "ubl.customer-address", doc: edit(t, base, customerEP, `<cbc:EndpointID schemeID="EM">crediteuren at klant</cbc:EndpointID>`)},
		{name: "address given at queue time invalid", rule: "ubl.customer-address", doc: base, to: "not an address"},
		{name: "no payable amount", rule: "ubl.required.payable-amount", doc: edit(t, base, payable, "")},
		{name: "no line extension amount", rule: "ubl.required.line-extension-amount", doc: edit(t, base, lineExt, "")},
		{name: "no tax inclusive amount", rule: "ubl.required.tax-inclusive-amount", doc: edit(t, base, taxIncl, "")},
		{name: "no tax exclusive amount", rule: "ubl.required.tax-exclusive-amount", doc: edit(t, base, taxExcl, "")},
		{name: "no lines", rule: "ubl.required.lines", doc: bytes.ReplaceAll(base, []byte("cac:InvoiceLine>"), []byte("cac:Line>")), msg: "cac:InvoiceLine"},
		{name: "line without amount", rule: "ubl.required.line-amount", doc: edit(t, base, line2, "")},
		{name: "no tax total", rule: "ubl.required.tax-total", doc: edit(t, base, totalTax, "<cac:TaxTotal>")},
		{name: "decimal comma", rule: "ubl.amount", doc: edit(t, base, payable, `<cbc:PayableAmount currencyID="EUR">447,70</cbc:PayableAmount>`), msg: `"447,70"`},
		{name: "three decimals in a total", rule: "ubl.amount", doc: edit(t, base, payable, `<cbc:PayableAmount currencyID="EUR">447.700</cbc:PayableAmount>`), msg: "two decimals"},
		{name: "exponent", rule: "ubl.amount", doc: edit(t, base, line2, `<cbc:LineExtensionAmount currencyID="EUR">1.2e2</cbc:LineExtensionAmount>`)},
		{name: "lines do not add up", rule: "ubl.sum.lines", doc: edit(t, base, line2, `<cbc:LineExtensionAmount currencyID="EUR">130.00</cbc:LineExtensionAmount>`),
			msg: "the lines add up to 380.00 but Invoice/cac:LegalMonetaryTotal/cbc:LineExtensionAmount says 370.00"},
		{name: "subtotals do not add up", rule: "ubl.sum.tax", doc: edit(t, base, subTax, "</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"EUR\">70.00</cbc:TaxAmount>"),
			msg: "add up to 70.00 but Invoice/cac:TaxTotal/cbc:TaxAmount says 77.70"},
		{name: "tax exclusive wrong", rule: "ubl.sum.tax-exclusive", doc: edit(t, base, taxExcl, `<cbc:TaxExclusiveAmount currencyID="EUR">360.00</cbc:TaxExclusiveAmount>`),
			msg: "is 370.00 but Invoice/cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount says 360.00"},
		{name: "tax inclusive wrong", rule: "ubl.sum.tax-inclusive", doc: edit(t, base, taxIncl, `<cbc:TaxInclusiveAmount currencyID="EUR">450.00</cbc:TaxInclusiveAmount>`),
			msg: "TaxExclusiveAmount 370.00 plus TaxTotal/TaxAmount 77.70 is 447.70 but"},
		{name: "payable wrong", rule: "ubl.sum.payable", doc: edit(t, base, payable, `<cbc:PayableAmount currencyID="EUR">450.00</cbc:PayableAmount>`),
			msg: "is 447.70 but Invoice/cac:LegalMonetaryTotal/cbc:PayableAmount says 450.00"},
		{name: "PDF not base64", rule: "ubl.attachment", doc: edit(t, readEInvoiceFile(t, "example-invoice-pdf.xml"), `filename="Factuur-2026-0417.pdf">`, `filename="Factuur-2026-0417.pdf">!!`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := CheckEInvoice(tc.doc, tc.to)
			if err == nil {
				t.Fatalf("accepted: %+v", inv)
			}
			var e *EInvoiceError
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is no *EInvoiceError", err, err)
			}
			if e.Rule != tc.rule {
				t.Fatalf("first failed rule %q, want %q; all: %v", e.Rule, tc.rule, err)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q does not say %q", e.Message, tc.msg)
			}
			if inv != (EInvoice{}) {
				t.Errorf("a refused invoice still returned %+v", inv)
			}
		})
	}
}

func TestCheckEInvoiceReportsEveryFailure(t *testing.T) {
	doc := edit(t, readEInvoiceFile(t, "example-invoice.xml"),
		"<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "",
		`<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`, `<cbc:PayableAmount currencyID="EUR">1.00</cbc:PayableAmount>`)
	_, err := CheckEInvoice(doc, "")
	if got := strings.Join(rules(err), " "); got != "ubl.required.issue-date ubl.sum.payable" {
		t.Errorf("rules %q, want the missing date then the payable sum; error: %v", got, err)
	}
	var e *EInvoiceError
	if !errors.As(err, &e) || e.Rule != "ubl.required.issue-date" {
		t.Errorf("errors.As finds %+v, want the first failure", e)
	}
}

func TestCheckEInvoiceAccepts(t *testing.T) {
	base := readEInvoiceFile(t, "example-invoice.xml")
	const ci = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>"
	for _, tc := range []struct {
		name string
		doc  []byte
	}{
		{"NLCIUS", edit(t, base, ci, "urn:cen.eu:en16931:2017#compliant#urn:fdc:nen.nl:nlcius:v1.0</cbc:CustomizationID>")},
		{"an extension of Peppol BIS", edit(t, base, ci, "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0#conformant#urn:example:ext</cbc:CustomizationID>")},
		{"other prefixes, byte order mark", append([]byte("\xef\xbb\xbf"), strings.NewReplacer("cbc:", "b:", "cac:", "a:", "xmlns:cbc=", "xmlns:b=", "xmlns:cac=", "xmlns:a=").Replace(string(base))...)},
		// 0.10 + 0.20 is 0.30 here, as it is not in floating point.
		{"cents that floats get wrong", edit(t, base,
			`<cbc:LineExtensionAmount currencyID="EUR">250.00</cbc:LineExtensionAmount>`, `<cbc:LineExtensionAmount currencyID="EUR">0.1</cbc:LineExtensionAmount>`,
			`<cbc:LineExtensionAmount currencyID="EUR">120.00</cbc:LineExtensionAmount>`, `<cbc:LineExtensionAmount currencyID="EUR">0.20</cbc:LineExtensionAmount>`,
			`<cbc:LineExtensionAmount currencyID="EUR">370.00</cbc:LineExtensionAmount>`, `<cbc:LineExtensionAmount currencyID="EUR">0.30</cbc:LineExtensionAmount>`,
			`<cbc:TaxExclusiveAmount currencyID="EUR">370.00</cbc:TaxExclusiveAmount>`, `<cbc:TaxExclusiveAmount currencyID="EUR">0.3</cbc:TaxExclusiveAmount>`,
			"<cbc:TaxAmount currencyID=\"EUR\">77.70</cbc:TaxAmount>\n    <cac:TaxSubtotal>", "<cbc:TaxAmount currencyID=\"EUR\">0.06</cbc:TaxAmount>\n    <cac:TaxSubtotal>",
			"</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"EUR\">77.70</cbc:TaxAmount>", "</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"EUR\">0.06</cbc:TaxAmount>",
			`<cbc:TaxInclusiveAmount currencyID="EUR">447.70</cbc:TaxInclusiveAmount>`, `<cbc:TaxInclusiveAmount currencyID="EUR">0.36</cbc:TaxInclusiveAmount>`,
			`<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`, `<cbc:PayableAmount currencyID="EUR">0.36</cbc:PayableAmount>`)},
		{"allowance, charge, prepaid and rounding", edit(t, base,
			`<cbc:TaxExclusiveAmount currencyID="EUR">370.00</cbc:TaxExclusiveAmount>`,
			`<cbc:TaxExclusiveAmount currencyID="EUR">365.00</cbc:TaxExclusiveAmount>`,
			`<cbc:TaxInclusiveAmount currencyID="EUR">447.70</cbc:TaxInclusiveAmount>`,
			`<cbc:TaxInclusiveAmount currencyID="EUR">442.70</cbc:TaxInclusiveAmount>
    <cbc:AllowanceTotalAmount currencyID="EUR">10.00</cbc:AllowanceTotalAmount>
    <cbc:ChargeTotalAmount currencyID="EUR">5</cbc:ChargeTotalAmount>
    <cbc:PrepaidAmount currencyID="EUR">100.00</cbc:PrepaidAmount>
    <cbc:PayableRoundingAmount currencyID="EUR">0.30</cbc:PayableRoundingAmount>`,
			`<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`, `<cbc:PayableAmount currencyID="EUR">343.00</cbc:PayableAmount>`)},
		// A second TaxTotal in TaxCurrencyCode (EN 16931 BT-111) is not in the
		// document currency, and is allowed.
		{"second tax total in the tax currency", edit(t, base,
			"<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>", "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>\n  <cbc:TaxCurrencyCode>USD</cbc:TaxCurrencyCode>",
			"  <cac:LegalMonetaryTotal>", "  <cac:TaxTotal><cbc:TaxAmount currencyID=\"USD\">90.13</cbc:TaxAmount></cac:TaxTotal>\n  <cac:LegalMonetaryTotal>")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := CheckEInvoice(tc.doc, "")
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if inv.Number != "2026-0417" || inv.SupplierName != "Drukkerij Voorbeeld B.V." || inv.CustomerEmail != "crediteuren@klant.example" {
				t.Errorf("read %+v", inv)
			}
		})
	}
	// The tax-currency total is allowed only when TaxCurrencyCode says so.
	doc := edit(t, base, "  <cac:LegalMonetaryTotal>", "  <cac:TaxTotal><cbc:TaxAmount currencyID=\"USD\">90.13</cbc:TaxAmount></cac:TaxTotal>\n  <cac:LegalMonetaryTotal>")
	if _, err := CheckEInvoice(doc, ""); strings.Join(rules(err), " ") != "ubl.currency" {
		t.Errorf("a USD tax total without TaxCurrencyCode: %v, want ubl.currency", err)
	}
}

func TestCheckEInvoiceCreditNote(t *testing.T) {
	inv, err := CheckEInvoice(readEInvoiceFile(t, "example-creditnote.xml"), "")
	if err != nil {
		t.Fatalf("the example credit note is refused: %v", err)
	}
	if inv.Kind != "CreditNote" || inv.Number != "2026-C0012" || !inv.IssueDate.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) ||
		inv.LineTotal != "250.00" || inv.TaxTotal != "52.50" || inv.Payable != "302.50" || inv.SupplierKey != "0106:90000001" {
		t.Errorf("read %+v", inv)
	}
	if s, p := inv.SubjectAndPeriod(); s != "2026-C0012" || p != "2026-12" {
		t.Errorf("SubjectAndPeriod = %q, %q", s, p)
	}
	// A credit note's lines are CreditNoteLines; InvoiceLines do not count.
	doc := edit(t, readEInvoiceFile(t, "example-creditnote.xml"), "<cac:CreditNoteLine>", "<cac:InvoiceLine>", "</cac:CreditNoteLine>", "</cac:InvoiceLine>")
	var e *EInvoiceError
	if _, err := CheckEInvoice(doc, ""); !errors.As(err, &e) || e.Rule != "ubl.required.lines" || !strings.Contains(e.Message, "cac:CreditNoteLine") {
		t.Errorf("credit note with invoice lines: %v", err)
	}
}

func TestCheckEInvoiceEmbeddedPDF(t *testing.T) {
	inv, err := CheckEInvoice(readEInvoiceFile(t, "example-invoice-pdf.xml"), "")
	if err != nil {
		t.Fatalf("refused: %v", err)
	}
	want := readEInvoiceFile(t, "example-invoice.pdf")
	if inv.PDF == nil {
		t.Fatal("no PDF read")
	}
	if inv.PDF.Name != "Factuur-2026-0417.pdf" || inv.PDF.MimeType != "application/pdf" {
		t.Errorf("PDF %q %q", inv.PDF.Name, inv.PDF.MimeType)
	}
	if !bytes.Equal(inv.PDF.Content, want) {
		t.Errorf("PDF content differs from testdata/einvoice/example-invoice.pdf: %d bytes, want %d", len(inv.PDF.Content), len(want))
	}
	// A file name with a directory part does not reach a MIME header as it is.
	doc := edit(t, readEInvoiceFile(t, "example-invoice-pdf.xml"), `filename="Factuur-2026-0417.pdf"`, `filename="..\..\x/../Factuur.pdf"`)
	if inv, err := ReadEInvoice(doc); err != nil || inv.PDF == nil || inv.PDF.Name != "Factuur.pdf" {
		t.Errorf("ReadEInvoice with a path in the file name: %+v, %v", inv.PDF, err)
	}
}

func TestCheckEInvoiceMissingCustomerAddress(t *testing.T) {
	doc := edit(t, readEInvoiceFile(t, "example-invoice.xml"),
		`<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`, "",
		`<cac:Contact><cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>`, "")
	var e *EInvoiceError
	if _, err := CheckEInvoice(doc, ""); !errors.As(err, &e) || e.Rule != "ubl.customer-address" {
		t.Fatalf("without an address: %v, want ubl.customer-address", err)
	}
	inv, err := CheckEInvoice(doc, "administratie@klant.example")
	if err != nil {
		t.Fatalf("with an address given at queue time: %v", err)
	}
	if inv.CustomerEmail != "" || inv.Recipient("administratie@klant.example") != "administratie@klant.example" {
		t.Errorf("CustomerEmail %q, Recipient %q", inv.CustomerEmail, inv.Recipient("administratie@klant.example"))
	}
	// The contact's address serves when there is no EM endpoint.
	doc = edit(t, readEInvoiceFile(t, "example-invoice.xml"), `<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`, "",
		`<cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>
    </cac:Party>
  </cac:AccountingCustomerParty>`, `<cbc:ElectronicMail>inkoop@klant.example</cbc:ElectronicMail></cac:Contact>
    </cac:Party>
  </cac:AccountingCustomerParty>`)
	if inv, err := CheckEInvoice(doc, ""); err != nil || inv.CustomerEmail != "inkoop@klant.example" {
		t.Errorf("contact address: %q, %v", inv.CustomerEmail, err)
	}
}

func TestCheckEInvoiceNotXML(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01\r\n-\xb4\x00\x00\x00\x00IEND\xaeB`\x82")
	for name, doc := range map[string][]byte{"PNG": png, "PDF": readEInvoiceFile(t, "example-invoice.pdf"), "text": []byte("Factuur 2026-0417: EUR 447,70")} {
		for _, check := range []func([]byte) (EInvoice, error){func(b []byte) (EInvoice, error) { return CheckEInvoice(b, "") }, ReadEInvoice} {
			var e *EInvoiceError
			if _, err := check(doc); !errors.As(err, &e) || e.Rule != "ubl.well-formed" {
				t.Errorf("%s: %v, want ubl.well-formed", name, err)
			}
		}
	}
	big := bytes.Repeat([]byte("<a>"), MaxAttachmentSize/3+1)
	var e *EInvoiceError
	if _, err := CheckEInvoice(big, ""); !errors.As(err, &e) || e.Rule != "ubl.size" {
		t.Errorf("over the size limit: %v", err)
	}
	deep := []byte(strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100))
	if _, err := CheckEInvoice(deep, ""); !errors.As(err, &e) || e.Rule != "ubl.size" {
		t.Errorf("nested 100 deep: %v", err)
	}
}

func TestReadEInvoice(t *testing.T) {
	base := readEInvoiceFile(t, "example-invoice.xml")
	// A received invoice is stored even when it would not pass as one Koerier sends.
	doc := edit(t, base,
		"urn:fdc:peppol.eu:2017:poacc:billing:3.0</cbc:CustomizationID>", "urn:example:other</cbc:CustomizationID>",
		`<cbc:PayableAmount currencyID="EUR">447.70</cbc:PayableAmount>`, `<cbc:PayableAmount currencyID="EUR">1.00</cbc:PayableAmount>`,
		`<cbc:EndpointID schemeID="EM">crediteuren@klant.example</cbc:EndpointID>`, "",
		`<cac:Contact><cbc:ElectronicMail>crediteuren@klant.example</cbc:ElectronicMail></cac:Contact>`, "",
		"<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>"+strings.Repeat("7", 40)+"</cbc:ID>")
	inv, err := ReadEInvoice(doc)
	if err != nil {
		t.Fatalf("ReadEInvoice refused a storable invoice: %v", err)
	}
	if inv.Payable != "1.00" || inv.Number != strings.Repeat("7", 40) || inv.SupplierKey != "0106:90000001" || inv.CustomerEmail != "" {
		t.Errorf("read %+v", inv)
	}
	for _, tc := range []struct {
		rule string
		doc  []byte
	}{
		{"ubl.required.id", edit(t, base, "<cbc:ID>2026-0417</cbc:ID>", "")},
		{"ubl.required.issue-date", edit(t, base, "<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "")},
		{"ubl.issue-date", edit(t, base, "<cbc:IssueDate>2026-11-20</cbc:IssueDate>", "<cbc:IssueDate>morgen</cbc:IssueDate>")},
		{"ubl.required.supplier-name", edit(t, base, "<cac:PartyName><cbc:Name>Drukkerij Voorbeeld B.V.</cbc:Name></cac:PartyName>", "",
			"<cbc:RegistrationName>Drukkerij Voorbeeld B.V.</cbc:RegistrationName>", "")},
		{"ubl.namespace", edit(t, base, `xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"`, `xmlns="urn:example"`)},
	} {
		var e *EInvoiceError
		if _, err := ReadEInvoice(tc.doc); !errors.As(err, &e) || e.Rule != tc.rule {
			t.Errorf("%s: got %v", tc.rule, err)
		}
	}
}

func TestEInvoiceSupplierKey(t *testing.T) {
	base := readEInvoiceFile(t, "example-invoice.xml")
	noEndpoint := edit(t, base, `<cbc:EndpointID schemeID="0106">90000001</cbc:EndpointID>`, "")
	noVAT := edit(t, noEndpoint, "<cbc:CompanyID>NL000099998B57</cbc:CompanyID>", "")
	for _, tc := range []struct {
		doc  []byte
		want string
	}{
		{base, "0106:90000001"},
		{edit(t, base, `<cbc:EndpointID schemeID="0106">90000001</cbc:EndpointID>`, `<cbc:EndpointID schemeID="EM">Facturen@Drukkerij.example</cbc:EndpointID>`), "EM:facturen@drukkerij.example"},
		{noEndpoint, "NL000099998B57"},
		{noVAT, "DRUKKERIJ VOORBEELD B.V."},
	} {
		if inv, err := ReadEInvoice(tc.doc); err != nil || inv.SupplierKey != tc.want {
			t.Errorf("SupplierKey %q (%v), want %q", inv.SupplierKey, err, tc.want)
		}
	}
}

func FuzzCheckEInvoice(f *testing.F) {
	for _, name := range []string{"example-invoice.xml", "example-creditnote.xml", "example-invoice-pdf.xml"} {
		f.Add(readEInvoiceFile(f, name), "")
	}
	f.Add([]byte(`<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>`), "a@b.example")
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`), "")
	f.Add([]byte("\x89PNG\r\n\x1a\n"), "x")
	f.Fuzz(func(t *testing.T, doc []byte, to string) {
		inv, err := CheckEInvoice(doc, to)
		read, rerr := ReadEInvoice(doc)
		if err != nil {
			var e *EInvoiceError
			if !errors.As(err, &e) || e.Rule == "" || e.Message == "" {
				t.Fatalf("error without a rule: %v", err)
			}
			return
		}
		// Reading checks a subset of what queuing checks.
		if rerr != nil {
			t.Fatalf("CheckEInvoice accepted what ReadEInvoice refuses: %v", rerr)
		}
		if read.Number != inv.Number || read.Payable != inv.Payable {
			t.Fatalf("the two readers disagree: %+v / %+v", read, inv)
		}
		subject, period := inv.SubjectAndPeriod()
		if err := (Declaration{Environment: "e", Type: TypeEInvoice, Subject: subject, Period: period}).Validate(); err != nil {
			t.Fatalf("an accepted invoice gives subject %q period %q that do not make a declaration: %v", subject, period, err)
		}
		if inv.Recipient(to) == "" || inv.SupplierKey == "" || inv.IssueDate.IsZero() {
			t.Fatalf("accepted without recipient, supplier key or date: %+v", inv)
		}
	})
}

// Dutch invoice numbers often carry a slash, which a declaration's key cannot: such an
// invoice is queued under the number with a hyphen, and keeps its own number.
func TestInvoiceNumberWithSlashMakesAValidSubject(t *testing.T) {
	doc := strings.Replace(string(readEInvoiceFile(t, "example-invoice.xml")), "<cbc:ID>2026-0417</cbc:ID>", "<cbc:ID>2026/0417</cbc:ID>", 1)
	inv, err := CheckEInvoice([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	subject, period := inv.SubjectAndPeriod()
	if inv.Number != "2026/0417" || subject != "2026-0417" || period != "2026-11" {
		t.Fatalf("number %q subject %q period %q", inv.Number, subject, period)
	}
	if err := (Declaration{Environment: "e", Type: TypeEInvoice, Subject: subject, Period: period}).Validate(); err != nil {
		t.Fatal(err)
	}
}
