package activities

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
	"github.com/sirupsen/logrus"
	"go.temporal.io/sdk/temporal"

	"koerier/domain"
	"koerier/mail"
	"koerier/pipeline"
	"koerier/store"
)

// mailStore is what the e-mail channel needs of Postgres (rule 2 and rule 12 in
// docs/rules.md: e-invoices go out and come in through the environment's own mailbox).
type mailStore interface {
	MailProfile(ctx context.Context, envID int64) (store.MailProfile, error)
	EnvironmentByID(ctx context.Context, id int64) (store.Environment, error)
	Environment(ctx context.Context, name string) (store.Environment, error)
	StoreIncomingMail(ctx context.Context, m store.IncomingMail) (store.IncomingMailResult, error)
	MailDeliveryOf(ctx context.Context, envID int64, aanleverkenmerk string) (store.MailDelivery, error)
}

// mailProfile is the environment's profile as the mail package takes it.
func (a *Activities) mailProfile(ctx context.Context, envID int64) (mail.Profile, error) {
	p, err := a.Store.MailProfile(ctx, envID)
	if err != nil {
		return mail.Profile{}, err
	}
	server := func(s store.MailServer) mail.Server {
		return mail.Server{Host: s.Host, Port: s.Port, Security: mail.Security(s.Security), User: s.User, Password: s.Password}
	}
	return mail.Profile{From: p.From, SMTP: server(p.SMTP), IMAP: server(p.IMAP), Folder: p.Folder, Processed: p.Processed, Sent: p.Sent,
		RootCAs: a.Config.MailRootCAs}, nil
}

// MessageID is the Message-ID an e-invoice is sent with: the delivery's aanleverkenmerk
// (installation prefix, message number, attempt) at the sender's domain, so that a bounce
// or a reply that names it links back to the delivery, and a retried try of the same
// attempt carries the same Message-ID (the Sent folder look-up finds it).
func MessageID(aanleverkenmerk, from string) string {
	domainPart := "koerier.invalid"
	if _, d, ok := strings.Cut(from, "@"); ok && d != "" {
		domainPart = d
	}
	return aanleverkenmerk + "@" + domainPart
}

// deliverMail sends an e-invoice from the environment's own mailbox (rule 2). The
// attempt was recorded by BeginDelivery before anything is written to the server; a
// try that may have reached it (the worker died, the 250 was lost) is looked up in the
// Sent folder by its Message-ID before anything is sent again (rule 11), and where that
// cannot tell, an operator decides.
//
// Final: a permanent SMTP refusal (send_failed, with the server's words); a profile the
// server refuses (wrong password, untrusted certificate) makes the message wait and need
// action, without retrying (a retry storm would lock the mailbox). A temporary refusal
// or a connection lost before the end of the data is retried.
func (a *Activities) deliverMail(ctx context.Context, plan store.DeliveryPlan, log logrus.FieldLogger) (pipeline.DeliverResult, error) {
	res := pipeline.DeliverResult{Attempt: plan.Attempt}
	if plan.Uncertain {
		// A profile that is gone or unreadable cannot look anything up: lookUpMail then
		// leaves the decision to an operator, never to a resend.
		profile, err := a.mailProfile(ctx, plan.EnvironmentID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return res, err
		}
		return a.lookUpMail(ctx, plan, profile, MessageID(plan.Aanleverkenmerk, profile.From), log)
	}
	// BeginDelivery opened this try. Until the data is on its way to the server nothing
	// can have been sent, so every way out before that closes the try: the next one sends
	// afresh instead of looking up mail that never left (rule 22).
	out, profile, envName, trouble, err := a.prepareMail(ctx, plan)
	if err != nil || trouble != "" {
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		if trouble != "" {
			return a.channelTrouble(ctx, plan, envName, trouble)
		}
		return res, err
	}
	raw, err := mail.Compose(out, time.Now())
	if err != nil {
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		return res, final(fmt.Errorf("%w: compose the e-mail of message %d: %v", store.ErrInvalid, plan.Number, err))
	}
	err = mail.Submit(ctx, profile, out, raw)
	var smtpErr *mail.SMTPError
	switch {
	case err == nil:
		if err := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, plan.Aanleverkenmerk, ""); err != nil {
			return res, final(err)
		}
		log.WithFields(logrus.Fields{"message_id": out.MessageID, "to": out.To}).Info("e-invoice sent")
		res.Outcome, res.Kenmerk = pipeline.OutcomeSent, plan.Aanleverkenmerk
		return res, nil
	case errors.Is(err, mail.ErrAuth), errors.Is(err, mail.ErrTLS):
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		return a.channelTrouble(ctx, plan, envName, fmt.Sprintf("the SMTP server of environment %s (%s) refused its e-mail profile: %v. Correct "+
			"the profile (`starter environments set %s …`), then send the message again (`starter send %d`)", envName, profile.SMTP.Host, err,
			envName, plan.Number))
	case errors.As(err, &smtpErr) && smtpErr.Permanent():
		reason := fmt.Sprintf("the mail server refused the e-invoice to %s for good: %s", out.To, smtpErr.Error())
		if rerr := a.Store.RecordSendFailed(ctx, plan.Number, plan.Attempt, reason); rerr != nil {
			return res, final(rerr)
		}
		log.WithField("smtp_code", smtpErr.Code).Warn("e-invoice refused by the mail server")
		res.Outcome, res.Reason = pipeline.OutcomeSendFailed, reason
		return res, nil
	case errors.Is(err, mail.ErrUncertain):
		// The end of the data was written and no answer read: the server may have the
		// invoice. The retry looks it up in the Sent folder before anything is sent again.
		return res, fmt.Errorf("message %d: the mail server may have accepted the e-invoice (Message-ID %s) but did not say so: %w; "+
			"Koerier looks it up before sending again", plan.Number, out.MessageID, err)
	default:
		// Not accepted (a temporary refusal, a connection lost before the end of the
		// data): this try is closed, and the retry sends afresh with the same Message-ID.
		if derr := a.Store.DropUnaccepted(ctx, plan.Number, plan.Attempt, plan.StartedAt); derr != nil {
			return res, derr
		}
		return res, fmt.Errorf("message %d: the e-invoice was not accepted for now: %w", plan.Number, err)
	}
}

