package domain

import (
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ISO 20022 message versions Koerier reads. Dutch banks take pain.001 in these two
// versions; each answers with the pain.002 of its generation.
const (
	Pain001V03 = "pain.001.001.03"
	Pain001V09 = "pain.001.001.09"
	Pain002V03 = "pain.002.001.03"
	Pain002V10 = "pain.002.001.10"

	isoNamespacePrefix = "urn:iso:std:iso:20022:tech:xsd:"
)

// Limits on what the payment parser takes in. A bank file of ten thousand transfers has
// some 200,000 elements and is never nested deeper than about a dozen; anything beyond
// is hostile or a mistake, and must not exhaust memory.
const (
	maxPaymentDepth    = 32
	maxPaymentElements = 300000
	// maxPaymentAmount is the largest InstdAmt a SEPA credit transfer carries (EPC
	// rulebook: 999,999,999.99 euro).
	maxPaymentAmount = "999999999.99"
)

// PaymentFile is what Koerier reads from a SEPA credit transfer initiation (pain.001).
type PaymentFile struct {
	Version   string // Pain001V03 or Pain001V09
	MsgID     string // GrpHdr/MsgId
	Created   time.Time
	NbOfTxs   int    // GrpHdr/NbOfTxs as the file states it
	CtrlSum   string // GrpHdr/CtrlSum as written, "" if absent
	Initiator string // GrpHdr/InitgPty/Nm
	Blocks    []PaymentBlock
}

// PaymentBlock is one payment information block (PmtInf): one debtor account, one
// requested execution date.
type PaymentBlock struct {
	PmtInfID                          string
	Execution                         time.Time // ReqdExctnDt, a date (UTC midnight)
	DebtorName, DebtorIBAN, DebtorBIC string
	NbOfTxs                           int    // as the block states it, 0 if absent
	CtrlSum                           string // as written, "" if absent
	Transactions                      []PaymentTx
}

// PaymentTx is one credit transfer (CdtTrfTxInf).
type PaymentTx struct {
	EndToEndID, Amount, Currency, CreditorName, CreditorIBAN, CreditorBIC, Remittance string
}

// PaymentError is a failed check of a payment file or status report. Rule names the
// check, so that a caller (the API's 422, a test) can tell the checks apart without
// parsing Message.
type PaymentError struct{ Rule, Message string }

func (e *PaymentError) Error() string { return e.Rule + ": " + e.Message }

func paymentErr(rule, format string, args ...any) *PaymentError {
	return &PaymentError{Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// CheckPayment checks a pain.001 before it is queued and reads it; today is the date
// the requested execution dates may not lie before (compared as dates in today's
// location). On failure the error is one *PaymentError or an errors.Join of several, the
// first of which errors.As finds.
//
// The official XSD is not used: no Go package the registries serve carries the ISO
// 20022 schemas, and encoding/xml does not validate against one. These checks stand in
// for it, and go further where Dutch banks do (the EPC rulebook's character set,
// amounts, IBAN check digits): well-formed without DOCTYPE (payment.well-formed), the
// two namespaces (payment.namespace), the required elements (payment.required.<field>),
// MsgId, PmtInfId and EndToEndId (payment.msgid, payment.pmtinfid, payment.endtoendid),
// CreDtTm (payment.credttm), PmtMtd (payment.pmtmtd), the counts and sums
// (payment.nboftxs, payment.ctrlsum), IBAN and BIC (payment.iban, payment.bic), amounts
// and currency (payment.amount, payment.currency), the requested execution date
// (payment.execution-date) and the lengths banks cut names and remittance info at
// (payment.name, payment.remittance). Whether the environment used the MsgId before is
// not for this function: the store knows.
func CheckPayment(content []byte, today time.Time) (PaymentFile, error) {
	doc, perr := parseISO(content, "payment", "pain.001", "a SEPA credit transfer file", []string{Pain001V03, Pain001V09}, "CstmrCdtTrfInitn")
	if perr != nil {
		return PaymentFile{}, perr
	}
	p, errs := doc.readPayment(true, today)
	if len(errs) > 0 {
		return PaymentFile{}, joinRuleErrors(errs)
	}
	return p, nil
}

// ReadPayment reads a pain.001 with the same parser, checking only its structure
// (well-formed, namespace): fields are read as they stand, a number that does not parse
// as 0, a date as the zero time. The bank simulator reads files this way, so that it can
// answer a broken file with a rejection instead of not reading it at all.
func ReadPayment(content []byte) (PaymentFile, error) {
	doc, perr := parseISO(content, "payment", "pain.001", "a SEPA credit transfer file", []string{Pain001V03, Pain001V09}, "CstmrCdtTrfInitn")
	if perr != nil {
		return PaymentFile{}, perr
	}
	p, _ := doc.readPayment(false, time.Time{})
	return p, nil
}

// SubjectAndPeriod are the subject and period a payment order is queued under: the
// MsgId (NormalizeText, a slash becomes '-', as Declaration keys separate fields with
// one) and the month of the earliest requested execution date.
func (p PaymentFile) SubjectAndPeriod() (subject, period string) {
	subject, err := NormalizeText("MsgId", p.MsgID)
	if err != nil {
		subject = strings.TrimSpace(p.MsgID)
	}
	subject = strings.ReplaceAll(subject, "/", "-")
	var first time.Time
	for _, b := range p.Blocks {
		if !b.Execution.IsZero() && (first.IsZero() || b.Execution.Before(first)) {
			first = b.Execution
		}
	}
	if !first.IsZero() {
		period = first.Format("2006-01")
	}
	return subject, period
}

// Transactions lists every block's transactions in file order.
func (p PaymentFile) Transactions() []PaymentTx {
	var out []PaymentTx
	for _, b := range p.Blocks {
		out = append(out, b.Transactions...)
	}
	return out
}

// isoDoc is a parsed ISO 20022 message: the Document root, its one message element,
// and the version taken from the namespace.
type isoDoc struct {
	msg     *node
	version string
}

// parseISO reads content into a tree and checks what every later step relies on: one
// well-formed UTF-8 XML document without a DOCTYPE, whose root is <Document> in the
// namespace of one of versions and holds the message element msgElem, with every element
// in that namespace. rule prefixes the rule names ("payment").
func parseISO(content []byte, rule, family, what string, versions []string, msgElem string) (*isoDoc, *PaymentError) {
	root, terr := readXMLTree(content, xmlLimits{bytes: MaxAttachmentSize, elements: maxPaymentElements, depth: maxPaymentDepth})
	if terr != nil {
		return nil, isoTreeErr(terr, rule, family, what)
	}
	ns := rule + ".namespace"
	known := make([]string, len(versions))
	for i, v := range versions {
		known[i] = isoNamespacePrefix + v
	}
	version, ok := strings.CutPrefix(root.name.Space, isoNamespacePrefix)
	if root.name.Local != "Document" || !ok || !slices.Contains(versions, version) {
		return nil, paymentErr(ns, "the root element is <%s> in namespace %q; %s is <Document> in %s",
			root.name.Local, root.name.Space, what, strings.Join(known, " or "))
	}
	if len(root.kids) != 1 || root.kids[0].name.Local != msgElem {
		return nil, paymentErr(ns, "<Document> in %s must hold exactly one <%s>, which is %s", root.name.Space, msgElem, what)
	}
	if bad := foreignElement(root, root.name.Space); bad != nil {
		return nil, paymentErr(ns, "<%s> at line %d is in namespace %q, not in the document's %q: check the xmlns declarations (a prefix bound to another namespace, or a second xmlns)",
			bad.name.Local, bad.line, bad.name.Space, root.name.Space)
	}
	return &isoDoc{msg: root.kids[0], version: version}, nil
}

// isoTreeErr gives a tree problem the rule <rule>.well-formed and says what to do in
// terms of the message family ("pain.001") and what it is.
func isoTreeErr(e *xmlTreeError, rule, family, what string) *PaymentError {
	advice := ""
	switch e.Problem {
	case xmlTooLarge, xmlTooBig:
		advice = ": split the payments over several files"
	case xmlEmpty, xmlNoElement:
		advice = fmt.Sprintf(": give %s (%s XML)", what, family)
	case xmlNotUTF8:
		advice = fmt.Sprintf(", so not %s XML: save it as UTF-8 (SEPA files use only Latin characters)", family)
	case xmlDeclaration:
		advice = fmt.Sprintf(": %s has no DOCTYPE or other declaration; remove it", family)
	case xmlSecondRoot:
		advice = fmt.Sprintf(": a file holds one %s message", family)
	case xmlStrayText:
		advice = fmt.Sprintf(": the file is not %s XML", family)
	}
	return &PaymentError{Rule: rule + ".well-formed", Message: e.Error() + advice}
}

// foreignElement is the first element not in namespace space, outside supplementary
// data (SplmtryData/Envlp), which may hold anything. An element in another namespace is
// almost always a wrongly bound prefix, which would otherwise show up as a confusing
// "required element missing".
func foreignElement(n *node, space string) *node {
	if n.name.Space != space {
		return n
	}
	if n.name.Local == "Envlp" {
		return nil
	}
	for _, k := range n.kids {
		if bad := foreignElement(k, space); bad != nil {
			return bad
		}
	}
	return nil
}

// isoKids are the children of n named local (parseISO has checked the namespace).
func (n *node) isoKids(local string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, k := range n.kids {
		if k.name.Local == local {
			out = append(out, k)
		}
	}
	return out
}

// isoAt is the first element at a slash-separated path of local names, or nil.
func (n *node) isoAt(path string) *node {
	for _, step := range strings.Split(path, "/") {
		kids := n.isoKids(step)
		if len(kids) == 0 {
			return nil
		}
		n = kids[0]
	}
	return n
}

// isoText is the trimmed text at path, "" if there is none.
func (n *node) isoText(path string) string {
	if f := n.isoAt(path); f != nil {
		return f.value()
	}
	return ""
}

// isoDateTime reads an ISODateTime (with or without a zone; without one it is read as
// UTC, as the bank does not know the sender's zone either).
func isoDateTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func isoDate(s string) (time.Time, bool) {
	t, err := time.Parse("2006-01-02", s)
	return t, err == nil
}

var (
	sepaIdentifier = regexp.MustCompile(`^[a-zA-Z0-9/\-?:().,'+ ]{1,35}$`)
	nbOfTxsText    = regexp.MustCompile(`^[0-9]{1,15}$`)
	paymentDecimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	bicPattern     = regexp.MustCompile(`^[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$`)
	statusCode     = regexp.MustCompile(`^[A-Z]{4}$`)
	reasonCode     = regexp.MustCompile(`^[A-Z0-9]{1,4}$`)
)

// identifierProblem says what is wrong with a MsgId, PmtInfId or EndToEndId under the
// EPC rules (1–35 characters of the SEPA set, no leading or trailing '/', no "//"), or "".
func identifierProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case utf8.RuneCountInString(s) > 35:
		return fmt.Sprintf("has %d characters, at most 35 are allowed", utf8.RuneCountInString(s))
	case !sepaIdentifier.MatchString(s):
		return "has a character outside the SEPA set (a-z A-Z 0-9 / - ? : ( ) . , ' + and space)"
	case strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/"):
		return "starts or ends with '/', which SEPA does not allow"
	case strings.Contains(s, "//"):
		return "contains \"//\", which SEPA does not allow"
	}
	return ""
}

// readPayment takes the fields of PaymentFile from the message element. With check, it
// applies every rule of CheckPayment; without, it only reads.
func (d *isoDoc) readPayment(check bool, today time.Time) (PaymentFile, []*PaymentError) {
	m := d.msg
	var errs []*PaymentError
	fail := func(rule, format string, args ...any) {
		if check {
			errs = append(errs, paymentErr(rule, format, args...))
		}
	}
	gh := m.isoAt("GrpHdr")
	p := PaymentFile{
		Version:   d.version,
		MsgID:     gh.isoText("MsgId"),
		CtrlSum:   gh.isoText("CtrlSum"),
		Initiator: gh.isoText("InitgPty/Nm"),
	}
	if p.MsgID == "" {
		fail("payment.required.msgid", "GrpHdr/MsgId is missing: give the file a message id of at most 35 characters that this environment has not used before")
	} else if why := identifierProblem(p.MsgID); why != "" {
		fail("payment.msgid", "GrpHdr/MsgId %q %s: give the file another message id", truncate(p.MsgID, 40), why)
	}
	if s := gh.isoText("CreDtTm"); s == "" {
		fail("payment.required.credttm", "GrpHdr/CreDtTm is missing: give the date and time the file was made, e.g. 2026-11-24T10:15:00")
	} else if t, ok := isoDateTime(s); ok {
		p.Created = t
	} else {
		fail("payment.credttm", "GrpHdr/CreDtTm %q is not an ISO date and time: write it as 2026-11-24T10:15:00", truncate(s, 40))
	}
	nbText := gh.isoText("NbOfTxs")
	groupNb, groupNbOK := parseNbOfTxs(nbText)
	p.NbOfTxs = groupNb
	switch {
	case nbText == "":
		fail("payment.required.nboftxs", "GrpHdr/NbOfTxs is missing: give the number of transactions in the file")
	case !groupNbOK:
		fail("payment.nboftxs", "GrpHdr/NbOfTxs %q is not a number of transactions (1 to 15 digits)", truncate(nbText, 40))
	}
	checkPaymentName(fail, "GrpHdr/InitgPty/Nm", p.Initiator)

	pmtInfs := m.isoKids("PmtInf")
	if len(pmtInfs) == 0 {
		fail("payment.required.pmtinf", "the file has no PmtInf (payment information) block: a credit transfer file holds at least one, with the debtor account and the transactions")
	}
	var fileSum sumOf
	ids := map[string]string{}      // EndToEndId -> where first seen
	blockIDs := map[string]string{} // PmtInfId -> where first seen
	total := 0
	for i, pi := range pmtInfs {
		where := fmt.Sprintf("PmtInf[%d]", i+1)
		b := PaymentBlock{
			PmtInfID:   pi.isoText("PmtInfId"),
			DebtorName: pi.isoText("Dbtr/Nm"),
			DebtorIBAN: pi.isoText("DbtrAcct/Id/IBAN"),
			CtrlSum:    pi.isoText("CtrlSum"),
		}
		if b.PmtInfID == "" {
			fail("payment.required.pmtinfid", "%s/PmtInfId is missing: give each payment information block an id of at most 35 characters", where)
		} else {
			where = fmt.Sprintf("PmtInf[%d] (PmtInfId %s)", i+1, truncate(b.PmtInfID, 40))
			if why := identifierProblem(b.PmtInfID); why != "" {
				fail("payment.pmtinfid", "%s: PmtInfId %s: give the block another id", where, why)
			} else if prev, dup := blockIDs[b.PmtInfID]; dup {
				fail("payment.pmtinfid", "%s: PmtInfId is used by %s too: give each block of the file its own id", where, prev)
			} else {
				blockIDs[b.PmtInfID] = fmt.Sprintf("PmtInf[%d]", i+1)
			}
		}
		if mtd := pi.isoText("PmtMtd"); mtd != "TRF" {
			fail("payment.pmtmtd", "%s/PmtMtd is %q: a credit transfer file has PmtMtd TRF", where, truncate(mtd, 20))
		}
		b.Execution = d.executionDate(pi, where, today, fail)
		b.DebtorBIC = d.bic(pi.isoAt("DbtrAgt/FinInstnId"), where+"/DbtrAgt/FinInstnId", fail)
		if b.DebtorName == "" {
			fail("payment.required.debtor-name", "%s/Dbtr/Nm is missing: give the name of the account holder who pays", where)
		}
		checkPaymentName(fail, where+"/Dbtr/Nm", b.DebtorName)
		if b.DebtorIBAN == "" {
			fail("payment.required.debtor-iban", "%s/DbtrAcct/Id/IBAN is missing: give the IBAN the payments are made from", where)
		} else if why := ibanProblem(b.DebtorIBAN); why != "" {
			fail("payment.iban", "%s/DbtrAcct/Id/IBAN %q %s: correct the debtor's IBAN", where, truncate(b.DebtorIBAN, 40), why)
		}
		var blockSum sumOf
		txs := pi.isoKids("CdtTrfTxInf")
		if len(txs) == 0 {
			fail("payment.required.cdttrftxinf", "%s has no CdtTrfTxInf (transaction): remove the block or add its transfers", where)
		}
		for j, tn := range txs {
			tx, amt := d.readTx(tn, fmt.Sprintf("%s/CdtTrfTxInf[%d]", where, j+1), fmt.Sprintf("PmtInf[%d]/CdtTrfTxInf[%d]", i+1, j+1), ids, fail)
			if amt != nil {
				blockSum.add(amt)
			} else {
				blockSum.broken = true
			}
			b.Transactions = append(b.Transactions, tx)
		}
		total += len(txs)
		if s := pi.isoText("NbOfTxs"); s != "" {
			n, ok := parseNbOfTxs(s)
			b.NbOfTxs = n
			switch {
			case !ok:
				fail("payment.nboftxs", "%s/NbOfTxs %q is not a number of transactions (1 to 15 digits)", where, truncate(s, 40))
			case n != len(txs):
				fail("payment.nboftxs", "%s/NbOfTxs says %d but the block holds %d CdtTrfTxInf: correct the count", where, n, len(txs))
			}
		}
		if b.CtrlSum != "" {
			blockSum.check(b.CtrlSum, where+"/CtrlSum", "the block's", fail)
		}
		fileSum.merge(blockSum)
		p.Blocks = append(p.Blocks, b)
	}
	if groupNbOK && groupNb != total {
		fail("payment.nboftxs", "GrpHdr/NbOfTxs says %d but the file holds %d CdtTrfTxInf: correct the count", groupNb, total)
	}
	if p.CtrlSum != "" {
		fileSum.check(p.CtrlSum, "GrpHdr/CtrlSum", "the file's", fail)
	}
	return p, errs
}

// checkPaymentName refuses a name longer than SEPA's 70 characters, which banks cut or
// refuse.
func checkPaymentName(fail func(string, string, ...any), where, name string) {
	if n := utf8.RuneCountInString(name); n > 70 {
		fail("payment.name", "%s has %d characters; SEPA takes at most 70: shorten the name", where, n)
	}
}

func parseNbOfTxs(s string) (int, bool) {
	if !nbOfTxsText.MatchString(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// executionDate reads ReqdExctnDt (a date in .03, ReqdExctnDt/Dt in .09) and checks
// that it is not before today.
func (d *isoDoc) executionDate(pi *node, where string, today time.Time, fail func(string, string, ...any)) time.Time {
	el := pi.isoAt("ReqdExctnDt")
	path := where + "/ReqdExctnDt"
	var text string
	switch {
	case el == nil:
		fail("payment.execution-date", "%s is missing: give the date the bank should execute the payments", path)
		return time.Time{}
	case d.version == Pain001V09:
		if el.isoAt("Dt") == nil {
			if el.isoAt("DtTm") != nil {
				fail("payment.execution-date", "%s holds DtTm: a SEPA credit transfer is executed on a date, give it as %s/Dt", path, path)
			} else {
				fail("payment.execution-date", "%s has no Dt: in pain.001.001.09 the date is written as <ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>", path)
			}
			return time.Time{}
		}
		path += "/Dt"
		text = el.isoText("Dt")
	default:
		text = el.value()
		if len(el.kids) > 0 {
			fail("payment.execution-date", "%s holds elements: in pain.001.001.03 the date is written as <ReqdExctnDt>2026-12-01</ReqdExctnDt>", path)
			return time.Time{}
		}
	}
	t, ok := isoDate(text)
	if !ok {
		fail("payment.execution-date", "%s %q is not a date: write it as 2026-12-01", path, truncate(text, 40))
		return time.Time{}
	}
	y, m, dd := today.Date()
	if t.Before(time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)) {
		fail("payment.execution-date", "%s %s lies before today (%s): the bank does not execute payments in the past; give today or a later date",
			path, text, today.Format("2006-01-02"))
	}
	return t
}

// bic reads the BIC of a FinInstnId (BIC in .03, BICFI in .09), checking it where given.
func (d *isoDoc) bic(fi *node, path string, fail func(string, string, ...any)) string {
	if fi == nil {
		return ""
	}
	want, other := "BIC", "BICFI"
	if d.version == Pain001V09 {
		want, other = "BICFI", "BIC"
	}
	if fi.isoAt(other) != nil {
		fail("payment.bic", "%s/%s is the element of another version: %s writes the BIC as %s", path, other, d.version, want)
	}
	s := fi.isoText(want)
	if fi.isoAt(want) != nil && !ValidBIC(s) {
		fail("payment.bic", "%s/%s %q is not a BIC (8 or 11 capitals and digits: bank, country, location, optional branch, e.g. ABNANL2A): correct or remove it",
			path, want, truncate(s, 40))
	}
	return s
}

// readTx reads one CdtTrfTxInf. amt is its amount if it is valid, else nil.
// where names it in messages, loc is its short position for the duplicate check.
func (d *isoDoc) readTx(tn *node, where, loc string, ids map[string]string, fail func(string, string, ...any)) (PaymentTx, *big.Rat) {
	tx := PaymentTx{
		EndToEndID:   tn.isoText("PmtId/EndToEndId"),
		CreditorName: tn.isoText("Cdtr/Nm"),
		CreditorIBAN: tn.isoText("CdtrAcct/Id/IBAN"),
		Remittance:   tn.isoText("RmtInf/Ustrd"),
	}
	if tx.Remittance == "" {
		tx.Remittance = tn.isoText("RmtInf/Strd/CdtrRefInf/Ref")
	}
	if tx.EndToEndID == "" {
		fail("payment.required.endtoendid", "%s/PmtId/EndToEndId is missing: give each transfer a reference of at most 35 characters, unique in the file", where)
	} else {
		where = fmt.Sprintf("%s (EndToEndId %s)", where, truncate(tx.EndToEndID, 40))
		if why := identifierProblem(tx.EndToEndID); why != "" {
			fail("payment.endtoendid", "%s: EndToEndId %s: give the transfer another reference", where, why)
		} else if prev, dup := ids[tx.EndToEndID]; dup {
			// NOTPROVIDED too: the bank's status report names a rejected transfer by its
			// EndToEndId, and Koerier must know which one it is.
			fail("payment.endtoendid", "%s: EndToEndId is used by %s too: give each transfer of the file its own reference, so that the bank's reports can name it", where, prev)
		} else {
			ids[tx.EndToEndID] = loc
		}
	}
	var amt *big.Rat
	if a := tn.isoAt("Amt/InstdAmt"); a == nil {
		fail("payment.required.instdamt", "%s/Amt/InstdAmt is missing: give the amount in euro, e.g. <InstdAmt Ccy=\"EUR\">1250.00</InstdAmt>", where)
	} else {
		tx.Amount = a.value()
		tx.Currency = a.attrValue("Ccy")
		amt = checkPaymentAmount(tx.Amount, where+"/Amt/InstdAmt", fail)
		if tx.Currency != "EUR" {
			fail("payment.currency", "%s/Amt/InstdAmt has Ccy=%q: SEPA credit transfers are in euro, Ccy=\"EUR\"", where, truncate(tx.Currency, 10))
		}
	}
	tx.CreditorBIC = d.bic(tn.isoAt("CdtrAgt/FinInstnId"), where+"/CdtrAgt/FinInstnId", fail)
	if tx.CreditorName == "" {
		fail("payment.required.creditor-name", "%s/Cdtr/Nm is missing: give the name of the payee", where)
	} else if n := utf8.RuneCountInString(tx.CreditorName); n > 70 {
		fail("payment.name", "%s/Cdtr/Nm has %d characters; SEPA takes at most 70: shorten the name", where, n)
	}
	if tx.CreditorIBAN == "" {
		fail("payment.required.creditor-iban", "%s/CdtrAcct/Id/IBAN is missing: give the payee's IBAN", where)
	} else if why := ibanProblem(tx.CreditorIBAN); why != "" {
		fail("payment.iban", "%s/CdtrAcct/Id/IBAN %q %s: correct the payee's IBAN", where, truncate(tx.CreditorIBAN, 40), why)
	}
	for _, u := range tn.isoKids("RmtInf") {
		for _, s := range u.isoKids("Ustrd") {
			if n := utf8.RuneCountInString(s.value()); n > 140 {
				fail("payment.remittance", "%s/RmtInf/Ustrd has %d characters; SEPA takes at most 140: shorten the description", where, n)
			}
		}
	}
	return tx, amt
}

var maxAmount, _ = new(big.Rat).SetString(maxPaymentAmount)

// checkPaymentAmount checks an InstdAmt: a plain decimal, positive, at most two
// decimals and at most SEPA's maximum. It returns the value, or nil if it is not one.
func checkPaymentAmount(s, path string, fail func(string, string, ...any)) *big.Rat {
	if !paymentDecimal.MatchString(s) || len(s) > 40 {
		fail("payment.amount", "%s %q is not a positive amount: write euro and cents with a decimal point, e.g. 1250.00", path, truncate(s, 40))
		return nil
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		fail("payment.amount", "%s %q is not a positive amount: write euro and cents with a decimal point, e.g. 1250.00", path, truncate(s, 40))
		return nil
	}
	if _, frac, found := strings.Cut(s, "."); found && len(frac) > 2 {
		fail("payment.amount", "%s %s has %d decimals: euro amounts have at most 2 (cents)", path, s, len(frac))
		return nil
	}
	switch {
	case v.Sign() <= 0:
		fail("payment.amount", "%s is %s: a transfer must be for more than 0.00 euro; remove it from the file", path, s)
		return nil
	case v.Cmp(maxAmount) > 0:
		fail("payment.amount", "%s %s is above SEPA's maximum of %s euro for one transfer: split it", path, s, maxPaymentAmount)
		return nil
	}
	return v
}

// sumOf adds amounts exactly; broken is set when an amount could not be read, so that a
// CtrlSum is not also reported wrong because of a bad amount reported already.
type sumOf struct {
	total  big.Rat
	broken bool
}

func (s *sumOf) add(v *big.Rat) { s.total.Add(&s.total, v) }

func (s *sumOf) merge(o sumOf) {
	s.total.Add(&s.total, &o.total)
	s.broken = s.broken || o.broken
}

func (s *sumOf) check(ctrl, path, whose string, fail func(string, string, ...any)) {
	v, ok := new(big.Rat).SetString(ctrl)
	if !paymentDecimal.MatchString(ctrl) || len(ctrl) > 40 || !ok {
		fail("payment.ctrlsum", "%s %q is not a decimal number: write the sum of %s amounts, e.g. 1735.50", path, truncate(ctrl, 40), whose)
		return
	}
	if !s.broken && v.Cmp(&s.total) != 0 {
		fail("payment.ctrlsum", "%s says %s but %s amounts add up to %s: correct the control sum (or the amounts)", path, ctrl, whose, s.total.FloatString(2))
	}
}

// ibanLengths is the IBAN length per country for the SEPA scheme countries and
// territories with their own country code (EPC409, SWIFT IBAN registry).
var ibanLengths = map[string]int{
	"AD": 24, "AL": 28, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
	"EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
	"IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "RS": 22, "SE": 24, "SI": 19, "SK": 24,
	"SM": 27, "VA": 22,
}

// ValidIBAN reports whether s is an IBAN of a SEPA country in electronic form (no
// spaces): the country's length, and check digits that make it 1 modulo 97 (ISO 13616).
func ValidIBAN(s string) bool { return ibanProblem(s) == "" }

// ibanProblem says what is wrong with an IBAN, or "".
func ibanProblem(s string) string {
	if len(s) < 5 || len(s) > 34 {
		return "is not an IBAN (15 to 34 characters, e.g. NL91ABNA0417164300)"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter, digit := c >= 'A' && c <= 'Z', c >= '0' && c <= '9'
		switch {
		case i < 2 && !letter:
			return "does not start with a country code in capitals"
		case i >= 2 && i < 4 && !digit:
			return "has no check digits after the country code"
		case i >= 4 && !letter && !digit && !(c >= 'a' && c <= 'z'):
			return "holds a character other than letters and digits (write it without spaces)"
		}
	}
	want, ok := ibanLengths[s[:2]]
	switch {
	case !ok:
		return fmt.Sprintf("is from country %s, which is not in the SEPA area Koerier knows", s[:2])
	case len(s) != want:
		return fmt.Sprintf("has %d characters; an IBAN from %s has %d", len(s), s[:2], want)
	}
	// Move the first four characters to the end, letters become 10..35, and the number
	// must be 1 modulo 97; computed digit by digit so that it never overflows.
	rem := 0
	for _, c := range strings.ToUpper(s[4:] + s[:4]) {
		if c >= 'A' && c <= 'Z' {
			rem = (rem*100 + int(c-'A'+10)) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	if rem != 1 {
		return "has wrong check digits (mod 97), so a character is mistyped"
	}
	return ""
}

// ValidBIC reports whether s is a BIC (ISO 9362): 8 or 11 characters, party prefix,
// country code (letters), location, optional branch, in capitals. It is the pattern of
// BICFI in pain.001.001.09, which also covers the stricter BIC of .03 for real banks.
func ValidBIC(s string) bool { return bicPattern.MatchString(s) }
