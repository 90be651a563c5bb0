package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
)

// insertPayment stores what a queued payment order is (payments, one row per
// transaction, status not reported yet) in the queue's transaction, after refusing a
// MsgId the environment used before: a bank refuses a file whose MsgId it has seen
// (DUPL), so the second file would only fail, after the environment was told it was
// queued. A lock on the MsgId makes two queue calls with one MsgId go one after the
// other, so the second sees the first.
func insertPayment(ctx context.Context, tx *sqlx.Tx, envID, number int64, p domain.PaymentFile) error {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('payment-msgid/' || $1::bigint || '/' || $2, 0))`,
		envID, p.MsgID); err != nil {
		return err
	}
	// used_msg_ids outlives clean-up (migration 00011): a MsgId stays used.
	var used struct {
		Number int64   `db:"message_number"`
		Status *string `db:"status"`
	}
	err := tx.GetContext(ctx, &used, `SELECT u.message_number, m.status FROM used_msg_ids u LEFT JOIN messages m ON m.number = u.message_number
		WHERE u.environment_id = $1 AND u.msg_id = $2`, envID, p.MsgID)
	if err == nil {
		status := "removed by clean-up since"
		if used.Status != nil {
			status = "status " + *used.Status
		}
		return fmt.Errorf("%w: MsgId %s was used by message %d (%s): a bank refuses a file with a MsgId it has seen (DUPL); "+
			"give the file a new MsgId", ErrRefused, p.MsgID, used.Number, status)
	}
	if !isNoRows(err) {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO payments (message_number, environment_id, msg_id, version) VALUES ($1, $2, $3, $4)`,
		number, envID, p.MsgID, p.Version); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO used_msg_ids (environment_id, msg_id, message_number) VALUES ($1, $2, $3)`,
		envID, p.MsgID, number); err != nil {
		return err
	}
	txs := p.Transactions()
	ids, positions := make([]string, len(txs)), make([]int64, len(txs))
	amounts, currencies, names, ibans := make([]string, len(txs)), make([]string, len(txs)), make([]string, len(txs)), make([]string, len(txs))
	for i, t := range txs {
		ids[i], positions[i], amounts[i], currencies[i], names[i], ibans[i] = t.EndToEndID, int64(i+1), t.Amount, t.Currency, t.CreditorName,
			t.CreditorIBAN
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO payment_transactions (message_number, end_to_end_id, position, amount, currency, creditor_name,
			creditor_iban)
		SELECT $1, u.id, u.pos, u.amount::numeric, u.currency, u.name, u.iban
		FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u(id, pos, amount, currency, name, iban)`,
		number, pq.Array(ids), pq.Array(positions), pq.Array(amounts), pq.Array(currencies), pq.Array(names), pq.Array(ibans))
	if isUniqueViolation(err, "payment_transactions_pkey") {
		// domain.CheckPayment refuses a repeated EndToEndId; this is the last word.
		return fmt.Errorf("%w: payment file %s names one EndToEndId twice: give each transfer its own, the bank's reports name "+
			"transfers by it", ErrInvalid, p.MsgID)
	}
	return err
}

// BankReport is one status report (pain.002) fetched from an environment's bank.
type BankReport struct {
	EnvironmentID int64
	// Name is the file's name in the bank's download folder.
	Name    string
	Content []byte
	// Report is the file as domain.ReadStatusReport read it; unused when Unreadable
	// is set.
	Report domain.StatusReport
	// Unreadable says why the file could not be read as a status report: it is then
	// kept as an unknown reply for an operator.
	Unreadable string
}

// BankReportResult says what ApplyBankReport did with a report.
type BankReportResult struct {
	// Message is the payment order the report answers; 0 when it links to nothing.
	Message int64
	// Document is the message the report itself is kept as: a reply document of
	// Message, or the unknown reply.
	Document int64
	// Raised is set when the report raised the payment order's status; Status is the
	// order's status afterwards.
	Raised bool
	Status domain.Status
	// Unknown is the unknown reply (ONB) the report became, or 0.
	Unknown int64
	// AlreadySeen is set when this file was stored before: nothing was done now.
	AlreadySeen bool
	// Rejected lists the transactions this report rejected, with their reasons
	// ("INV-2026-0311: AC01 account number incorrect: …").
	Rejected []string
}