// prepareMail reads everything a try needs before the server is spoken to: the
// environment, its profile (trouble says what an operator must do when it has none) and
// the e-mail.
func (a *Activities) prepareMail(ctx context.Context, plan store.DeliveryPlan) (out mail.Outgoing, p mail.Profile, env, trouble string, err error) {
	e, err := a.Store.EnvironmentByID(ctx, plan.EnvironmentID)
	if err != nil {
		return out, p, "", "", final(err)
	}
	p, err = a.mailProfile(ctx, plan.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		return out, p, e.Name, fmt.Sprintf("environment %s has no e-mail profile: give it one with `starter environments set %s --smtp HOST:PORT …` "+
			"(or --local-mail), then send the message again", e.Name, e.Name), nil
	}
	if err != nil {
		return out, p, e.Name, "", err
	}
	atts, err := a.Store.Attachments(ctx, plan.Number)
	if err != nil {
		return out, p, e.Name, "", err
	}
	if len(atts) == 0 {
		return out, p, e.Name, "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("message %d has no invoice to send", plan.Number),
			pipeline.ErrTypeInvalid, nil)
	}
	out, err = invoiceMail(plan, p.From, MessageID(plan.Aanleverkenmerk, p.From), atts[0])
	if err != nil {
		return out, p, e.Name, "", final(fmt.Errorf("%w: message %d: %v", store.ErrInvalid, plan.Number, err))
	}
	return out, p, e.Name, "", nil
}

// channelTrouble makes a message whose environment's profile does not work (e-mail or
// bank) wait and need action once, with what to do: retrying would not mend a password
// or a changed host key.
func (a *Activities) channelTrouble(ctx context.Context, plan store.DeliveryPlan, env, reason string) (pipeline.DeliverResult, error) {
	dedupe := fmt.Sprintf("profile/%d/%d/%s", plan.Number, plan.Attempt, firstWords(reason, 12))
	if err := a.Store.MarkNeedsAction(ctx, plan.Number, reason, dedupe); err != nil {
		return pipeline.DeliverResult{}, final(err)
	}
	a.log().WithFields(logrus.Fields{"message": plan.Number, "environment": env, "channel": plan.Channel}).
		Warn("the environment's profile was refused; the message waits for an operator")
	return pipeline.DeliverResult{Attempt: plan.Attempt, Outcome: pipeline.OutcomeWaiting, Reason: reason}, nil
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}

