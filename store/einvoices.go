package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/jmoiron/sqlx"

	"koerier/domain"
)

// ReceivedInvoice is one UBL document found in a received mail, read by
// domain.ReadEInvoice.
type ReceivedInvoice struct {
	FileName string
	Content  []byte
	Invoice  domain.EInvoice
}

// IncomingMail is one mail read from an environment's mailbox.
type IncomingMail struct {
	EnvironmentID int64
	// MessageID is the mail's Message-ID header; a mail without one is known by the
	// SHA-256 of Raw.
	MessageID     string
	From, Subject string
	Raw           []byte
	Invoices      []ReceivedInvoice
	// Unknown says why (part of) the mail holds no usable UBL: the mail is then also
	// kept whole (Raw, as .eml) as an unknown incoming message for an operator.
	Unknown string
}

// IncomingMailResult says what StoreIncomingMail did with a mail.
type IncomingMailResult struct {
	// Stored are the messages of the invoices stored now.
	Stored []int64
	// Duplicates say which invoices were stored before ("invoice 2026-0417 from X is
	// message N already").
	Duplicates []string
	// Unknown is the unknown incoming message (ONB) the mail became, or 0.
	Unknown int64
	// AlreadySeen is set when this mail was stored before: nothing was done now.
	AlreadySeen bool
}

// Kinds of row an incoming mail becomes, under its pickup key (messages_pickup).
const (
	mailPickupPrefix  = "mail:"
	mailUnknownPart   = "unknown"
	mailInvoicePrefix = "invoice-"
)