// bankReportPart is the berichtkenmerk a bank report is stored under, beside its
// pickup key: one file is one document.
const bankReportPart = "report"

// ApplyBankReport stores one fetched status report in one transaction. Linked by its
// OrgnlMsgId to the environment's payment order, it becomes a reply document of that
// message, and its group status is applied as any reply is (ApplyReplies: the highest
// status wins, rule 4), against the kenmerk of the order's delivery; every transaction
// it names — and, for a group status other than PART, every other transaction of the
// order — gets its status and reason, again only upwards. A report that links to
// nothing, or cannot be read, becomes an unknown reply (ONB) of the environment with
// the file attached and the reason (rule 5), as an unknown mail does.
//
// A report for an order whose current delivery has no known outcome (the worker died
// during the upload) proves that the bank has the file: the delivery is recorded as
// done, and never uploaded again.
//
// Idempotent per file (name and content, pickup key "bank:<environment>:<name>:<sha256>"):
// the same file fetched again (its move on the server failed, say) stores nothing and
// reports AlreadySeen. Reports of one environment are stored one at a time.
func (s *Store) ApplyBankReport(ctx context.Context, r BankReport) (BankReportResult, error) {
	if strings.TrimSpace(r.Name) == "" || len(r.Content) == 0 {
		return BankReportResult{}, fmt.Errorf("%w: a bank report needs its file name and content", ErrInvalid)
	}
	sum := sha256.Sum256(r.Content)
	pickup := fmt.Sprintf("bank:%d:%s:%s", r.EnvironmentID, r.Name, hex.EncodeToString(sum[:]))
	var res BankReportResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var env struct {
			Name   string `db:"name"`
			Active bool   `db:"active"`
		}
		if err := tx.GetContext(ctx, &env, `SELECT name, active FROM environments WHERE id = $1 FOR SHARE`, r.EnvironmentID); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("%w: environment %d does not exist", ErrNotFound, r.EnvironmentID)
			}
			return err
		}
		if !env.Active {
			return fmt.Errorf("%w: environment %s was removed: its bank's report %s is not stored (it stays on the server)", ErrRefused, env.Name, r.Name)
		}
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('bank-report/' || $1::bigint, 0))`,
			r.EnvironmentID); err != nil {
			return err
		}
		var seen []struct {
			Number  int64  `db:"number"`
			ReplyTo *int64 `db:"reply_to"`
			Subtype string `db:"subtype"`
		}
		if err := tx.SelectContext(ctx, &seen, `SELECT number, reply_to, subtype FROM messages WHERE pickup_kenmerk = $1 AND berichtkenmerk = $2`,
			pickup, bankReportPart); err != nil {
			return err
		}
		if len(seen) > 0 {
			res.AlreadySeen, res.Document = true, seen[0].Number
			switch {
			case seen[0].ReplyTo != nil:
				res.Message = *seen[0].ReplyTo
				return tx.GetContext(ctx, &res.Status, `SELECT status FROM messages WHERE number = $1`, res.Message)
			case seen[0].Subtype == domain.SubtypeONB:
				res.Unknown = seen[0].Number
			}
			return nil
		}
		if strings.TrimSpace(r.Unreadable) != "" {
			return unknownBankReport(ctx, tx, r, env.Name, pickup, "it cannot be read as a payment status report: "+oneLine(r.Unreadable), &res)
		}
		var order struct {
			Number  int64  `db:"message_number"`
			Type    string `db:"message_type"`
			Subject string `db:"subject"`
			Period  string `db:"period"`
			Attempt int    `db:"attempt"`
		}
		err := tx.GetContext(ctx, &order, paymentOrderQuery, r.EnvironmentID, r.Report.OrgnlMsgID)
		if isNoRows(err) {
			return unknownBankReport(ctx, tx, r, env.Name, pickup, fmt.Sprintf("it answers payment file MsgId %s, which environment %s "+
				"has not queued (or which was cleaned up)", firstRunes(r.Report.OrgnlMsgID, 40), env.Name), &res)
		}
		if err != nil {
			return err
		}
		res.Message = order.Number
		ref := domain.Aanleverkenmerk(s.prefix, order.Number, order.Attempt)
		return applyLinkedReport(ctx, tx, r, env.Name, pickup, ref, order.Number, order.Attempt, order.Type, order.Subject, order.Period, &res)
	})
	if err != nil {
		return BankReportResult{}, fmt.Errorf("store bank report %s of environment %d: %w", r.Name, r.EnvironmentID, err)
	}
	return res, nil
}

// unknownBankReport keeps a report that links to nothing as an unknown reply of the
// environment, with an F line.
func unknownBankReport(ctx context.Context, tx *sqlx.Tx, r BankReport, env, pickup, why string, res *BankReportResult) error {
	memo := fmt.Sprintf("bank status report %s of environment %s", r.Name, env)
	if r.Report.MsgID != "" {
		memo += fmt.Sprintf(" (report MsgId %s, status %s, answers MsgId %s)", r.Report.MsgID, r.Report.GroupStatus, r.Report.OrgnlMsgID)
	}
	reason := truncateRunes(fmt.Sprintf("unknown bank report: %s; the file is kept as its attachment: look at it and ask the bank which "+
		"order it answers. Linking it to a payment order (`starter onb link N MESSAGE`) keeps it with that order as a document — its "+
		"statuses are applied only by the MsgId it names, so the order's status does not change; or resolve it (`starter onb resolve N --memo …`)", why), 2000)
	num, err := insertIncoming(ctx, tx, incomingRow{env: r.EnvironmentID, channel: domain.ChannelBank, typ: domain.TypeUnknownONB,
		subtype: domain.SubtypeONB, pickup: pickup, part: bankReportPart, memo: truncateRunes(oneLine(memo), domain.MaxMemoLen), needs: true,
		reason: reason, file: attachmentName(r.Name, ".xml", "bank-report"), mime: "application/xml", content: r.Content})
	if err != nil {
		return err
	}
	res.Unknown, res.Document = num, num
	envID, n := r.EnvironmentID, num
	return writeLog(ctx, tx, LogEntry{EnvironmentID: &envID, MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelError,
		Description: truncateRunes(fmt.Sprintf("bank status report %s of environment %s links to no payment order (%s): kept as unknown reply %d",
			r.Name, env, why, num), 2000),
		Information: fmt.Sprintf("`starter onb list` shows it; `starter attachment save` gives the file; link it with `starter onb link %d "+
			"MESSAGE` or resolve it with `starter onb resolve %d --memo …`", num, num)})
}