// lookUpMail decides a try that may have reached the mail server: found in the Sent
// folder, it is adopted as sent; not found while UncertainWait has not passed, it is
// asked again (the server may file it late); after that an operator decides. A Sent
// folder the server does not have (the profile names "Sent", the server keeps "Sent
// Items") is an operator's decision at once: asking again cannot find it.
func (a *Activities) lookUpMail(ctx context.Context, plan store.DeliveryPlan, p mail.Profile, messageID string,
	log logrus.FieldLogger) (pipeline.DeliverResult, error) {
	a.metrics().UncertainLookedUp(plan.Channel)
	res := pipeline.DeliverResult{Attempt: plan.Attempt}
	found := false
	var noSent error
	if p.HasMailbox() {
		box, err := mail.Open(ctx, p)
		if err != nil {
			return res, fmt.Errorf("message %d: open the mailbox to look up Message-ID %s: %w", plan.Number, messageID, err)
		}
		found, err = box.SentHas(ctx, messageID)
		_ = box.Close()
		switch {
		case errors.Is(err, mail.ErrNoFolder):
			noSent = err
		case err != nil:
			return res, fmt.Errorf("message %d: look up Message-ID %s in %s: %w", plan.Number, messageID, p.Sent, err)
		}
	}
	if found {
		log.WithField("message_id", messageID).Info("interrupted e-mail delivery found in the Sent folder; not sending again")
		if err := a.Store.RecordDelivered(ctx, plan.Number, plan.Attempt, plan.Aanleverkenmerk, "found in the Sent folder by its Message-ID"); err != nil {
			return res, final(err)
		}
		res.Outcome, res.Kenmerk, res.Recovered = pipeline.OutcomeSent, plan.Aanleverkenmerk, true
		return res, nil
	}
	if p.HasMailbox() && noSent == nil && plan.OpenFor < a.Config.UncertainWait {
		return res, fmt.Errorf("message %d: an earlier try (Message-ID %s) may have reached the mail server and its Sent folder does not show it yet; "+
			"Koerier asks again until %s have passed since it started, then asks an operator", plan.Number, messageID, a.Config.UncertainWait)
	}
	where := "the environment's profile has no mailbox to look in"
	switch {
	case noSent != nil:
		where = fmt.Sprintf("its Sent folder could not be looked in (%v); give the profile the folder the server keeps sent mail in "+
			"(`starter environments set ENV --sent-folder NAME`)", noSent)
	case p.HasMailbox():
		where = fmt.Sprintf("its Sent folder (%s) does not show Message-ID %s", p.Sent, messageID)
	}
	undecided := fmt.Sprintf("%s%s%d (Message-ID %s, started %s) has no known outcome: %s. Koerier does not send it again on its own (the "+
		"customer could get the invoice twice). Decide: `starter delivery adopt %d %s` if it arrived, or `starter delivery redeliver %d` if it did not",
		domain.DeliveryTrouble, store.UndecidedDelivery, plan.Number, messageID, plan.StartedAt.UTC().Format(time.RFC3339), where,
		plan.Number, plan.Aanleverkenmerk, plan.Number)
	dedupe := fmt.Sprintf("uncertain-mail/%d/%d", plan.Number, plan.Attempt)
	if err := a.Store.MarkNeedsAction(ctx, plan.Number, undecided, dedupe); err != nil {
		return res, final(err)
	}
	res.Outcome, res.Reason = pipeline.OutcomeUncertain, undecided
	return res, nil
}

// invoiceMail is the e-mail of an e-invoice: the UBL, and its PDF rendition where the
// UBL embeds one, with the invoice number in the subject.
func invoiceMail(plan store.DeliveryPlan, from, messageID string, ubl store.Attachment) (mail.Outgoing, error) {
	inv, err := domain.ReadEInvoice(ubl.Content)
	if err != nil {
		return mail.Outgoing{}, err
	}
	kind := "Factuur"
	if inv.Kind == "CreditNote" {
		kind = "Creditnota"
	}
	out := mail.Outgoing{
		MessageID: messageID, From: from, To: plan.Recipient,
		Subject: fmt.Sprintf("%s %s van %s", kind, inv.Number, inv.SupplierName),
		Text: fmt.Sprintf("%s %s van %s, %s %s.\r\n\r\nDe factuur is bijgevoegd als UBL-bestand (%s).\r\n", kind, inv.Number, inv.SupplierName,
			inv.Currency, inv.Payable, ubl.FileName),
		Attachments: []mail.Attachment{{Name: ubl.FileName, MimeType: "application/xml", Content: ubl.Content}},
	}
	if inv.PDF != nil {
		name := inv.PDF.Name
		if name == "" {
			name = strings.TrimSuffix(ubl.FileName, ".xml") + ".pdf"
		}
		out.Attachments = append(out.Attachments, mail.Attachment{Name: name, MimeType: "application/pdf", Content: inv.PDF.Content})
	}
	if out.To == "" {
		return mail.Outgoing{}, errors.New("the invoice has no recipient address")
	}
	return out, nil
}

