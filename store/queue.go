package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"koerier/domain"
	"koerier/pipeline"
)

// QueueRequest is what an environment hands to the service.
type QueueRequest struct {
	Environment string
	Type        domain.MessageType
	Subject     string
	Period      string
	// ClientReference makes queueing idempotent per environment (rule 1 in docs/rules.md): the same
	// reference again returns the message queued the first time.
	ClientReference string
	Memo            string
	Attachments     []domain.Attachment
	// Recipient is the address an e-invoice goes to when its customer has none in the
	// invoice, or should get it elsewhere; only for e-invoices.
	Recipient string

	// payment is the payment order as its check read it, for queueTx to store.
	payment *domain.PaymentFile
	// corrects is set when a payment order names the order it corrects (its subject and
	// period): queueTx checks that such an order exists and that the bank took none of it.
	corrects bool
}

// Queued is the outcome of a queue call.
type Queued struct {
	Number         int64         `json:"number"`
	Version        int           `json:"version"`
	Status         domain.Status `json:"status"`
	Environment    string        `json:"environment"`
	EnvironmentID  int64         `json:"-"`
	Type           string        `json:"type"`
	Subject        string        `json:"subject"`
	Period         string        `json:"period"`
	DeclarationKey string        `json:"declaration"`
	// Existing is set when the client reference was queued before and nothing new
	// was stored.
	Existing bool `json:"existing"`
	// Superseded lists older versions that this one marked do-not-send.
	Superseded []int64 `json:"superseded,omitempty"`
	AutoSend   bool    `json:"-"`
}

// Queue stores a message with its attachments in one transaction: it gets the next
// unique number and the next version of its declaration, and older versions that were
// not sent are marked do-not-send.
func (s *Store) Queue(ctx context.Context, req QueueRequest) (Queued, error) {
	req, spec, err := s.validateQueue(ctx, req)
	if err != nil {
		return Queued{}, err
	}
	var out Queued
	for try := 0; ; try++ {
		out, err = s.queueTx(ctx, req, spec)
		// Two callers with the same client reference at once: the loser reads the
		// winner's message instead of failing.
		if isUniqueViolation(err, "messages_client_reference") && try == 0 {
			continue
		}
		break
	}
	if err != nil {
		if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrRefused) || errors.Is(err, ErrConflict) {
			return Queued{}, err
		}
		return Queued{}, fmt.Errorf("queue %s %s %s for %s: %w", req.Type, req.Subject, req.Period, req.Environment, err)
	}
	return out, nil
}