// StoreIncomingMail stores one mail read from an environment's mailbox in one
// transaction. Each invoice becomes an incoming e-invoice of the environment (direction
// in, status received, the document as attachment, a row in incoming_invoices), except
// one stored before (same supplier and invoice number), which gets an I line instead. A
// mail with a reason in Unknown is kept whole as an unknown incoming message (subtype
// ONB, needs action, an F line), so that `starter onb list` shows it to an operator.
//
// Idempotent: the same mail read again (its folder move failed, say) stores nothing and
// reports AlreadySeen. Mails of one environment are stored one at a time.
func (s *Store) StoreIncomingMail(ctx context.Context, m IncomingMail) (IncomingMailResult, error) {
	if len(m.Invoices) == 0 && strings.TrimSpace(m.Unknown) == "" {
		return IncomingMailResult{}, fmt.Errorf("%w: a mail without invoices must say why (Unknown), to be kept for an operator", ErrInvalid)
	}
	id := strings.TrimSpace(m.MessageID)
	if id == "" {
		sum := sha256.Sum256(m.Raw)
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	// The same mail may reach two environments' mailboxes: it is new to each.
	pickup := fmt.Sprintf("%s%d:%s", mailPickupPrefix, m.EnvironmentID, id)
	var res IncomingMailResult
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var env struct {
			Name   string `db:"name"`
			Active bool   `db:"active"`
		}
		if err := tx.GetContext(ctx, &env, `SELECT name, active FROM environments WHERE id = $1 FOR SHARE`, m.EnvironmentID); err != nil {
			if isNoRows(err) {
				return fmt.Errorf("%w: environment %d does not exist", ErrNotFound, m.EnvironmentID)
			}
			return err
		}
		if !env.Active {
			return fmt.Errorf("%w: environment %s was removed: its mail is not stored (it stays in the mailbox)", ErrRefused, env.Name)
		}
		// One mail of an environment at a time: the duplicate check and the "seen"
		// check below then cannot race another reader of the same mailbox.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('incoming-mail/' || $1::bigint, 0))`,
			m.EnvironmentID); err != nil {
			return err
		}
		seenKey := "mail-seen/" + pickup
		var seen bool
		if err := tx.GetContext(ctx, &seen, `SELECT EXISTS (SELECT 1 FROM communication_log WHERE dedupe_key = $1)
			OR EXISTS (SELECT 1 FROM messages WHERE pickup_kenmerk = $2)`, seenKey, pickup); err != nil {
			return err
		}
		if seen {
			res.AlreadySeen = true
			return nil
		}
		envID := m.EnvironmentID
		from := truncateRunes(oneLine(m.From), 200)
		memo := truncateRunes(fmt.Sprintf("e-mail from %s, subject %q, Message-ID %s", from, oneLine(m.Subject), id), domain.MaxMemoLen)
		var logs []LogEntry
		for i, ri := range m.Invoices {
			inv := ri.Invoice
			var dup int64
			err := tx.GetContext(ctx, &dup, `SELECT message_number FROM incoming_invoices
				WHERE environment_id = $1 AND supplier_key = $2 AND invoice_number = $3`, envID, inv.SupplierKey, inv.Number)
			if err == nil {
				d := fmt.Sprintf("invoice %s from %s is message %d already", inv.Number, inv.SupplierName, dup)
				res.Duplicates = append(res.Duplicates, d)
				logs = append(logs, LogEntry{EnvironmentID: &envID, MessageNumber: &dup, Step: domain.StepReceive, Level: domain.LevelInfo,
					Description: fmt.Sprintf("e-invoice received again by e-mail (%s): %s; not stored twice", from, d),
					DedupeKey:   fmt.Sprintf("mail-duplicate/%s/%d", pickup, i)})
				continue
			}
			if !isNoRows(err) {
				return err
			}
			subject, period := inv.SubjectAndPeriod()
			name := attachmentName(ri.FileName, ".xml", "invoice-"+inv.Number)
			num, err := insertIncoming(ctx, tx, incomingRow{env: envID, typ: domain.TypeEInvoice, subject: subject, period: period,
				pickup: pickup, part: fmt.Sprintf("%s%d", mailInvoicePrefix, i), memo: memo,
				file: name, mime: "application/xml", content: ri.Content})
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO incoming_invoices (message_number, environment_id, kind, supplier_key, supplier_name,
				invoice_number, issue_date, currency, payable, mail_message_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				num, envID, inv.Kind, inv.SupplierKey, inv.SupplierName, inv.Number, inv.IssueDate.Format(time.DateOnly), inv.Currency,
				storedAmount(inv.Payable), m.MessageID); err != nil {
				return fmt.Errorf("invoice %s from %s: %w", inv.Number, inv.SupplierName, err)
			}
			res.Stored = append(res.Stored, num)
			n := num
			logs = append(logs, LogEntry{EnvironmentID: &envID, MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelInfo,
				Description: fmt.Sprintf("e-invoice %s from %s (%s %s) received by e-mail from %s, stored as message %d",
					inv.Number, inv.SupplierName, inv.Currency, inv.Payable, from, num)})
		}
		if strings.TrimSpace(m.Unknown) != "" {
			reason := truncateRunes(fmt.Sprintf("unknown e-mail: %s; the mail is kept as its .eml attachment: look at it, and resolve it "+
				"(`starter onb resolve N --memo …`) or ask the sender for a UBL invoice", oneLine(m.Unknown)), 2000)
			num, err := insertIncoming(ctx, tx, incomingRow{env: envID, typ: domain.TypeUnknownONB, subtype: domain.SubtypeONB,
				pickup: pickup, part: mailUnknownPart, memo: memo, needs: true, reason: reason,
				file: attachmentName(oneLine(m.Subject), ".eml", "mail"), mime: "message/rfc822", content: m.Raw})
			if err != nil {
				return err
			}
			res.Unknown = num
			n := num
			logs = append(logs, LogEntry{EnvironmentID: &envID, MessageNumber: &n, Step: domain.StepReceive, Level: domain.LevelError,
				Description: fmt.Sprintf("e-mail from %s to environment %s has no usable UBL invoice (%s): kept as unknown incoming message %d",
					from, env.Name, oneLine(m.Unknown), num),
				Information: fmt.Sprintf("`starter onb list` shows it; `starter attachment save` gives the mail itself; resolve it with `starter onb resolve %d --memo …`", num)})
		}
		summary := fmt.Sprintf("e-mail %s from %s read from the mailbox of environment %s: %d invoice(s) stored, %d duplicate(s)",
			id, from, env.Name, len(res.Stored), len(res.Duplicates))
		if res.Unknown != 0 {
			summary += fmt.Sprintf(", kept as unknown incoming message %d", res.Unknown)
		}
		// Also what marks the mail as seen when nothing of it was stored (all duplicates).
		logs = append(logs, LogEntry{EnvironmentID: &envID, Step: domain.StepReceive, Level: domain.LevelInfo, Description: summary,
			DedupeKey: seenKey})
		return writeLogs(ctx, tx, logs)
	})
	if err != nil {
		return IncomingMailResult{}, fmt.Errorf("store mail %s of environment %d: %w", id, m.EnvironmentID, err)
	}
	return res, nil
}

// incomingRow is one incoming message made from a mail (or a bank's status report),
// with its one file.
type incomingRow struct {
	env int64
	// channel is where it came from; empty is e-mail.
	channel domain.Channel
	// replyTo is the outgoing message it is a reply document of; nil for a message of
	// its own or an unknown reply.
	replyTo         *int64
	typ             domain.MessageType
	subtype         string
	subject, period string
	pickup, part    string
	memo            string
	needs           bool
	reason          string
	file, mime      string
	content         []byte
}