// DispatchMail tells the workflows of an environment's due e-invoices to send: the
// environment's own e-mail send/receive (MailSendReceiveWorkflow).
func (a *Activities) DispatchMail(ctx context.Context, env string) (int, error) {
	return a.dispatchChannel(ctx, env, domain.ChannelEmail, "mail send/receive "+env)
}

// dispatchChannel tells the workflows of an environment's due messages on a channel of
// its own (e-mail, bank) to send.
func (a *Activities) dispatchChannel(ctx context.Context, env string, ch domain.Channel, by string) (int, error) {
	e, err := a.Store.Environment(ctx, env)
	if err != nil {
		return 0, final(err)
	}
	due, err := a.Store.DueOnChannel(ctx, e.ID, ch, 1000)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	sig := pipeline.SendSignal{By: by}
	return len(due), a.signalAll(ctx, due, func(int64) (string, any) { return pipeline.SignalSend, sig }, nil)
}

// mailBatch bounds the messages one ReceiveMail reads (and holds in memory: a mail is
// at most a few tens of MiB); the next run reads the rest.
const mailBatch = 20

// ReceiveMail reads an environment's incoming folder (rule 22): a bounce or automatic
// reply that names one of that environment's Message-IDs becomes a reply of that
// e-invoice (a permanent failure: failed and needs action, highest status wins); every
// UBL attachment becomes a received e-invoice of the environment (a duplicate is
// recognised and logged); a message without a usable UBL is kept as an unknown incoming
// message. What was stored is moved to the processed folder — after it is stored, so a
// crash in between reads it again and stores nothing twice. A mail that cannot be stored
// as it came (too large, a value the database refuses) is kept as an unknown message
// with its headers and the reason, and moved, so that one mail never stops the mailbox.
// Replies are told to their workflows here and, should that fail, by the next send/
// receive's sweep (the stored reply waits, unsignalled).
//
// Final: the mailbox refuses the profile (login, certificate): one F line a day, the
// run fails with the environment's name, no retries.
func (a *Activities) ReceiveMail(ctx context.Context, env string) (pipeline.MailReceiveResult, error) {
	defer keepAlive(ctx)()
	res := pipeline.MailReceiveResult{Environment: env}
	e, err := a.Store.Environment(ctx, env)
	if err != nil {
		return res, final(err)
	}
	p, err := a.mailProfile(ctx, e.ID)
	if err != nil {
		return res, final(err)
	}
	if !p.HasMailbox() {
		return res, nil // a send-only profile: its schedule sends, there is nothing to read
	}
	box, err := mail.Open(ctx, p)
	if errors.Is(err, mail.ErrAuth) || errors.Is(err, mail.ErrTLS) {
		return res, a.profileRefused(ctx, e, fmt.Sprintf("the mailbox of environment %s (%s) refused its e-mail profile: %v. Correct it with "+
			"`starter environments set %s …`; mail is not read until then", env, p.IMAP.Host, err, env))
	}
	if err != nil {
		return res, fmt.Errorf("environment %s: open the mailbox: %w", env, err)
	}
	defer box.Close()
	fetched, err := box.Fetch(ctx, mailBatch)
	if err != nil {
		return res, fmt.Errorf("environment %s: read %s: %w", env, p.Folder, err)
	}
	res.Read = len(fetched)
	var done []uint32
	var replied []int64
	var failed error
	for _, f := range fetched {
		numbers, err := a.receiveOne(ctx, e, p, f, &res)
		if err != nil && permanentStoreError(err) {
			err = a.keepUnstorable(ctx, e, f, err, &res)
		}
		if err != nil {
			failed = fmt.Errorf("environment %s: mail %d: %w", env, f.UID, err)
			break // what was stored so far is moved below; the rest is read again
		}
		replied = append(replied, numbers...)
		done = append(done, f.UID)
	}
	if len(done) > 0 {
		if err := box.MoveProcessed(ctx, done); err != nil {
			return res, errors.Join(failed, fmt.Errorf("environment %s: move %d read messages to %s: %w", env, len(done), p.Processed, err))
		}
		res.Moved = len(done)
	}
	res.More = failed == nil && len(fetched) == mailBatch
	return res, errors.Join(failed, a.signalReplies(ctx, replied), a.startUnknownReplies(ctx, res.UnknownNumbers))
}