// applyLinkedReport stores a report as a reply document of payment order number and
// applies its statuses.
func applyLinkedReport(ctx context.Context, tx *sqlx.Tx, r BankReport, env, pickup, ref string, number int64, attempt int, typ, subject,
	period string, res *BankReportResult) error {
	rep := r.Report
	doc, err := insertIncoming(ctx, tx, incomingRow{env: r.EnvironmentID, channel: domain.ChannelBank, replyTo: &number,
		typ: domain.MessageType(typ), subject: subject, period: period, pickup: pickup, part: bankReportPart,
		memo: truncateRunes(oneLine(fmt.Sprintf("bank status report %s (MsgId %s, status %s)", r.Name, rep.MsgID, rep.GroupStatus)), domain.MaxMemoLen),
		file: attachmentName(r.Name, ".xml", "bank-report"), mime: "application/xml", content: r.Content})
	if err != nil {
		return err
	}
	res.Document = doc
	at := rep.Created
	if at.IsZero() {
		if err := tx.GetContext(ctx, &at, `SELECT now()`); err != nil {
			return err
		}
	}
	rejected, unnamed, err := applyTransactionStatuses(ctx, tx, number, rep)
	if err != nil {
		return err
	}
	res.Rejected = rejected
	groupReasons := explainReasons(rep.GroupReasons)
	status, needs, meaning, known := domain.PaymentReplyStatus(rep.GroupStatus)
	kenmerk, how, err := bankDeliveryKenmerk(ctx, tx, number, attempt, r.Name, ref)
	if err != nil {
		return err
	}
	var logs []LogEntry
	if how != "" {
		logs = append(logs, LogEntry{EnvironmentID: &r.EnvironmentID, MessageNumber: &number, Step: domain.StepSend, Level: domain.LevelInfo,
			Description: how, DedupeKey: fmt.Sprintf("delivered/%d/%d", number, attempt)})
	}
	var trouble string
	switch {
	case !known:
		trouble = fmt.Sprintf("the bank's status report %s (stored as message %d) has status %q, which Koerier does not know: read the report and "+
			"ask the bank what it means for payment order %d", r.Name, doc, rep.GroupStatus, number)
	case kenmerk == "":
		trouble = fmt.Sprintf("the bank's status report %s (stored as message %d) answers payment order %d, which Koerier has no upload of "+
			"on record: ask the bank where the file came from before anything is sent again", r.Name, doc, number)
	default:
		reply := Reply{Kenmerk: kenmerk, Code: rep.GroupStatus, Status: status, NeedsAction: needs, OccurredAt: at, Description: meaning,
			From: "bank"}
		if len(rep.GroupReasons) > 0 {
			reply.ErrorCode = rep.GroupReasons[0].Code
			reply.ErrorDescription = strings.Join(groupReasons, "; ")
		}
		reply.Details = strings.Join(append(append([]string(nil), groupReasons...), rejected...), "\n")
		switch {
		case len(rejected) > 0:
			reply.Advice = "rejected: " + strings.Join(rejected, "; ")
		case len(groupReasons) > 0:
			reply.Advice = "reason: " + strings.Join(groupReasons, "; ")
		default:
			reply.Advice = "read the report (message " + fmt.Sprint(doc) + ")"
		}
		applied, err := applyReplies(ctx, tx, []Reply{reply})
		if err != nil {
			return err
		}
		_, res.Raised = applied.Raised[number]
	}
	if trouble != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET needs_action = true, needs_action_reason = $2 WHERE number = $1`,
			number, truncateRunes(trouble, 2000)); err != nil {
			return err
		}
	}
	if err := tx.GetContext(ctx, &res.Status, `SELECT status FROM messages WHERE number = $1`, number); err != nil {
		return err
	}
	desc := fmt.Sprintf("bank status report %s received for payment order %d: %s %s, stored as message %d; the order is %s",
		r.Name, number, rep.GroupStatus, meaning, doc, res.Status)
	if len(groupReasons) > 0 {
		desc += "; reason: " + strings.Join(groupReasons, "; ")
	}
	if len(rejected) > 0 {
		desc += "; rejected: " + strings.Join(rejected, "; ")
	}
	if len(unnamed) > 0 {
		desc += fmt.Sprintf("; it names transaction(s) %s, which the order does not have", strings.Join(unnamed, ", "))
	}
	line := LogEntry{EnvironmentID: &r.EnvironmentID, MessageNumber: &number, Step: domain.StepReceive, Level: domain.LevelInfo,
		Description: truncateRunes(desc, 2000)}
	if trouble != "" {
		line.Level, line.Information = domain.LevelError, trouble
	}
	return writeLogs(ctx, tx, append(logs, line))
}

// bankDeliveryKenmerk is the kenmerk a report on payment order number is applied to:
// the latest delivery with one (ApplyReplies keeps a reply to an earlier attempt
// without applying it). An upload of the current attempt whose outcome is not known is
// recorded as delivered now, with how saying so for the log: the bank reporting on the
// file's MsgId is proof that it has the file, and uploading it again would be refused
// as a duplicate (rule 11). "" when no upload of the order is on record.
func bankDeliveryKenmerk(ctx context.Context, tx *sqlx.Tx, number int64, attempt int, name, ref string) (kenmerk, how string, err error) {
	// The message's row before its delivery's, in the order every other change takes.
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM messages WHERE number = $1 FOR UPDATE`, number); err != nil {
		return "", "", err
	}
	// Any try of the current attempt without a kenmerk: open, or closed as not having
	// arrived (a try the worker thought failed may have reached the bank after all), or
	// none on record at all — the report naming the MsgId proves the bank has the file.
	var adopted []string
	if err := tx.SelectContext(ctx, &adopted, `UPDATE deliveries d SET kenmerk = d.aanleverkenmerk, delivered_at = now(), last_error = '',
			closed_at = NULL
		WHERE d.message_number = $1 AND d.attempt = $2 AND d.kenmerk IS NULL AND d.failed_at IS NULL RETURNING d.kenmerk`, number, attempt); err != nil {
		return "", "", err
	}
	if len(adopted) == 0 {
		if err := tx.SelectContext(ctx, &adopted, `INSERT INTO deliveries (message_number, attempt, aanleverkenmerk, kenmerk, delivered_at)
			SELECT $1, $2, $3, $3, now() WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE message_number = $1 AND attempt = $2)
			RETURNING kenmerk`, number, attempt, ref); err != nil {
			return "", "", err
		}
	}
	if len(adopted) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET status = 'sent', last_status_change = now()
			WHERE number = $1 AND attempt = $2
			  AND (SELECT rank FROM message_statuses WHERE status = messages.status) < (SELECT rank FROM message_statuses WHERE status = 'sent')`,
			number, attempt); err != nil {
			return "", "", err
		}
		if err := clearDeliveryTrouble(ctx, tx, number); err != nil {
			return "", "", err
		}
		how = fmt.Sprintf("payment order %d found at the bank after an interrupted upload: its status report %s names the file's MsgId "+
			"(not uploaded again); delivery %s", number, name, adopted[0])
	}
	var kms []string
	if err := tx.SelectContext(ctx, &kms, `SELECT kenmerk FROM deliveries WHERE message_number = $1 AND kenmerk IS NOT NULL
		ORDER BY attempt DESC LIMIT 1`, number); err != nil {
		return "", "", err
	}
	if len(kms) == 0 {
		return "", how, nil
	}
	return kms[0], how, nil
}

// applyTransactionStatuses records the statuses a report gives the order's
// transactions, each only upwards (rule 4, per transaction: a late ACTC never takes a
// rejected or settled transaction back). A transaction the report does not name takes
// the group status, as ISO 20022 means it, except under PART, which says only that
// some were rejected. It returns the transactions rejected by this report, with their
// reasons, and the EndToEndIds the report names that the order does not have.
func applyTransactionStatuses(ctx context.Context, tx *sqlx.Tx, number int64, rep domain.StatusReport) (rejected, unnamed []string, err error) {
	var current []struct {
		ID     string `db:"end_to_end_id"`
		Status string `db:"status"`
		Reason string `db:"reason_code"`
	}
	if err := tx.SelectContext(ctx, &current, `SELECT end_to_end_id, status, reason_code FROM payment_transactions
		WHERE message_number = $1 ORDER BY position`, number); err != nil {
		return nil, nil, err
	}
	named := make(map[string]domain.TxStatus, len(rep.Transactions))
	for _, t := range rep.Transactions {
		named[t.OrgnlEndToEndID] = t
	}
	var ids, statuses, codes, texts []string
	for _, c := range current {
		t, ok := named[c.ID]
		delete(named, c.ID)
		status, reasons := t.Status, t.Reasons
		if status == "" && rep.GroupStatus != "PART" {
			status = rep.GroupStatus
		}
		if !ok && status == "RJCT" {
			reasons = rep.GroupReasons
		}
		if status == "" || txRank(status) < txRank(c.Status) {
			continue
		}
		code, text := "", ""
		if len(reasons) > 0 {
			code = reasons[0].Code
			text = strings.Join(explainReasons(reasons), "; ")
		}
		if status == c.Status && code == c.Reason {
			continue
		}
		ids, statuses, codes, texts = append(ids, c.ID), append(statuses, status), append(codes, code), append(texts, text)
		if status == "RJCT" {
			line := c.ID + ": rejected"
			if text != "" {
				line = c.ID + ": " + text
			}
			rejected = append(rejected, line)
		}
	}
	for id := range named {
		unnamed = append(unnamed, firstRunes(id, 40))
	}
	if len(ids) == 0 {
		return rejected, unnamed, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE payment_transactions t SET status = u.status, reason_code = u.code, reason_text = u.text,
			updated_at = now()
		FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, status, code, text)
		WHERE t.message_number = $1 AND t.end_to_end_id = u.id`,
		number, pq.Array(ids), pq.Array(statuses), pq.Array(codes), pq.Array(texts))
	return rejected, unnamed, err
}