// validateQueue checks a request before anything is stored and returns it with its subject and
// period in their stored form ("One form for subject and period" in docs/rules.md): two
// spellings of one subject are one declaration, with one version numbering and one delivery in
// flight.
func (s *Store) validateQueue(ctx context.Context, req QueueRequest) (QueueRequest, domain.TypeSpec, error) {
	var problems []string
	req.payment = nil
	if req.Type == domain.TypeEInvoice || req.Type == domain.TypePayment {
		var check error
		if req.Type == domain.TypeEInvoice {
			req, problems, check = checkEInvoiceRequest(req)
		} else {
			var today time.Time
			// The database's date, not the worker's: every stored time is the database's,
			// and a worker whose clock is a day off must not take a past execution date.
			if err := s.db.GetContext(ctx, &today, `SELECT current_date`); err != nil {
				return req, domain.TypeSpec{}, fmt.Errorf("read today's date to check the payment order: %w", err)
			}
			req, problems, check = checkPaymentRequest(req, today)
		}
		if check != nil {
			// The document is what is wrong; the rest of the request is read once it passes.
			return req, domain.TypeSpec{}, &invalidDocument{check: check}
		}
	}
	if req.Type != domain.TypeEInvoice && req.Recipient != "" {
		problems = append(problems, fmt.Sprintf("a recipient is given, but %s messages are not e-mailed: only e-invoices are sent to an address", req.Type))
	}
	decl, spec, known, declProblems := storedDeclaration(s.catalog,
		domain.Declaration{Environment: req.Environment, Type: req.Type, Subject: req.Subject, Period: req.Period})
	problems = append(problems, declProblems...)
	req.Subject, req.Period = decl.Subject, decl.Period
	for _, a := range req.Attachments {
		if err := a.Validate(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	switch {
	case known:
		if ferr := spec.CheckFiles(req.Attachments); ferr != nil {
			problems = append(problems, strings.ReplaceAll(ferr.Error(), "\n", "; "))
		}
	case len(req.Attachments) == 0:
		problems = append(problems, "a message needs at least one file (the declaration itself)")
	}
	if !utf8.ValidString(req.ClientReference) || len(req.ClientReference) > domain.MaxClientRefLen {
		problems = append(problems, fmt.Sprintf("client reference must be valid UTF-8 of at most %d bytes", domain.MaxClientRefLen))
	}
	if !utf8.ValidString(req.Memo) || utf8.RuneCountInString(req.Memo) > domain.MaxMemoLen {
		problems = append(problems, fmt.Sprintf("memo must be valid UTF-8 of at most %d characters", domain.MaxMemoLen))
	}
	if len(problems) > 0 {
		return req, domain.TypeSpec{}, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return req, spec, nil
}

// checkEInvoiceRequest checks an e-invoice before it is queued (domain.CheckEInvoice)
// and returns the request as it is stored: under the invoice's own number and month,
// to the address it goes to, as application/xml. problems are the request's faults;
// check is the failed check of the document.
func checkEInvoiceRequest(req QueueRequest) (_ QueueRequest, problems []string, check error) {
	if len(req.Attachments) != 1 {
		problems = append(problems, fmt.Sprintf("an e-invoice is one file, the UBL document, and %d were given: queue the UBL alone "+
			"(a PDF rendition goes inside it, as cac:AdditionalDocumentReference)", len(req.Attachments)))
		return req, problems, nil
	}
	inv, err := domain.CheckEInvoice(req.Attachments[0].Content, req.Recipient)
	if err != nil {
		return req, nil, err
	}
	subject, period := inv.SubjectAndPeriod()
	if req.Subject != "" {
		if given, err := domain.NormalizeText("subject", req.Subject); err != nil || given != subject {
			problems = append(problems, fmt.Sprintf("subject %q is not the invoice's number %q: leave the subject out, an e-invoice is "+
				"queued under its own number", req.Subject, subject))
		}
	}
	if req.Period != "" {
		if given, err := domain.NormalizePeriod(req.Period); err != nil || given != period {
			problems = append(problems, fmt.Sprintf("period %q is not the invoice's month of issue %s: leave the period out, an e-invoice is "+
				"queued under the month it was issued", req.Period, period))
		}
	}
	req.Subject, req.Period, req.Recipient = subject, period, inv.Recipient(req.Recipient)
	file := req.Attachments[0]
	file.MimeType = "application/xml"
	req.Attachments = []domain.Attachment{file}
	return req, problems, nil
}

// checkPaymentRequest checks a payment order before it is queued (domain.CheckPayment,
// with the database's today) and returns the request as it is stored: under the file's
// MsgId and the month of its execution date (or the subject and period of the order it
// corrects, when the request names them), as application/xml, with the file as read
// for the payments rows. problems are the request's faults; check is the failed check of
// the document. Whether the environment used the MsgId before is queueTx's to decide,
// under a lock.
func checkPaymentRequest(req QueueRequest, today time.Time) (_ QueueRequest, problems []string, check error) {
	if len(req.Attachments) != 1 {
		problems = append(problems, fmt.Sprintf("a payment order is one file, the pain.001, and %d were given: queue each file on its own",
			len(req.Attachments)))
		return req, problems, nil
	}
	p, err := domain.CheckPayment(req.Attachments[0].Content, today)
	if err != nil {
		return req, nil, err
	}
	// A payment order is queued under its MsgId and the month it is to be paid, unless
	// the request names the order it corrects: a file the bank rejected goes again with a
	// new MsgId (a bank refuses one it has seen) as the next version of that order, so
	// that the rejected one can never be sent after it (rule 3, rule 23).
	subject, period := p.SubjectAndPeriod()
	if (req.Subject == "") != (req.Period == "") {
		problems = append(problems, "a payment order that corrects another names both its subject and its period (`starter show N` shows them); "+
			"give both, or neither to queue a new order under the file's MsgId")
	}
	req.corrects = req.Subject != "" && req.Period != ""
	if req.Subject != "" {
		given, err := domain.NormalizeText("subject", req.Subject)
		if err != nil {
			problems = append(problems, err.Error())
		}
		subject = given
	}
	if req.Period != "" {
		given, err := domain.NormalizePeriod(req.Period)
		if err != nil {
			problems = append(problems, err.Error())
		}
		period = given
	}
	req.Subject, req.Period, req.payment = subject, period, &p
	file := req.Attachments[0]
	file.MimeType = "application/xml"
	req.Attachments = []domain.Attachment{file}
	return req, problems, nil
}

// invalidDocument is an e-invoice or payment order refused by its check: ErrInvalid (a
// 422 at the API) whose text starts with the rule that failed, and that errors.As still
// finds the *domain.EInvoiceError or *domain.PaymentError in.
type invalidDocument struct{ check error }

func (e *invalidDocument) Error() string { return strings.ReplaceAll(e.check.Error(), "\n", "; ") }

func (e *invalidDocument) Unwrap() []error { return []error{ErrInvalid, e.check} }

// storedDeclaration is a declaration with its subject and period in the form store.Queue stores
// and keys them by, with its type's spec; problems says what keeps it from being stored. Queue and
// the migration of rows queued before that form (normalise.go) both use it, so that the two
// cannot compute different keys for one declaration.
func storedDeclaration(cat domain.Catalog, d domain.Declaration) (_ domain.Declaration, _ domain.TypeSpec, known bool, problems []string) {
	spec, lookupErr := cat.Lookup(d.Type)
	if lookupErr != nil && d.Type != "" {
		problems = append(problems, lookupErr.Error())
	}
	if subject, serr := normalizeSubject(spec, lookupErr == nil, d.Subject); serr != nil {
		problems = append(problems, serr.Error())
	} else {
		d.Subject = subject
	}
	if period, perr := domain.NormalizePeriod(d.Period); perr != nil {
		problems = append(problems, perr.Error())
	} else {
		d.Period = period
	}
	if err := d.Validate(); err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return d, spec, lookupErr == nil, problems
}

// normalizeSubject checks the subject against the type's form when the type is known,
// and only as text otherwise (the unknown type is the error then).
func normalizeSubject(spec domain.TypeSpec, known bool, raw string) (string, error) {
	text, err := domain.NormalizeText("subject", raw)
	if err != nil || text == "" || !known {
		return text, err // an empty subject is Declaration.Validate's to report
	}
	return spec.NormalizeSubject(raw)
}

func (s *Store) queueTx(ctx context.Context, req QueueRequest, spec domain.TypeSpec) (Queued, error) {
	var out Queued
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var env Environment
		err := tx.GetContext(ctx, &env, `SELECT `+environmentColumns+`
			FROM environments WHERE name = $1 FOR SHARE`, req.Environment)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf(
				"%w: environment %q does not exist: add it with `starter environments add %s` or check the name",
				ErrNotFound,
				req.Environment,
				req.Environment,
			)
		}
		if err != nil {
			return err
		}
		if !env.Active {
			return fmt.Errorf("%w: environment %s was removed on %s: it cannot queue messages", ErrRefused, env.Name, env.RemovedAt.Format("2006-01-02"))
		}
		if err := spec.ReadyToQueue(env.Profile()); err != nil {
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
		key := domain.Declaration{Environment: env.Name, Type: req.Type, Subject: req.Subject, Period: req.Period}.Key()
		out = Queued{Environment: env.Name, EnvironmentID: env.ID, Type: string(req.Type), Subject: req.Subject, Period: req.Period,
			DeclarationKey: key, AutoSend: env.AutoSend}

		if req.ClientReference != "" {
			found, err := existingByReference(ctx, tx, env.ID, req)
			if err != nil || found != nil {
				if found != nil {
					found.Environment, found.EnvironmentID, found.AutoSend = env.Name, env.ID, env.AutoSend
					found.DeclarationKey = domain.Declaration{
						Environment: env.Name,
						Type:        domain.MessageType(found.Type),
						Subject:     found.Subject,
						Period:      found.Period,
					}.Key()
					out = *found
				}
				return err
			}
		}

		// Versions of one declaration are numbered one at a time.
		if err := lockDeclaration(ctx, tx, key); err != nil {
			return err
		}
		var prev sql.NullInt64
		if err := tx.GetContext(ctx, &prev, `SELECT max(version) FROM messages WHERE declaration_key = $1`, key); err != nil {
			return err
		}
		out.Version = int(prev.Int64) + 1
		var ref any
		if req.ClientReference != "" {
			ref = req.ClientReference
		}
		if err := tx.GetContext(ctx, &out.Number, `
			INSERT INTO messages (direction, environment_id, message_type, subject, period, declaration_key, version,
				client_reference, berichtsoort, identity_type, fiscal, status, env_status, memo, channel, recipient)
			VALUES ($12, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued', 'queued', $11, $13, NULLIF($14, ''))
			RETURNING number`,
			env.ID, req.Type, req.Subject, req.Period, key, out.Version, ref, spec.Berichtsoort, spec.IdentityType, spec.Fiscal, req.Memo,
			domain.DirectionOut, spec.Channel, req.Recipient); err != nil {
			return err
		}
		out.Status = domain.StatusQueued
		if req.payment != nil {
			// The MsgId first: reusing one is refused with the bank's reason, whatever
			// order it names.
			if err := insertPayment(ctx, tx, env.ID, out.Number, *req.payment); err != nil {
				return err
			}
		}
		for _, a := range req.Attachments {
			sum := sha256.Sum256(a.Content)
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO attachments (message_number, file_name, mime_type, size, sha256, content) VALUES ($1, $2, $3, $4, $5, $6)`,
				out.Number, a.FileName, a.MimeType, len(a.Content), sum[:], a.Content); err != nil {
				return err
			}
		}
		// Rule 3, decided here under the declaration's lock (domain.UnsentStatuses): an
		// older version that has not reached Digipoort must never go after this one.
		if err := tx.SelectContext(ctx, &out.Superseded, `
			UPDATE messages SET do_not_send = true
			WHERE declaration_key = $1 AND version < $2 AND NOT do_not_send AND status = ANY($3)
			RETURNING number`, key, out.Version, pq.Array(domain.UnsentStatuses())); err != nil {
			return err
		}
		// After the UPDATE, as a statement of its own: the older versions' rows are ours
		// now, and a delivery another transaction began meanwhile is committed and seen —
		// a correction beside an upload that slipped in is refused, never sent as well.
		if req.payment != nil {
			if err := mayCorrectPayment(ctx, tx, key, req, out.Version); err != nil {
				return err
			}
		}
		num := out.Number
		if err := writeLog(ctx, tx, LogEntry{EnvironmentID: &env.ID, MessageNumber: &num, Step: domain.StepQueue, Level: domain.LevelInfo,
			Description: fmt.Sprintf("%s %s %s version %d queued as message %d", req.Type, req.Subject, req.Period, out.Version, out.Number),
			Memo:        req.Memo}); err != nil {
			return err
		}
		for _, old := range out.Superseded {
			old := old
			if err := writeLog(ctx, tx, LogEntry{EnvironmentID: &env.ID, MessageNumber: &old, Step: domain.StepQueue, Level: domain.LevelInfo,
				Description: fmt.Sprintf("message %d marked do-not-send: version %d (message %d) of the same declaration was queued before "+
					"it was sent", old, out.Version, out.Number)}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// existingByReference returns the message queued earlier under the same client
// reference, or nil. The same reference with other content is a caller's mistake that
// must not pass silently.
func existingByReference(ctx context.Context, tx *sqlx.Tx, envID int64, req QueueRequest) (*Queued, error) {
	var m struct {
		Number  int64  `db:"number"`
		Version int    `db:"version"`
		Key     string `db:"declaration_key"`
		Status  string `db:"status"`
		Type    string `db:"message_type"`
		Subject string `db:"subject"`
		Period  string `db:"period"`
		Memo    string `db:"memo"`
		To      string `db:"recipient"`
	}
	err := tx.GetContext(
		ctx,
		&m,
		`SELECT number, version, status, message_type, subject, period, declaration_key, coalesce(memo, '') AS memo,
		        coalesce(recipient, '') AS recipient
		   FROM messages WHERE environment_id = $1 AND client_reference = $2`,
		envID,
		req.ClientReference,
	)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sums [][]byte
	if err := tx.SelectContext(ctx, &sums, `SELECT sha256 FROM attachments WHERE message_number = $1 ORDER BY id`, m.Number); err != nil {
		return nil, err
	}
	// The memo is content too: a retry that carries another memo is another request.
	same := m.Type == string(req.Type) && m.Subject == req.Subject && m.Period == req.Period && m.Memo == req.Memo &&
		m.To == req.Recipient && len(sums) == len(req.Attachments)
	for i := 0; same && i < len(sums); i++ {
		sum := sha256.Sum256(req.Attachments[i].Content)
		same = bytes.Equal(sums[i], sum[:])
	}
	if !same {
		return nil, fmt.Errorf(
			"%w: client reference %q was used for message %d (%s %s %s) with other content: a queued message cannot be changed; queue the "+
				"new content under a new reference",
			ErrConflict,
			req.ClientReference,
			m.Number,
			m.Type,
			m.Subject,
			m.Period,
		)
	}
	return &Queued{
		Number:   m.Number,
		Version:  m.Version,
		Status:   domain.Status(m.Status),
		Type:     m.Type,
		Subject:  m.Subject,
		Period:   m.Period,
		Existing: true,
	}, nil
}

// Declaration is the queued message as the pipeline starts its workflow.
func (q Queued) Declaration() pipeline.Message {
	return pipeline.Message{Number: q.Number, Direction: domain.DirectionOut, Environment: q.Environment, Type: q.Type, Subject: q.Subject,
		Period: q.Period, Declaration: q.DeclarationKey, Version: q.Version, LatestVersion: q.Version, Status: q.Status, EnvStatus: q.Status}
}

// Attachment is one stored file.
type Attachment struct {
	ID       int64  `db:"id"`
	FileName string `db:"file_name"`
	MimeType string `db:"mime_type"`
	Size     int64  `db:"size"`
	SHA256   []byte `db:"sha256"`
	Content  []byte `db:"content"`
}

// Attachments returns a message's files in the order they were queued.
func (s *Store) Attachments(ctx context.Context, number int64) ([]Attachment, error) {
	var out []Attachment
	if err := s.db.SelectContext(ctx, &out,
		`SELECT id, file_name, mime_type, size, sha256, content FROM attachments WHERE message_number = $1 ORDER BY id`, number); err != nil {
		return nil, fmt.Errorf("read attachments of message %d: %w", number, err)
	}
	return out, nil
}

// mayCorrectPayment decides, under the declaration's lock, whether a payment order may be
// queued as the next version of the order it names (rule 23): only an order of this
// environment exists to be corrected, and only while the bank took none of its versions —
// each is rejected or failed, or never reached the bank (those become do-not-send). A
// version that is at the bank may be paid: a "correction" next to it would pay twice.
// A file with its own MsgId under a subject nobody named is a new order (version 1).
func mayCorrectPayment(ctx context.Context, tx *sqlx.Tx, key string, req QueueRequest, version int) error {
	if version == 1 {
		if req.corrects {
			return fmt.Errorf("%w: there is no payment order %s %s of environment %s to correct: leave subject and period out to queue a new "+
				"order under the file's MsgId", ErrRefused, req.Subject, req.Period, req.Environment)
		}
		return nil
	}
	// A next version, named or not (a new MsgId that happens to be an order's subject):
	// only beside versions the bank did not take.
	var taken []struct {
		Number  int64         `db:"number"`
		Version int           `db:"version"`
		Status  domain.Status `db:"status"`
		Open    bool          `db:"open"`
	}
	if err := tx.SelectContext(ctx, &taken, `
		SELECT m.number, m.version, m.status,
			EXISTS (SELECT 1 FROM deliveries d WHERE d.message_number = m.number AND d.attempt = m.attempt AND `+openDelivery+`) AS open
		FROM messages m WHERE m.declaration_key = $1
		ORDER BY m.version`, key); err != nil {
		return err
	}
	for _, t := range taken {
		switch {
		case t.Open:
			return fmt.Errorf("%w: version %d of payment order %s %s (message %d) has an upload whose outcome is not known yet: it may be at the "+
				"bank; decide it first (`starter show %d` says how), then queue the correction", ErrRefused, t.Version, req.Subject, req.Period, t.Number, t.Number)
		case t.Status.IsUnsent(), t.Status == domain.StatusRejected, t.Status == domain.StatusFailed:
		default:
			return fmt.Errorf("%w: version %d of payment order %s %s (message %d) is %s at the bank and may be paid: a correction is queued only "+
				"for an order the bank rejected. To pay something more, queue a new order (leave subject and period out)", ErrRefused, t.Version,
				req.Subject, req.Period, t.Number, t.Status)
		}
	}
	return nil
}