// permanentStoreError reports whether storing a mail failed in a way a retry cannot
// change: a rule refused it, or the database refused a value (a constraint, a value too
// long for an index). Connection trouble is not one.
func permanentStoreError(err error) bool {
	if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrRefused) {
		return true
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "22", "23", "54": // data exception, integrity constraint, program limit (index row size)
			return true
		}
	}
	return false
}

// maxKeptHeader bounds what is kept of a mail that could not be stored as it came.
const maxKeptHeader = 64 << 10

// keepUnstorable keeps a mail that could not be stored as it came as an unknown incoming
// message with its headers and why; the whole mail stays in the processed folder.
func (a *Activities) keepUnstorable(ctx context.Context, e store.Environment, f mail.Fetched, cause error,
	res *pipeline.MailReceiveResult) error {
	head := f.Raw
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+2]
	}
	if len(head) > maxKeptHeader {
		head = head[:maxKeptHeader]
	}
	sum := sha256.Sum256(f.Raw)
	stored, err := a.Store.StoreIncomingMail(ctx, store.IncomingMail{EnvironmentID: e.ID, MessageID: "unstorable-" + hex.EncodeToString(sum[:16]),
		Raw: head, Unknown: fmt.Sprintf("this mail (%d bytes) could not be stored as it came: %v. Its headers are kept here; the whole mail is in "+
			"the mailbox's processed folder. Look at it there, then resolve this message", len(f.Raw), cause)})
	if err != nil {
		return fmt.Errorf("keep the mail that could not be stored (%v): %w", cause, err)
	}
	if stored.Unknown != 0 {
		res.Unknown++
		res.UnknownNumbers = append(res.UnknownNumbers, stored.Unknown)
	}
	return nil
}

// receiveOne stores one mail and returns the outgoing messages it brought replies for.
func (a *Activities) receiveOne(ctx context.Context, env store.Environment, p mail.Profile, f mail.Fetched,
	res *pipeline.MailReceiveResult) ([]int64, error) {
	if len(f.Raw) > domain.MaxAttachmentSize {
		return nil, fmt.Errorf("%w: the mail is larger than the %d bytes a stored file may be", store.ErrInvalid, domain.MaxAttachmentSize)
	}
	log := a.log().WithFields(logrus.Fields{"environment": env.Name, "uid": f.UID})
	parsed, perr := mail.Parse(f.Raw)
	in := store.IncomingMail{EnvironmentID: env.ID, Raw: f.Raw}
	if perr == nil {
		in.MessageID, in.From, in.Subject = parsed.MessageID, parsed.From, parsed.Subject
		numbers, linked, err := a.mailReply(ctx, env, p, parsed, f)
		if err != nil || linked {
			if linked {
				res.Replies++
			}
			return numbers, err
		}
		for _, att := range parsed.Attachments {
			if !looksXML(att) {
				continue
			}
			inv, err := domain.ReadEInvoice(att.Content)
			if err != nil {
				log.WithField("attachment", att.Name).WithError(err).Info("attachment is not a usable UBL invoice")
				continue
			}
			in.Invoices = append(in.Invoices, store.ReceivedInvoice{FileName: att.Name, Content: att.Content, Invoice: inv})
		}
	}
	switch {
	case perr != nil:
		in.Unknown = fmt.Sprintf("the message could not be read as e-mail: %v", perr)
	case len(in.Invoices) == 0:
		in.Unknown = fmt.Sprintf("no UBL invoice in the message %q from %s (%d attachments): look at it "+
			"(`starter attachment save <number>`) and resolve it", parsed.Subject, parsed.From, len(parsed.Attachments))
	}
	stored, err := a.Store.StoreIncomingMail(ctx, in)
	if err != nil {
		return nil, err
	}
	res.Invoices += len(stored.Stored)
	res.Duplicates += len(stored.Duplicates)
	if stored.Unknown != 0 {
		res.Unknown++
		res.UnknownNumbers = append(res.UnknownNumbers, stored.Unknown)
	}
	for _, d := range stored.Duplicates {
		log.WithField("duplicate", d).Info("duplicate e-invoice not stored again")
	}
	return nil, nil
}

func looksXML(a mail.Attachment) bool {
	t := strings.ToLower(a.MimeType)
	return strings.Contains(t, "xml") || strings.HasSuffix(strings.ToLower(a.Name), ".xml")
}

