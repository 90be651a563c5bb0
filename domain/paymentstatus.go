package domain

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// StatusReport is what Koerier reads from a customer payment status report (pain.002),
// the bank's reply to a pain.001.
type StatusReport struct {
	Version    string // Pain002V03 or Pain002V10
	MsgID      string // the report's own GrpHdr/MsgId
	Created    time.Time
	OrgnlMsgID string // the MsgId of the payment file it answers: the link to the payment order
	// GroupStatus is OrgnlGrpInfAndSts/GrpSts (ACTC ACCP ACSP ACSC PART RJCT PDNG …).
	// GrpSts is optional in both versions; a report without it is read as its blocks'
	// common PmtInfSts, else as its transactions' statuses add up (all rejected: RJCT,
	// some: PART, all alike: that status), else "".
	GroupStatus string
	// GroupReasons are the reasons given for the file, followed by those given for a
	// whole payment information block (OrgnlPmtInfAndSts/StsRsnInf): the order has one
	// status, and a rejected block is part of it.
	GroupReasons []StatusReason
	Transactions []TxStatus
}

// TxStatus is the status of one transfer, named by its EndToEndId.
type TxStatus struct {
	OrgnlEndToEndID, Status string
	Reasons                 []StatusReason
}

// StatusReason is one StsRsnInf: the ISO external status reason code (or the bank's
// proprietary code) and its additional information.
type StatusReason struct{ Code, Info string }

// ReadStatusReport reads a pain.002 (001.001.03 or 001.001.10) by local element names.
// It refuses only what cannot be linked or stored: not well-formed, not a pain.002
// (statusreport.well-formed, statusreport.namespace), no GrpHdr/MsgId or OrgnlMsgId
// (statusreport.required.msgid, statusreport.required.orgnlmsgid). A status code that is
// not four capitals is refused too (statusreport.status): it is no ISO code, and reading
// it would hide that. What a known code means is PaymentReplyStatus's job.
func ReadStatusReport(content []byte) (StatusReport, error) {
	doc, perr := parseISO(content, "statusreport", "pain.002", "a payment status report", []string{Pain002V03, Pain002V10}, "CstmrPmtStsRpt")
	if perr != nil {
		return StatusReport{}, perr
	}
	m := doc.msg
	r := StatusReport{
		Version:    doc.version,
		MsgID:      m.isoText("GrpHdr/MsgId"),
		OrgnlMsgID: m.isoText("OrgnlGrpInfAndSts/OrgnlMsgId"),
	}
	if t, ok := isoDateTime(m.isoText("GrpHdr/CreDtTm")); ok {
		r.Created = t
	}
	var errs []*PaymentError
	if r.MsgID == "" {
		errs = append(errs, paymentErr("statusreport.required.msgid", "GrpHdr/MsgId is missing: a status report without its own id cannot be told apart from another"))
	}
	if r.OrgnlMsgID == "" {
		errs = append(errs, paymentErr("statusreport.required.orgnlmsgid", "OrgnlGrpInfAndSts/OrgnlMsgId is missing: the report names no payment file, so it links to no payment order"))
	}
	code := func(path, s string) string {
		if s != "" && !statusCode.MatchString(s) {
			errs = append(errs, paymentErr("statusreport.status", "%s %q is not an ISO 20022 status code (four capitals such as ACSC or RJCT)", path, truncate(s, 20)))
		}
		return s
	}
	grp := m.isoAt("OrgnlGrpInfAndSts")
	r.GroupStatus = code("OrgnlGrpInfAndSts/GrpSts", grp.isoText("GrpSts"))
	r.GroupReasons = readReasons(grp)
	var blockStatuses []string
	for i, pi := range m.isoKids("OrgnlPmtInfAndSts") {
		where := fmt.Sprintf("OrgnlPmtInfAndSts[%d]", i+1)
		if s := code(where+"/PmtInfSts", pi.isoText("PmtInfSts")); s != "" {
			blockStatuses = append(blockStatuses, s)
		}
		r.GroupReasons = append(r.GroupReasons, readReasons(pi)...)
		for j, tx := range pi.isoKids("TxInfAndSts") {
			r.Transactions = append(r.Transactions, TxStatus{
				OrgnlEndToEndID: tx.isoText("OrgnlEndToEndId"),
				Status:          code(fmt.Sprintf("%s/TxInfAndSts[%d]/TxSts", where, j+1), tx.isoText("TxSts")),
				Reasons:         readReasons(tx),
			})
		}
	}
	if len(errs) > 0 {
		return StatusReport{}, joinRuleErrors(errs)
	}
	if r.GroupStatus == "" {
		r.GroupStatus = derivedGroupStatus(blockStatuses, r.Transactions)
	}
	return r, nil
}

