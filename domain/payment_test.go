package domain

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readPaymentFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "payments", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// paymentToday is the day the tests queue on: the example's execution date, 2026-12-01,
// lies after it.
var paymentToday = time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)

// paymentRules lists the Rule of every PaymentError in err, in order.
func paymentRules(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var e *PaymentError
		if errors.As(err, &e) {
			out = append(out, e.Rule)
		}
	}
	walk(err)
	return out
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestCheckPaymentExample(t *testing.T) {
	p, err := CheckPayment(readPaymentFile(t, "example-pain001.xml"), paymentToday)
	if err != nil {
		t.Fatalf("the example payment file is refused: %v", err)
	}
	want := PaymentFile{
		Version:   Pain001V09,
		MsgID:     "EXAMPLE-20261124-0001",
		Created:   time.Date(2026, 11, 24, 10, 15, 0, 0, time.UTC),
		NbOfTxs:   2,
		CtrlSum:   "1735.50",
		Initiator: "Drukkerij Voorbeeld B.V.",
		Blocks: []PaymentBlock{{
			PmtInfID:   "EXAMPLE-20261124-0001-1",
			Execution:  date(2026, 12, 1),
			DebtorName: "Drukkerij Voorbeeld B.V.",
			DebtorIBAN: "NL91ABNA0417164300",
			DebtorBIC:  "ABNANL2A",
			NbOfTxs:    2,
			CtrlSum:    "1735.50",
			Transactions: []PaymentTx{
				{EndToEndID: "INV-2026-0311", Amount: "1250.00", Currency: "EUR", CreditorName: "Papiergroothandel Noord B.V.",
					CreditorIBAN: "NL39RABO0300065264", CreditorBIC: "RABONL2U", Remittance: "Factuur 2026-0311"},
				{EndToEndID: "INV-88-2026-17", Amount: "485.50", Currency: "EUR", CreditorName: "Inktservice Oost V.O.F.",
					CreditorIBAN: "NL36INGB0007654321", CreditorBIC: "INGBNL2A", Remittance: "Factuur 88-2026-17"},
			},
		}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("read\n%+v\nwant\n%+v", p, want)
	}
	if s, per := p.SubjectAndPeriod(); s != "EXAMPLE-20261124-0001" || per != "2026-12" {
		t.Errorf("SubjectAndPeriod = %q, %q", s, per)
	}
	if txs := p.Transactions(); len(txs) != 2 || txs[0].EndToEndID != "INV-2026-0311" || txs[1].EndToEndID != "INV-88-2026-17" {
		t.Errorf("Transactions = %+v", txs)
	}
	read, err := ReadPayment(readPaymentFile(t, "example-pain001.xml"))
	if err != nil || !reflect.DeepEqual(read, want) {
		t.Errorf("ReadPayment differs from CheckPayment: %+v, %v", read, err)
	}
	// The execution date is the last day it may be queued on.
	if _, err := CheckPayment(readPaymentFile(t, "example-pain001.xml"), time.Date(2026, 12, 1, 23, 59, 0, 0, time.UTC)); err != nil {
		t.Errorf("queued on the execution date itself: %v", err)
	}
}

func TestCheckPaymentVersion03(t *testing.T) {
	p, err := CheckPayment(readPaymentFile(t, "example-pain001-03.xml"), paymentToday)
	if err != nil {
		t.Fatalf("the pain.001.001.03 example is refused: %v", err)
	}
	if p.Version != Pain001V03 || p.MsgID != "EXAMPLE/2026/1125-7" || p.NbOfTxs != 3 || p.CtrlSum != "10020.1" || p.Initiator != "Bakkerij De Korenschoof" {
		t.Errorf("group header: %+v", p)
	}
	if want := time.Date(2026, 11, 25, 7, 30, 12, 250e6, time.UTC); !p.Created.Equal(want) {
		t.Errorf("Created = %v, want %v", p.Created, want)
	}
	if len(p.Blocks) != 2 {
		t.Fatalf("blocks: %+v", p.Blocks)
	}
	a, b := p.Blocks[0], p.Blocks[1]
	if a.PmtInfID != "KS-2026-1125-A" || !a.Execution.Equal(date(2026, 11, 26)) || a.DebtorBIC != "INGBNL2A" || a.NbOfTxs != 2 || a.CtrlSum != "10000.10" ||
		a.DebtorIBAN != "NL20INGB0001234567" || a.DebtorName != "Bakkerij De Korenschoof" {
		t.Errorf("first block: %+v", a)
	}
	if b.PmtInfID != "KS-2026-1125-B" || !b.Execution.Equal(date(2026, 12, 15)) || b.NbOfTxs != 0 || b.CtrlSum != "" {
		t.Errorf("second block (no NbOfTxs or CtrlSum of its own): %+v", b)
	}
	txs := p.Transactions()
	want := []PaymentTx{
		{EndToEndID: "MEEL-4471", Amount: "9999.99", Currency: "EUR", CreditorName: "Mühle Schmidt GmbH", CreditorIBAN: "DE89370400440532013000",
			CreditorBIC: "DEUTDEFFXXX", Remittance: "Rechnung 4471"},
		{EndToEndID: "HUUR-2026-12", Amount: "0.11", Currency: "EUR", CreditorName: "Vastgoed Korenmarkt B.V.", CreditorIBAN: "BE68539007547034",
			Remittance: "1234567890123456"},
		{EndToEndID: "NOTA 12 (DEC)", Amount: "20", Currency: "EUR", CreditorName: "Schoonmaakbedrijf L'Étoile", CreditorIBAN: "FR1420041010050500013M02606",
			Remittance: "Nota 12, december"},
	}
	if !reflect.DeepEqual(txs, want) {
		t.Errorf("transactions\n%+v\nwant\n%+v", txs, want)
	}
	// The slash of the MsgId would split the declaration key; the earliest date is the period.
	s, per := p.SubjectAndPeriod()
	if s != "EXAMPLE-2026-1125-7" || per != "2026-11" {
		t.Errorf("SubjectAndPeriod = %q, %q", s, per)
	}
	if err := (Declaration{Environment: "e", Type: TypePayment, Subject: s, Period: per}).Validate(); err != nil {
		t.Errorf("the subject and period do not make a declaration: %v", err)
	}
}

// Every check with a file that breaks it, and only it (where breaking one thing
// necessarily breaks another, both are listed).
func TestCheckPaymentRules(t *testing.T) {
	ex := readPaymentFile(t, "example-pain001.xml")
	ex03 := readPaymentFile(t, "example-pain001-03.xml")
	const grpNb = "<NbOfTxs>2</NbOfTxs>\n      <CtrlSum>1735.50</CtrlSum>\n      <InitgPty>"
	const blkNb = "<NbOfTxs>2</NbOfTxs>\n      <CtrlSum>1735.50</CtrlSum>\n      <PmtTpInf>"
	cases := []struct {
		name string
		doc  []byte
		want []string
	}{
		{"doctype", append([]byte(`<!DOCTYPE Document [<!ENTITY x "y">]>`), ex[len(`<?xml version="1.0" encoding="UTF-8"?>`):]...), []string{"payment.well-formed"}},
		{"cut off", ex[:len(ex)-30], []string{"payment.well-formed"}},
		{"not utf-8", edit(t, ex, "Drukkerij Voorbeeld B.V.</Nm></InitgPty>", "Drukkerij \xe9 B.V.</Nm></InitgPty>"), []string{"payment.well-formed"}},
		{"empty", []byte(" \n"), []string{"payment.well-formed"}},
		{"two roots", append(append([]byte{}, ex...), "<Document/>"...), []string{"payment.well-formed"}},
		{"deep", []byte(strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)), []string{"payment.well-formed"}},
		{"other version", edit(t, ex, "pain.001.001.09", "pain.001.001.05"), []string{"payment.namespace"}},
		{"no namespace", edit(t, ex, ` xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"`, ""), []string{"payment.namespace"}},
		{"direct debit", edit(t, edit(t, ex, "<CstmrCdtTrfInitn>", "<CstmrDrctDbtInitn>"), "</CstmrCdtTrfInitn>", "</CstmrDrctDbtInitn>"), []string{"payment.namespace"}},
		{"foreign element", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", `<x:MsgId xmlns:x="urn:other">EXAMPLE-20261124-0001</x:MsgId>`), []string{"payment.namespace"}},
		{"msgid missing", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", ""), []string{"payment.required.msgid"}},
		{"msgid too long", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>"+strings.Repeat("M", 36)+"</MsgId>"), []string{"payment.msgid"}},
		{"msgid character", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>EXAMPLE_20261124</MsgId>"), []string{"payment.msgid"}},
		{"msgid leading slash", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>/EXAMPLE</MsgId>"), []string{"payment.msgid"}},
		{"msgid double slash", edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>EX//AMPLE</MsgId>"), []string{"payment.msgid"}},
		{"credttm missing", edit(t, ex, "<CreDtTm>2026-11-24T10:15:00</CreDtTm>", ""), []string{"payment.required.credttm"}},
		{"credttm", edit(t, ex, "<CreDtTm>2026-11-24T10:15:00</CreDtTm>", "<CreDtTm>24-11-2026 10:15</CreDtTm>"), []string{"payment.credttm"}},
		{"group nboftxs missing", edit(t, ex, grpNb, "<CtrlSum>1735.50</CtrlSum><InitgPty>"), []string{"payment.required.nboftxs"}},
		{"group nboftxs wrong", edit(t, ex, grpNb, "<NbOfTxs>3</NbOfTxs><CtrlSum>1735.50</CtrlSum><InitgPty>"), []string{"payment.nboftxs"}},
		{"group nboftxs text", edit(t, ex, grpNb, "<NbOfTxs>two</NbOfTxs><CtrlSum>1735.50</CtrlSum><InitgPty>"), []string{"payment.nboftxs"}},
		{"block nboftxs wrong", edit(t, ex, blkNb, "<NbOfTxs>1</NbOfTxs><CtrlSum>1735.50</CtrlSum><PmtTpInf>"), []string{"payment.nboftxs"}},
		{"group ctrlsum", edit(t, ex, grpNb, "<NbOfTxs>2</NbOfTxs><CtrlSum>1735.51</CtrlSum><InitgPty>"), []string{"payment.ctrlsum"}},
		{"block ctrlsum", edit(t, ex, blkNb, "<NbOfTxs>2</NbOfTxs><CtrlSum>1735.49</CtrlSum><PmtTpInf>"), []string{"payment.ctrlsum"}},
		{"ctrlsum text", edit(t, ex, blkNb, "<NbOfTxs>2</NbOfTxs><CtrlSum>1,735.50</CtrlSum><PmtTpInf>"), []string{"payment.ctrlsum"}},
		{"ctrlsum float trap", edit(t, ex03, "<CtrlSum>10000.10</CtrlSum>", "<CtrlSum>10000.1000000000001</CtrlSum>"), []string{"payment.ctrlsum"}},
		{"pmtinf missing", edit(t, ex, string(ex[strings.Index(string(ex), "<PmtInf>"):strings.Index(string(ex), "</PmtInf>")+len("</PmtInf>")]), ""),
			[]string{"payment.required.pmtinf", "payment.nboftxs", "payment.ctrlsum"}},
		{"pmtinfid missing", edit(t, ex, "<PmtInfId>EXAMPLE-20261124-0001-1</PmtInfId>", ""), []string{"payment.required.pmtinfid"}},
		{"pmtinfid character", edit(t, ex, "<PmtInfId>EXAMPLE-20261124-0001-1</PmtInfId>", "<PmtInfId>EXAMPLE#1</PmtInfId>"), []string{"payment.pmtinfid"}},
		{"pmtinfid twice", edit(t, ex03, "<PmtInfId>KS-2026-1125-B</PmtInfId>", "<PmtInfId>KS-2026-1125-A</PmtInfId>"), []string{"payment.pmtinfid"}},
		{"pmtmtd", edit(t, ex, "<PmtMtd>TRF</PmtMtd>", "<PmtMtd>CHK</PmtMtd>"), []string{"payment.pmtmtd"}},
		{"execution date past", edit(t, ex, "<Dt>2026-12-01</Dt>", "<Dt>2026-11-25</Dt>"), []string{"payment.execution-date"}},
		{"execution date form", edit(t, ex, "<Dt>2026-12-01</Dt>", "<Dt>01-12-2026</Dt>"), []string{"payment.execution-date"}},
		{"execution DtTm", edit(t, ex, "<Dt>2026-12-01</Dt>", "<DtTm>2026-12-01T09:00:00</DtTm>"), []string{"payment.execution-date"}},
		{"execution .03 form in .09", edit(t, ex, "<ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>", "<ReqdExctnDt>2026-12-01</ReqdExctnDt>"), []string{"payment.execution-date"}},
		{"execution .09 form in .03", edit(t, ex03, "<ReqdExctnDt>2026-12-15</ReqdExctnDt>", "<ReqdExctnDt><Dt>2026-12-15</Dt></ReqdExctnDt>"), []string{"payment.execution-date"}},
		{"execution missing", edit(t, ex, "<ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>", ""), []string{"payment.execution-date"}},
		{"debtor name missing", edit(t, ex, "<Dbtr><Nm>Drukkerij Voorbeeld B.V.</Nm></Dbtr>", ""), []string{"payment.required.debtor-name"}},
		{"debtor iban missing", edit(t, ex, "<DbtrAcct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></DbtrAcct>", ""), []string{"payment.required.debtor-iban"}},
		{"debtor iban check digits", edit(t, ex, "NL91ABNA0417164300", "NL91ABNA0417164301"), []string{"payment.iban"}},
		{"creditor iban length", edit(t, ex, "NL39RABO0300065264", "NL39RABO030006526"), []string{"payment.iban"}},
		{"creditor iban spaces", edit(t, ex, "NL36INGB0007654321", "NL36 INGB 0007 6543 21"), []string{"payment.iban"}},
		{"creditor iban outside sepa", edit(t, ex, "NL36INGB0007654321", "US64SVBKUS6S3300958879"), []string{"payment.iban"}},
		{"creditor iban missing", edit(t, ex, "<CdtrAcct><Id><IBAN>NL36INGB0007654321</IBAN></Id></CdtrAcct>", ""), []string{"payment.required.creditor-iban"}},
		{"creditor name missing", edit(t, ex, "<Cdtr><Nm>Inktservice Oost V.O.F.</Nm></Cdtr>", ""), []string{"payment.required.creditor-name"}},
		{"creditor name too long", edit(t, ex, "Inktservice Oost V.O.F.", strings.Repeat("n", 71)), []string{"payment.name"}},
		{"remittance too long", edit(t, ex, "<Ustrd>Factuur 88-2026-17</Ustrd>", "<Ustrd>"+strings.Repeat("r", 141)+"</Ustrd>"), []string{"payment.remittance"}},
		{"debtor bic", edit(t, ex, "<BICFI>ABNANL2A</BICFI>", "<BICFI>ABNANL2</BICFI>"), []string{"payment.bic"}},
		{"creditor bic lower case", edit(t, ex, "<BICFI>RABONL2U</BICFI>", "<BICFI>rabonl2u</BICFI>"), []string{"payment.bic"}},
		{"bic element of .03 in .09", edit(t, ex, "<BICFI>RABONL2U</BICFI>", "<BIC>RABONL2U</BIC>"), []string{"payment.bic"}},
		{"bicfi element of .09 in .03", edit(t, ex03, "<BIC>DEUTDEFFXXX</BIC>", "<BICFI>DEUTDEFFXXX</BICFI>"), []string{"payment.bic"}},
		{"amount missing", edit(t, ex, `<Amt><InstdAmt Ccy="EUR">485.50</InstdAmt></Amt>`, ""), []string{"payment.required.instdamt"}},
		{"amount zero", edit(t, ex, ">485.50<", ">0.00<"), []string{"payment.amount"}},
		{"amount negative", edit(t, ex, ">485.50<", ">-485.50<"), []string{"payment.amount"}},
		{"amount three decimals", edit(t, ex, ">485.50<", ">485.500<"), []string{"payment.amount"}},
		{"amount comma", edit(t, ex, ">485.50<", ">485,50<"), []string{"payment.amount"}},
		{"amount exponent", edit(t, ex, ">485.50<", ">4.855E2<"), []string{"payment.amount"}},
		{"amount above the maximum", edit(t, ex, ">485.50<", ">1000000000.00<"), []string{"payment.amount"}},
		{"currency", edit(t, ex, `Ccy="EUR">485.50`, `Ccy="USD">485.50`), []string{"payment.currency"}},
		{"currency missing", edit(t, ex, `Ccy="EUR">485.50`, `>485.50`), []string{"payment.currency"}},
		{"endtoendid missing", edit(t, ex, "<PmtId><EndToEndId>INV-88-2026-17</EndToEndId></PmtId>", ""), []string{"payment.required.endtoendid"}},
		{"endtoendid twice", edit(t, ex, "<EndToEndId>INV-88-2026-17</EndToEndId>", "<EndToEndId>INV-2026-0311</EndToEndId>"), []string{"payment.endtoendid"}},
		{"endtoendid too long", edit(t, ex, "<EndToEndId>INV-88-2026-17</EndToEndId>", "<EndToEndId>"+strings.Repeat("E", 36)+"</EndToEndId>"), []string{"payment.endtoendid"}},
		{"no transactions", edit(t, ex03, string(ex03[strings.Index(string(ex03), "<CdtTrfTxInf>\n        <PmtId><EndToEndId>NOTA"):strings.LastIndex(string(ex03), "</CdtTrfTxInf>")+len("</CdtTrfTxInf>")]), ""),
			[]string{"payment.required.cdttrftxinf", "payment.nboftxs", "payment.ctrlsum"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := CheckPayment(c.doc, paymentToday)
			if got := paymentRules(err); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("rules %v, want %v; error: %v", got, c.want, err)
			}
			if msg := err.Error(); len(msg) < 40 {
				t.Errorf("the message says too little to act on: %q", msg)
			}
		})
	}
}

func TestCheckPaymentNamesThePlaceAndTheFirstError(t *testing.T) {
	ex := readPaymentFile(t, "example-pain001.xml")
	doc := edit(t, ex, "<MsgId>EXAMPLE-20261124-0001</MsgId>", "<MsgId>EX//1</MsgId>", ">485.50<", ">-1<", "NL39RABO0300065264", "NL39RABO0300065265")
	_, err := CheckPayment(doc, paymentToday)
	var first *PaymentError
	if !errors.As(err, &first) || first.Rule != "payment.msgid" {
		t.Fatalf("errors.As finds %v, want the MsgId error first; all: %v", first, err)
	}
	if got := paymentRules(err); !reflect.DeepEqual(got, []string{"payment.msgid", "payment.iban", "payment.amount"}) {
		t.Errorf("rules %v", got)
	}
	for _, want := range []string{
		"PmtInf[1] (PmtInfId EXAMPLE-20261124-0001-1)/CdtTrfTxInf[1] (EndToEndId INV-2026-0311)/CdtrAcct/Id/IBAN",
		"CdtTrfTxInf[2] (EndToEndId INV-88-2026-17)/Amt/InstdAmt",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	if want := "payment.msgid: GrpHdr/MsgId"; !strings.HasPrefix(first.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", first.Error(), want)
	}
}

func TestCheckPaymentExecutionDateInThePast(t *testing.T) {
	ex := readPaymentFile(t, "example-pain001.xml")
	_, err := CheckPayment(ex, time.Date(2026, 12, 2, 0, 0, 1, 0, time.UTC))
	var pe *PaymentError
	if !errors.As(err, &pe) || pe.Rule != "payment.execution-date" || !strings.Contains(pe.Message, "2026-12-01 lies before today (2026-12-02)") {
		t.Fatalf("a file whose date has passed: %v", err)
	}
	// Compared as dates in today's own zone: just after midnight in Amsterdam on 2 December
	// is still 1 December in UTC, and the date has passed all the same.
	ams := time.FixedZone("CET", 3600)
	if _, err := CheckPayment(ex, time.Date(2026, 12, 2, 0, 30, 0, 0, ams)); paymentRules(err) == nil {
		t.Error("2 December 00:30 in Amsterdam accepted a file for 1 December")
	}
	if _, err := CheckPayment(ex, time.Date(2026, 12, 1, 23, 30, 0, 0, ams)); err != nil {
		t.Errorf("1 December 23:30 in Amsterdam refused a file for 1 December: %v", err)
	}
	// ReadPayment leaves dates alone: the bank decides about a late file.
	if p, err := ReadPayment(ex); err != nil || !p.Blocks[0].Execution.Equal(date(2026, 12, 1)) {
		t.Errorf("ReadPayment: %+v, %v", p, err)
	}
}

func TestReadPaymentReadsABrokenFile(t *testing.T) {
	ex := readPaymentFile(t, "example-pain001.xml")
	doc := edit(t, ex, "<NbOfTxs>2</NbOfTxs>\n      <CtrlSum>1735.50</CtrlSum>\n      <InitgPty>", "<NbOfTxs>x</NbOfTxs><CtrlSum>9</CtrlSum><InitgPty>",
		"NL36INGB0007654321", "NL00INGB0007654321", "<CreDtTm>2026-11-24T10:15:00</CreDtTm>", "")
	if _, err := CheckPayment(doc, paymentToday); err == nil {
		t.Fatal("CheckPayment accepted the broken file")
	}
	p, err := ReadPayment(doc)
	if err != nil {
		t.Fatalf("ReadPayment refused a file that is only wrong in content: %v", err)
	}
	if p.NbOfTxs != 0 || p.CtrlSum != "9" || !p.Created.IsZero() || p.MsgID != "EXAMPLE-20261124-0001" || len(p.Transactions()) != 2 ||
		p.Transactions()[1].CreditorIBAN != "NL00INGB0007654321" {
		t.Errorf("read: %+v", p)
	}
	for _, bad := range [][]byte{[]byte("<Document"), edit(t, ex, "pain.001.001.09", "pain.008.001.02")} {
		if _, err := ReadPayment(bad); err == nil {
			t.Errorf("ReadPayment accepted %.40q", bad)
		}
	}
}

func TestValidIBAN(t *testing.T) {
	for _, c := range []struct {
		iban string
		ok   bool
	}{
		{"NL91ABNA0417164300", true}, // the example's debtor
		{"NL39RABO0300065264", true}, // the example's creditors
		{"NL36INGB0007654321", true},
		{"NL20INGB0001234567", true},
		{"BE68539007547034", true},
		{"DE89370400440532013000", true},
		{"FR1420041010050500013M02606", true},
		{"LU280019400644750000", true},
		{"ES9121000418450200051332", true},
		{"IT60X0542811101000000123456", true},
		{"AT611904300234573201", true},
		{"NL91ABNA0417164301", false}, // one digit off
		{"NL19ABNA0417164300", false}, // check digits swapped
		{"NL91ABNA041716430", false},  // too short for NL
		{"NL91ABNA04171643000", false},
		{"BE68539007547035", false},
		{"DE89370400440532013001", false},
		{"nl91ABNA0417164300", false}, // country code in lower case
		{"NL91 ABNA 0417 1643 00", false},
		{"US64SVBKUS6S3300958879", false}, // not SEPA
		{"NLXXABNA0417164300", false},
		{"", false},
		{"NL", false},
		{"NL91ABNA0417164300NL91ABNA0417164300", false},
	} {
		if got := ValidIBAN(c.iban); got != c.ok {
			t.Errorf("ValidIBAN(%q) = %v, want %v (%s)", c.iban, got, c.ok, ibanProblem(c.iban))
		}
	}
}

func TestValidBIC(t *testing.T) {
	for _, c := range []struct {
		bic string
		ok  bool
	}{
		{"ABNANL2A", true}, {"RABONL2U", true}, {"INGBNL2A", true}, {"DEUTDEFFXXX", true}, {"DEUTDEFF500", true}, {"BNPAFRPP", true},
		{"ABNANL2", false}, {"ABNANL2AX", false}, {"ABNANL2AXXXX", false}, {"abnanl2a", false}, {"ABNA1L2A", false},
		{"ABNA NL2A", false}, {"", false}, {"ABNANL2A\n", false},
	} {
		if got := ValidBIC(c.bic); got != c.ok {
			t.Errorf("ValidBIC(%q) = %v, want %v", c.bic, got, c.ok)
		}
	}
}

func TestReadStatusReport03(t *testing.T) {
	r, err := ReadStatusReport(readPaymentFile(t, "pain002-03-part.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := StatusReport{
		Version:     Pain002V03,
		MsgID:       "STS-20261126-000417",
		Created:     time.Date(2026, 11, 26, 7, 2, 44, 0, time.UTC),
		OrgnlMsgID:  "EXAMPLE/2026/1125-7",
		GroupStatus: "PART",
		Transactions: []TxStatus{
			{OrgnlEndToEndID: "MEEL-4471", Status: "RJCT", Reasons: []StatusReason{{Code: "AC04", Info: "Konto aufgeloest seit 2026-10-01"}}},
			{OrgnlEndToEndID: "HUUR-2026-12", Status: "ACSC"},
			{OrgnlEndToEndID: "NOTA 12 (DEC)", Status: "ACSC"},
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("read\n%+v\nwant\n%+v", r, want)
	}
}

func TestReadStatusReport10(t *testing.T) {
	r, err := ReadStatusReport(readPaymentFile(t, "pain002-10-rjct.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := StatusReport{
		Version:     Pain002V10,
		MsgID:       "ABNA-PSR-26330-0091",
		Created:     time.Date(2026, 11, 26, 8, 41, 7, 118e6, time.UTC),
		OrgnlMsgID:  "EXAMPLE-20261124-0001",
		GroupStatus: "RJCT",
		// The block's proprietary reason follows the file's.
		GroupReasons: []StatusReason{{Code: "FF01", Info: "Element CtrlSum does not match"}, {Code: "X042"}},
		Transactions: []TxStatus{
			{OrgnlEndToEndID: "INV-2026-0311", Status: "RJCT", Reasons: []StatusReason{{Code: "AM04"}}},
			{OrgnlEndToEndID: "INV-88-2026-17", Status: "RJCT", Reasons: []StatusReason{{Code: "AC01", Info: "IBAN unknown"}}},
		},
	}
	if !r.Created.Equal(want.Created) {
		t.Errorf("Created = %v, want %v", r.Created, want.Created)
	}
	r.Created = want.Created
	if !reflect.DeepEqual(r, want) {
		t.Errorf("read\n%+v\nwant\n%+v", r, want)
	}
}

func TestReadStatusReportRefuses(t *testing.T) {
	rep := readPaymentFile(t, "pain002-03-part.xml")
	for _, c := range []struct {
		name string
		doc  []byte
		want []string
	}{
		{"a pain.001", readPaymentFile(t, "example-pain001.xml"), []string{"statusreport.namespace"}},
		{"camt.054", edit(t, rep, "pain.002.001.03", "camt.054.001.02"), []string{"statusreport.namespace"}},
		{"cut off", rep[:200], []string{"statusreport.well-formed"}},
		{"doctype", append([]byte("<!DOCTYPE x>"), rep[len(`<?xml version="1.0" encoding="UTF-8"?>`):]...), []string{"statusreport.well-formed"}},
		{"no OrgnlMsgId", edit(t, rep, "<OrgnlMsgId>EXAMPLE/2026/1125-7</OrgnlMsgId>", ""), []string{"statusreport.required.orgnlmsgid"}},
		{"no MsgId", edit(t, rep, "<MsgId>STS-20261126-000417</MsgId>", ""), []string{"statusreport.required.msgid"}},
		{"status not a code", edit(t, rep, "<GrpSts>PART</GrpSts>", "<GrpSts>partial</GrpSts>"), []string{"statusreport.status"}},
	} {
		_, err := ReadStatusReport(c.doc)
		if got := paymentRules(err); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: rules %v, want %v (%v)", c.name, got, c.want, err)
		}
	}
}

// GrpSts is optional: a report without it is read from its blocks or transactions.
func TestReadStatusReportWithoutGroupStatus(t *testing.T) {
	rep := readPaymentFile(t, "pain002-03-part.xml")
	noGroup := edit(t, rep, "<GrpSts>PART</GrpSts>", "")
	r, err := ReadStatusReport(noGroup)
	if err != nil || r.GroupStatus != "PART" {
		t.Errorf("one of three transactions rejected: %q, %v", r.GroupStatus, err)
	}
	r, err = ReadStatusReport(edit(t, noGroup, "<TxSts>RJCT</TxSts>", "<TxSts>ACSC</TxSts>"))
	if err != nil || r.GroupStatus != "ACSC" {
		t.Errorf("all settled: %q, %v", r.GroupStatus, err)
	}
	r, err = ReadStatusReport(edit(t, readPaymentFile(t, "pain002-10-rjct.xml"), "<GrpSts>RJCT</GrpSts>", ""))
	if err != nil || r.GroupStatus != "RJCT" {
		t.Errorf("the one block rejected: %q, %v", r.GroupStatus, err)
	}
}

func TestComposeStatusReportReadsBack(t *testing.T) {
	created := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		file, version string
	}{
		{"example-pain001.xml", Pain002V10},
		{"example-pain001-03.xml", Pain002V03},
	} {
		orig, err := CheckPayment(readPaymentFile(t, c.file), paymentToday)
		if err != nil {
			t.Fatal(err)
		}
		txs := orig.Transactions()
		statuses := []TxStatus{
			{OrgnlEndToEndID: txs[len(txs)-1].EndToEndID, Status: "RJCT", Reasons: []StatusReason{{Code: "AM04", Info: strings.Repeat("ü", 120) + " & <more>"}}},
			{OrgnlEndToEndID: txs[0].EndToEndID, Status: "ACSC"},
		}
		out, err := ComposeStatusReport(orig, "SIM-STS-1", created, "PART", "", statuses)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ReadStatusReport(out)
		if err != nil {
			t.Fatalf("%s: the composed report does not read back: %v\n%s", c.file, err, out)
		}
		if r.Version != c.version || r.MsgID != "SIM-STS-1" || !r.Created.Equal(created) || r.OrgnlMsgID != orig.MsgID || r.GroupStatus != "PART" || len(r.GroupReasons) != 0 {
			t.Errorf("%s: %+v", c.file, r)
		}
		// Reported per block in the file's order; the text is cut at pain.002's 105 characters.
		want := []TxStatus{
			{OrgnlEndToEndID: txs[0].EndToEndID, Status: "ACSC"},
			{OrgnlEndToEndID: txs[len(txs)-1].EndToEndID, Status: "RJCT", Reasons: []StatusReason{{Code: "AM04", Info: strings.Repeat("ü", 105)}}},
		}
		if !reflect.DeepEqual(r.Transactions, want) {
			t.Errorf("%s: transactions\n%+v\nwant\n%+v", c.file, r.Transactions, want)
		}
		for _, s := range []string{"<OrgnlMsgNmId>" + orig.Version + "</OrgnlMsgNmId>", "<OrgnlPmtInfId>" + orig.Blocks[0].PmtInfID + "</OrgnlPmtInfId>"} {
			if !strings.Contains(string(out), s) {
				t.Errorf("%s: the report lacks %s", c.file, s)
			}
		}
	}
	orig, err := CheckPayment(readPaymentFile(t, "example-pain001.xml"), paymentToday)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ComposeStatusReport(orig, "SIM-STS-2", created, "RJCT", "FF01", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ReadStatusReport(out)
	if err != nil || r.GroupStatus != "RJCT" || !reflect.DeepEqual(r.GroupReasons, []StatusReason{{Code: "FF01"}}) || len(r.Transactions) != 0 {
		t.Errorf("a whole file rejected: %+v, %v", r, err)
	}
	for name, call := range map[string]func() error{
		"unknown transfer": func() error {
			_, err := ComposeStatusReport(orig, "S", created, "PART", "", []TxStatus{{OrgnlEndToEndID: "NOPE", Status: "RJCT"}})
			return err
		},
		"bad report id":  func() error { _, err := ComposeStatusReport(orig, "", created, "ACSC", "", nil); return err },
		"bad group code": func() error { _, err := ComposeStatusReport(orig, "S", created, "ok", "", nil); return err },
		"bad reason": func() error {
			_, err := ComposeStatusReport(orig, "S", created, "RJCT", "<x>", nil)
			return err
		},
		"unknown version": func() error {
			o := orig
			o.Version = "pain.001.001.05"
			_, err := ComposeStatusReport(o, "S", created, "ACSC", "", nil)
			return err
		},
	} {
		if err := call(); err == nil || !strings.Contains(err.Error(), "compose status report") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPaymentReplyStatus(t *testing.T) {
	for _, c := range []struct {
		code   string
		status Status
		action bool
	}{
		{"ACTC", StatusReceiptConfirmed, false},
		{"RCVD", StatusReceiptConfirmed, false},
		{"ACCP", StatusInProgress, false},
		{"ACSP", StatusInProgress, false},
		{"PDNG", StatusInProgress, false},
		{"ACSC", StatusAccepted, false},
		{"PART", StatusAccepted, true},
		{"RJCT", StatusRejected, true},
	} {
		s, action, meaning, ok := PaymentReplyStatus(c.code)
		if !ok || s != c.status || action != c.action || meaning == "" {
			t.Errorf("PaymentReplyStatus(%s) = %s, %v, %q, %v; want %s, %v", c.code, s, action, meaning, ok, c.status, c.action)
		}
	}
	if s, _, _, _ := PaymentReplyStatus("ACTC"); s.Rank() >= StatusInProgress.Rank() {
		t.Error("technically accepted must rank below accepted for execution")
	}
	if s, _, _, _ := PaymentReplyStatus("RJCT"); s.Rank() <= StatusAccepted.Rank() || !s.IsFinal() {
		t.Error("a rejection must be final and outrank acceptance")
	}
	for _, unknown := range []string{"", "XXXX", "acsc", "ACSCX"} {
		if _, _, _, ok := PaymentReplyStatus(unknown); ok {
			t.Errorf("PaymentReplyStatus(%q) is known", unknown)
		}
	}
}

func TestReasonText(t *testing.T) {
	for _, code := range []string{"AC01", "AC04", "AC06", "AC13", "AG01", "AG02", "AM01", "AM02", "AM04", "AM05", "AM09", "BE04", "BE05", "DUPL",
		"FF01", "MD01", "MD07", "MS02", "MS03", "NARR", "RC01", "RR01", "RR02", "RR03", "RR04", "TM01", "CUST", "CURR", "FOCR"} {
		if text := ReasonText(code); strings.Contains(text, "see ISO 20022") || len(text) < 20 {
			t.Errorf("ReasonText(%s) = %q", code, text)
		}
	}
	if got := ReasonText("am04"); !strings.Contains(got, "insufficient funds") {
		t.Errorf("ReasonText(am04) = %q", got)
	}
	if got := ReasonText("ZZ99"); got != "reason code ZZ99 (see ISO 20022 external status reason codes)" {
		t.Errorf("unknown code: %q", got)
	}
}

func TestPaymentNeedsABankProfile(t *testing.T) {
	spec, err := DefaultCatalog().Lookup(TypePayment)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Channel != ChannelBank || spec.Fiscal || spec.Subject != SubjectText || spec.Document != DocumentXML {
		t.Errorf("spec: %+v", spec)
	}
	err = spec.ReadyToQueue(Profile{Environment: "acme", EmailFrom: "a@acme.example"})
	if err == nil || !strings.Contains(err.Error(), "environment acme has no bank profile") || !strings.Contains(err.Error(), "starter environments set acme --local-bank") {
		t.Errorf("no bank profile: %v", err)
	}
	if err := spec.ReadyToQueue(Profile{Environment: "acme", HasBank: true}); err != nil {
		t.Errorf("with a bank profile: %v", err)
	}
	if _, err := DefaultCatalog().WithBerichtsoorten("payment=X"); err == nil {
		t.Error("a payment has no Digipoort berichtsoort")
	}
}

func FuzzCheckPayment(f *testing.F) {
	for _, name := range []string{"example-pain001.xml", "example-pain001-03.xml", "pain002-03-part.xml", "pain002-10-rjct.xml"} {
		b, err := os.ReadFile(filepath.Join("testdata", "payments", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>`))
	f.Add([]byte(`<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt><GrpHdr><MsgId>a</MsgId></GrpHdr></CstmrPmtStsRpt></Document>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := CheckPayment(b, paymentToday)
		read, rerr := ReadPayment(b)
		if err == nil {
			if rerr != nil || !reflect.DeepEqual(p, read) {
				t.Fatalf("ReadPayment disagrees with CheckPayment: %v", rerr)
			}
			if p.NbOfTxs != len(p.Transactions()) || p.NbOfTxs == 0 {
				t.Fatalf("accepted with NbOfTxs %d and %d transactions", p.NbOfTxs, len(p.Transactions()))
			}
			for _, tx := range p.Transactions() {
				if !ValidIBAN(tx.CreditorIBAN) || tx.Currency != "EUR" || tx.EndToEndID == "" {
					t.Fatalf("accepted transaction %+v", tx)
				}
			}
			subject, period := p.SubjectAndPeriod()
			if err := (Declaration{Environment: "e", Type: TypePayment, Subject: subject, Period: period}).Validate(); err != nil {
				t.Fatalf("accepted file does not make a declaration: %v", err)
			}
			if _, err := ComposeStatusReport(p, "R", paymentToday, "ACSC", "", nil); err != nil {
				t.Fatalf("no report for an accepted file: %v", err)
			}
		} else if len(paymentRules(err)) == 0 {
			t.Fatalf("an error that is no PaymentError: %v", err)
		}
		if r, err := ReadStatusReport(b); err == nil && r.OrgnlMsgID == "" {
			t.Fatal("a report without OrgnlMsgId was read")
		} else if err != nil && len(paymentRules(err)) == 0 {
			t.Fatalf("an error that is no PaymentError: %v", err)
		}
	})
}