// mailReply links a bounce or automatic reply to the e-invoice whose Message-ID it
// names — the whole Message-ID, the environment's own sender domain included, and only
// an e-invoice of the mailbox's own environment (MailDeliveryOf), so that a mail to one
// environment never touches another's invoice. The mail is kept as that message's reply
// document, and a permanent failure is applied as its status (failed, needs action). A
// reply to a try whose outcome was not recorded yet is proof that it was sent: the try is
// adopted first. linked is false when it names none of the environment's deliveries (it
// is then an ordinary incoming mail).
func (a *Activities) mailReply(ctx context.Context, env store.Environment, p mail.Profile, parsed mail.Parsed,
	f mail.Fetched) (numbers []int64, linked bool, err error) {
	if parsed.DSN == nil && !parsed.AutoReply {
		return nil, false, nil
	}
	_, ownDomain, _ := strings.Cut(p.From, "@")
	var d store.MailDelivery
	kenmerk := ""
	for _, id := range parsed.RefersTo() {
		local, dom, ok := strings.Cut(id, "@")
		if !ok || local == "" || !strings.EqualFold(dom, ownDomain) {
			continue
		}
		d, err = a.Store.MailDeliveryOf(ctx, env.ID, local)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		kenmerk = local
		break
	}
	if kenmerk == "" {
		return nil, false, nil
	}
	if d.Open && d.Current {
		if err := a.Store.RecordDelivered(ctx, d.Number, d.Attempt, kenmerk, "a bounce or reply names its Message-ID"); err != nil {
			return nil, false, err
		}
	}
	id := parsed.MessageID
	if id == "" {
		sum := sha256.Sum256(f.Raw)
		id = "sha256:" + hex.EncodeToString(sum[:16])
	}
	name, what := "automatic-reply.eml", "automatic reply"
	if parsed.DSN != nil {
		name, what = "bounce.eml", "delivery status notification"
	}
	in, err := a.Store.StoreIncoming(ctx, []store.IncomingDoc{{PickupKenmerk: fmt.Sprintf("mail:%d:%s", env.ID, id), Berichtkenmerk: "reply",
		Aanleverkenmerk: kenmerk, Subject: d.Subject, FileName: name, MimeType: "message/rfc822", Content: f.Raw, Aangeleverd: f.InternalDate, Note: what}})
	if err != nil {
		return nil, false, err
	}
	for n := range in.Linked {
		numbers = append(numbers, n)
	}
	if parsed.DSN == nil {
		return numbers, true, nil
	}
	failed, ok := parsed.DSN.Failed()
	if !ok {
		return numbers, true, nil // delayed or delivered: kept as a document, no status
	}
	at := f.InternalDate
	if at.IsZero() {
		at = time.Now()
	}
	reply := store.Reply{Kenmerk: kenmerk, Code: "DSN " + failed.Status, Status: domain.StatusFailed, NeedsAction: true, OccurredAt: at,
		Description: fmt.Sprintf("the e-invoice could not be delivered to %s: %s", failed.Recipient, firstNonEmpty(failed.Diagnostic, failed.Action)),
		ErrorCode:   failed.Status, ErrorDescription: failed.Diagnostic,
		Advice: "check the customer's address, correct it and queue the invoice again (or restore it to send it once more)"}
	applied, err := a.Store.ApplyReplies(ctx, []store.Reply{reply})
	if err != nil {
		return nil, false, err
	}
	for _, r := range applied.New {
		numbers = append(numbers, r.MessageNumber)
	}
	return numbers, true, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// MailDelivered closes an e-invoice that no bounce named within the bounce window: the
// receiving mail server took it (SMTP 250) and nothing came back, which is as far as
// e-mail can tell. It is applied as a reply (accepted) stamped with the workflow's time,
// so a retry stores it once, and a bounce that still comes later wins (failed ranks
// higher).
func (a *Activities) MailDelivered(ctx context.Context, req pipeline.MailDeliveredRequest) error {
	_, err := a.Store.ApplyReplies(ctx, []store.Reply{{Kenmerk: req.Kenmerk, Code: MailNoBounceCode, Status: domain.StatusAccepted,
		OccurredAt:  req.At,
		Description: fmt.Sprintf("delivered: the receiving mail server accepted the e-invoice and no bounce came back within %s", req.Window)}})
	if err != nil {
		return fmt.Errorf("message %d: record delivery without bounce: %w", req.Number, err)
	}
	return nil
}

// MailNoBounceCode is the code of the reply that closes an e-invoice without bounce.
const MailNoBounceCode = "MAIL-NO-BOUNCE"