// readReasons reads the StsRsnInf children of n: Rsn/Cd, else Rsn/Prtry, and the
// AddtlInf lines joined by a space.
func readReasons(n *node) []StatusReason {
	var out []StatusReason
	for _, s := range n.isoKids("StsRsnInf") {
		code := s.isoText("Rsn/Cd")
		if code == "" {
			code = s.isoText("Rsn/Prtry")
		}
		var info []string
		for _, a := range s.isoKids("AddtlInf") {
			if v := a.value(); v != "" {
				info = append(info, v)
			}
		}
		if code == "" && len(info) == 0 {
			continue
		}
		out = append(out, StatusReason{Code: code, Info: strings.Join(info, " ")})
	}
	return out
}

// derivedGroupStatus stands in for a missing GrpSts (see StatusReport.GroupStatus).
func derivedGroupStatus(blocks []string, txs []TxStatus) string {
	if s, ok := allAlike(blocks); ok {
		return s
	}
	if len(blocks) > 0 {
		return "PART"
	}
	var statuses []string
	rejected := 0
	for _, t := range txs {
		if t.Status != "" {
			statuses = append(statuses, t.Status)
		}
		if t.Status == "RJCT" {
			rejected++
		}
	}
	if s, ok := allAlike(statuses); ok {
		return s
	}
	if rejected > 0 {
		return "PART"
	}
	return ""
}

func allAlike(s []string) (string, bool) {
	if len(s) == 0 {
		return "", false
	}
	for _, v := range s[1:] {
		if v != s[0] {
			return "", false
		}
	}
	return s[0], true
}

// PaymentReplyStatus is what a report's group status means for the payment order. The
// caller applies it as Digipoort statuses are applied: the highest status wins (rule 4),
// so a late ACTC never takes a settled order back. ok is false for a code Koerier does
// not know, which an operator must look at.
func PaymentReplyStatus(groupStatus string) (status Status, needsAction bool, meaning string, ok bool) {
	switch strings.TrimSpace(groupStatus) {
	case "RCVD":
		return StatusReceiptConfirmed, false, "received by the bank", true
	case "ACTC":
		return StatusReceiptConfirmed, false, "technically accepted: the bank read the file and its syntax is correct", true
	case "ACCP":
		return StatusInProgress, false, "accepted by the bank for execution (customer profile checked)", true
	case "ACSP":
		return StatusInProgress, false, "accepted, settlement in process", true
	case "ACFC":
		return StatusInProgress, false, "accepted, funds checked", true
	case "ACWC":
		return StatusInProgress, false, "accepted with a change (the bank changed a detail such as the execution date)", true
	case "PDNG":
		return StatusInProgress, false, "pending: the bank has not decided yet", true
	case "ACSC", "ACCC":
		return StatusAccepted, false, "settled: the payments were executed", true
	case "PART":
		return StatusAccepted, true, "partially accepted: some transactions were rejected, see their reasons; pay those again once corrected", true
	case "RJCT":
		return StatusRejected, true, "rejected: the bank executes none of the payments in the file, see the reason; correct the file and queue it with a new MsgId", true
	}
	return "", false, "", false
}