// txRank orders a transaction's ISO statuses as the order's statuses are ordered
// (domain.PaymentReplyStatus, Status.Rank); a code Koerier does not know ranks just
// above none, so it is shown until a known one comes.
func txRank(code string) int {
	if code == "" {
		return -1
	}
	status, _, _, ok := domain.PaymentReplyStatus(code)
	if !ok {
		return 0
	}
	return status.Rank() + 1
}

// explainReasons explains each reason: "AC01 account number incorrect: …", with the
// bank's own words after it.
func explainReasons(reasons []domain.StatusReason) []string {
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		var s string
		switch {
		case r.Code != "":
			s = r.Code + " " + domain.ReasonText(r.Code)
		default:
			s = "no reason code"
		}
		// The bank's own words, unless they only repeat the explanation.
		if info := oneLine(r.Info); info != "" && !strings.Contains(strings.ToLower(s), strings.ToLower(strings.TrimRight(info, "."))) {
			s += " (bank: " + firstRunes(info, 200) + ")"
		}
		out = append(out, s)
	}
	return out
}

// PaymentTxView is one transaction of a payment order as its environment sees it.
type PaymentTxView struct {
	EndToEndID   string `db:"end_to_end_id" json:"end_to_end_id"`
	Amount       string `db:"amount"        json:"amount"`
	Currency     string `db:"currency"      json:"currency"`
	Creditor     string `db:"creditor_name" json:"creditor"`
	CreditorIBAN string `db:"creditor_iban" json:"creditor_iban"`
	// Status is the ISO 20022 status the bank last reported (ACSC, RJCT, …); "" when
	// it has reported none yet.
	Status     string `db:"status"      json:"status"`
	Reason     string `db:"reason_code" json:"reason"`
	ReasonText string `db:"reason_text" json:"reason_text"`
}

// PaymentTransactions returns a payment order's transactions in file order, with the
// status the bank last reported for each; empty for a message that is no payment order.
func (s *Store) PaymentTransactions(ctx context.Context, number int64) ([]PaymentTxView, error) {
	out := []PaymentTxView{}
	if err := s.db.SelectContext(ctx, &out, paymentTransactionsQuery, number); err != nil {
		return nil, fmt.Errorf("read the transactions of payment order %d: %w", number, err)
	}
	return out, nil
}

const paymentTransactionsQuery = `SELECT end_to_end_id, amount::text AS amount, currency, creditor_name, creditor_iban, status, reason_code,
	reason_text FROM payment_transactions WHERE message_number = $1 ORDER BY position`

// paymentOrderQuery finds the payment order a status report answers, by the MsgId it
// names (OrgnlMsgId).
const paymentOrderQuery = `SELECT p.message_number, m.message_type, m.subject, m.period, m.attempt
	FROM payments p JOIN messages m ON m.number = p.message_number WHERE p.environment_id = $1 AND p.msg_id = $2`