// insertIncoming stores an incoming message of a mail and its file. The pickup key and
// part are unique together (messages_pickup): a mail stored twice fails here rather
// than being stored twice, whatever the checks before said.
func insertIncoming(ctx context.Context, tx *sqlx.Tx, r incomingRow) (int64, error) {
	if r.channel == "" {
		r.channel = domain.ChannelEmail
	}
	var num int64
	if err := tx.GetContext(ctx, &num, `
		INSERT INTO messages (direction, environment_id, message_type, subtype, subject, period, status, env_status, channel,
			pickup_kenmerk, berichtkenmerk, needs_action, needs_action_reason, memo, reply_to)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13, $14)
		RETURNING number`,
		domain.DirectionIn, r.env, r.typ, r.subtype, truncateRunes(r.subject, domain.MaxSubjectLen), r.period, domain.StatusReceived,
		r.channel, r.pickup, r.part, r.needs, r.reason, r.memo, r.replyTo); err != nil {
		return 0, err
	}
	if len(r.content) == 0 {
		return num, nil
	}
	sum := sha256.Sum256(r.content)
	if _, err := tx.ExecContext(ctx, `INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content)
		VALUES ($1, $2, $3, $4, $5, $6)`, num, r.file, r.mime, len(r.content), sum[:], r.content); err != nil {
		return 0, err
	}
	return num, nil
}

// attachmentName is a file name for a received file: the sender's name without
// directories or control characters, ending in ext, within the 80 characters an
// attachment's name may have; fallback when nothing usable is left.
func attachmentName(name, ext, fallback string) string {
	clean := func(s string) string {
		s = path.Base(strings.ReplaceAll(s, `\`, "/"))
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == '/' {
				return -1
			}
			return r
		}, s)
		return strings.Trim(strings.TrimSpace(s), ".")
	}
	base := clean(name)
	if base == "" {
		base = clean(fallback)
	}
	if base == "" {
		base = "file"
	}
	if !strings.HasSuffix(strings.ToLower(base), ext) {
		base = truncateRunes(base, domain.MaxFileNameLen-len(ext)) + ext
	}
	if len([]rune(base)) > domain.MaxFileNameLen {
		base = truncateRunes(strings.TrimSuffix(base, ext), domain.MaxFileNameLen-len(ext)) + ext
	}
	return base
}

// storedAmount is a payable amount as the numeric column takes it, or NULL: a received
// invoice is kept even when its amount is missing or unreadable (ReadEInvoice does not
// require one), and a malformed amount must not keep the whole mail from being stored.
func storedAmount(s string) *string {
	if !decimalAmount.MatchString(s) {
		return nil
	}
	return &s
}

var decimalAmount = regexp.MustCompile(`^-?[0-9]{1,18}(\.[0-9]{1,6})?$`)

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// InvoiceView is a received e-invoice as its environment sees it.
type InvoiceView struct {
	Number        int64     `db:"number"         json:"number"`
	InvoiceNumber string    `db:"invoice_number" json:"invoice_number"`
	Supplier      string    `db:"supplier"       json:"supplier"`
	Amount        string    `db:"amount"         json:"amount"`
	Currency      string    `db:"currency"       json:"currency"`
	Status        string    `db:"status"         json:"status"`
	Kind          string    `db:"kind"           json:"kind"`
	IssueDate     string    `db:"issue_date"     json:"issue_date"`
	ReceivedAt    time.Time `db:"received_at"    json:"received_at"`
	AttachmentID  int64     `db:"attachment_id"  json:"attachment_id"`
}

// IncomingInvoices pages through an environment's received e-invoices by message
// number, after the number given (0 for the first page).
func (s *Store) IncomingInvoices(ctx context.Context, envID int64, after int64, limit int) ([]InvoiceView, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	out := []InvoiceView{}
	if err := s.db.SelectContext(ctx, &out, incomingInvoicesQuery, envID, after, limit); err != nil {
		return nil, fmt.Errorf("list received invoices of environment %d: %w", envID, err)
	}
	return out, nil
}

const incomingInvoicesQuery = `
	SELECT i.message_number AS number, i.invoice_number, i.supplier_name AS supplier, COALESCE(i.payable::text, '') AS amount, i.currency,
		m.status, i.kind, to_char(i.issue_date, 'YYYY-MM-DD') AS issue_date, i.received_at,
		COALESCE((SELECT min(a.id) FROM attachments a WHERE a.message_number = i.message_number), 0) AS attachment_id
	FROM incoming_invoices i JOIN messages m ON m.number = i.message_number
	WHERE i.environment_id = $1 AND i.message_number > $2
	ORDER BY i.message_number LIMIT $3`