// reasonTexts explain the ISO 20022 external status reason codes Dutch banks return most.
var reasonTexts = map[string]string{
	"AC01": "account number incorrect: the IBAN is wrong or does not exist; check it with the payee",
	"AC04": "account closed: the payee's account is closed; ask the payee for another account",
	"AC06": "account blocked: the account is blocked for payments; contact the account holder",
	"AC13": "invalid debtor account type: this kind of account cannot make this payment",
	"AG01": "transaction forbidden: this kind of payment is not allowed on the account",
	"AG02": "invalid bank operation code: the payment type or operation code is not valid",
	"AM01": "zero amount: the amount is 0.00",
	"AM02": "amount not allowed: the amount is above the limit for this account or payment",
	"AM04": "insufficient funds: the balance or credit limit does not cover the payment",
	"AM05": "duplication: the bank received this payment before",
	"AM09": "wrong amount: the amount is not the amount agreed or expected",
	"BE04": "creditor address missing: the payee's address is missing or incomplete",
	"BE05": "unrecognised initiating party: the bank does not know the party that sent the file",
	"DUPL": "duplicate payment: the bank received this file or payment before",
	"FF01": "invalid file format: the file is not a valid pain.001 or breaks the bank's rules",
	"MD01": "no mandate: there is no valid mandate or contract for this payment",
	"MD07": "end customer deceased: the account holder has died",
	"MS02": "refused by the payee (no reason given)",
	"MS03": "refused by the bank (no reason given)",
	"NARR": "see the bank's explanation in the additional information",
	"RC01": "bank identifier incorrect: the BIC is wrong or does not belong to the IBAN",
	"RR01": "regulatory: the debtor's account or identification is missing",
	"RR02": "regulatory: the debtor's name or address is missing",
	"RR03": "regulatory: the payee's name or address is missing",
	"RR04": "regulatory reason: the payment was stopped for a legal or regulatory reason",
	"TM01": "cut-off time: the file arrived after the bank's cut-off time",
	"CUST": "cancelled at the request of the customer",
	"CURR": "incorrect currency: the currency is wrong or not accepted for this account",
	"FOCR": "returned following a cancellation request",
}

// ReasonText is a readable explanation of an ISO 20022 external status reason code.
func ReasonText(code string) string {
	code = strings.ToUpper(strings.TrimSpace(code))
	if t, ok := reasonTexts[code]; ok {
		return t
	}
	return fmt.Sprintf("reason code %s (see ISO 20022 external status reason codes)", truncate(code, 35))
}

// pain.002 as ComposeStatusReport writes it: the elements of both versions that a report
// on a pain.001 needs, in schema order.
type pain002Doc struct {
	XMLName xml.Name        `xml:"Document"`
	Xmlns   string          `xml:"xmlns,attr"`
	Rpt     pain002Contents `xml:"CstmrPmtStsRpt"`
}

type pain002Contents struct {
	MsgID   string        `xml:"GrpHdr>MsgId"`
	CreDtTm string        `xml:"GrpHdr>CreDtTm"`
	Group   pain002Group  `xml:"OrgnlGrpInfAndSts"`
	Blocks  []pain002Blok `xml:"OrgnlPmtInfAndSts"`
}

type pain002Group struct {
	OrgnlMsgID   string          `xml:"OrgnlMsgId"`
	OrgnlMsgNmID string          `xml:"OrgnlMsgNmId"`
	OrgnlCreDtTm string          `xml:"OrgnlCreDtTm,omitempty"`
	OrgnlNbOfTxs string          `xml:"OrgnlNbOfTxs,omitempty"`
	OrgnlCtrlSum string          `xml:"OrgnlCtrlSum,omitempty"`
	GrpSts       string          `xml:"GrpSts,omitempty"`
	Reasons      []pain002Reason `xml:"StsRsnInf"`
}

type pain002Blok struct {
	OrgnlPmtInfID string      `xml:"OrgnlPmtInfId"`
	OrgnlNbOfTxs  string      `xml:"OrgnlNbOfTxs,omitempty"`
	OrgnlCtrlSum  string      `xml:"OrgnlCtrlSum,omitempty"`
	Txs           []pain002Tx `xml:"TxInfAndSts"`
}

type pain002Tx struct {
	OrgnlEndToEndID string          `xml:"OrgnlEndToEndId"`
	TxSts           string          `xml:"TxSts,omitempty"`
	Reasons         []pain002Reason `xml:"StsRsnInf"`
}

type pain002Reason struct {
	Cd       string   `xml:"Rsn>Cd,omitempty"`
	AddtlInf []string `xml:"AddtlInf,omitempty"`
}

// ComposeStatusReport writes the pain.002 a bank sends for orig: the group status group
// (with groupReason if not ""), and for each of txs the status of that transfer, under the
// payment information block that holds it. The version follows the original's generation
// (pain.001.001.03 is answered with pain.002.001.03, .09 with pain.002.001.10). The bank
// simulator writes its reports with it; tests read them back with ReadStatusReport.
func ComposeStatusReport(orig PaymentFile, msgID string, created time.Time, group string, groupReason string, txs []TxStatus) ([]byte, error) {
	var version string
	switch orig.Version {
	case Pain001V03:
		version = Pain002V03
	case Pain001V09:
		version = Pain002V10
	default:
		return nil, fmt.Errorf("compose status report: the original is %q; only %s and %s are answered", orig.Version, Pain001V03, Pain001V09)
	}
	if why := identifierProblem(msgID); why != "" {
		return nil, fmt.Errorf("compose status report: report MsgId %q %s", truncate(msgID, 40), why)
	}
	if orig.MsgID == "" {
		return nil, fmt.Errorf("compose status report: the original has no MsgId, so the report could link to nothing")
	}
	if group != "" && !statusCode.MatchString(group) {
		return nil, fmt.Errorf("compose status report: group status %q is not four capitals (ACTC, ACSC, PART, RJCT, …)", truncate(group, 20))
	}
	d := pain002Doc{Xmlns: isoNamespacePrefix + version, Rpt: pain002Contents{
		MsgID:   msgID,
		CreDtTm: created.Format("2006-01-02T15:04:05Z07:00"),
		Group: pain002Group{
			OrgnlMsgID:   orig.MsgID,
			OrgnlMsgNmID: orig.Version,
			OrgnlNbOfTxs: nbText(orig.NbOfTxs),
			OrgnlCtrlSum: orig.CtrlSum,
			GrpSts:       group,
		},
	}}
	if !orig.Created.IsZero() {
		d.Rpt.Group.OrgnlCreDtTm = orig.Created.Format("2006-01-02T15:04:05")
	}
	if groupReason != "" {
		if !reasonCode.MatchString(groupReason) {
			return nil, fmt.Errorf("compose status report: group reason %q is not a reason code (up to four capitals and digits, e.g. FF01)", truncate(groupReason, 20))
		}
		d.Rpt.Group.Reasons = []pain002Reason{{Cd: groupReason}}
	}
	// Each transfer is reported under its own block, in the original's order, once.
	type place struct{ block, pos int }
	where := map[string]place{}
	pos := 0
	for i, b := range orig.Blocks {
		for _, t := range b.Transactions {
			if _, seen := where[t.EndToEndID]; !seen {
				where[t.EndToEndID] = place{i, pos}
			}
			pos++
		}
	}
	type placed struct {
		pos int
		tx  pain002Tx
	}
	perBlock := make([][]placed, len(orig.Blocks))
	reported := map[string]bool{}
	for _, t := range txs {
		at, ok := where[t.OrgnlEndToEndID]
		if !ok {
			return nil, fmt.Errorf("compose status report: transfer %q is not in payment file %s", truncate(t.OrgnlEndToEndID, 40), orig.MsgID)
		}
		if reported[t.OrgnlEndToEndID] {
			return nil, fmt.Errorf("compose status report: transfer %s is given twice", t.OrgnlEndToEndID)
		}
		reported[t.OrgnlEndToEndID] = true
		if !statusCode.MatchString(t.Status) {
			return nil, fmt.Errorf("compose status report: transfer %s has status %q, not four capitals (ACSC, RJCT, …)", t.OrgnlEndToEndID, truncate(t.Status, 20))
		}
		tx := pain002Tx{OrgnlEndToEndID: t.OrgnlEndToEndID, TxSts: t.Status}
		for _, r := range t.Reasons {
			if !reasonCode.MatchString(r.Code) {
				return nil, fmt.Errorf("compose status report: transfer %s has reason %q, not a reason code (up to four capitals and digits, e.g. AC01)", t.OrgnlEndToEndID, truncate(r.Code, 20))
			}
			pr := pain002Reason{Cd: r.Code}
			if r.Info != "" {
				pr.AddtlInf = []string{truncateRunes(r.Info, 105)} // Max105Text in both versions
			}
			tx.Reasons = append(tx.Reasons, pr)
		}
		perBlock[at.block] = append(perBlock[at.block], placed{at.pos, tx})
	}
	for i, b := range orig.Blocks {
		if len(perBlock[i]) == 0 {
			continue
		}
		n := b.NbOfTxs
		if n == 0 {
			n = len(b.Transactions)
		}
		slices.SortFunc(perBlock[i], func(a, b placed) int { return a.pos - b.pos })
		blk := pain002Blok{OrgnlPmtInfID: b.PmtInfID, OrgnlNbOfTxs: nbText(n), OrgnlCtrlSum: b.CtrlSum}
		for _, p := range perBlock[i] {
			blk.Txs = append(blk.Txs, p.tx)
		}
		d.Rpt.Blocks = append(d.Rpt.Blocks, blk)
	}
	out, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("compose status report for %s: %w", orig.MsgID, err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

func nbText(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprint(n)
}

// truncateRunes cuts s to at most n characters, without an ellipsis: the field has a
// hard limit and the text is the bank's, not Koerier's.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
