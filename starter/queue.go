package main

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"koerier/domain"
	"koerier/internal/config"
	"koerier/internal/service"
	"koerier/store"
)

func newQueueCmd() *cobra.Command {
	var req store.QueueRequest
	var typ, mimeType string
	var files []string
	var asJSON bool
	cmd := &cobra.Command{
		Use: "queue --env E --type T --subject S --period P --file F | queue --env E --type einvoice --file F [--to ADDRESS] | " +
			"queue --env E --type payment --file F [--subject S --period P]",
		Short: "Queue a message for delivery (it cannot be withdrawn afterwards)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Type = domain.MessageType(strings.ToLower(typ))
			if err := checkQueueFlags(cmd, req.Type); err != nil {
				return err
			}
			for i, f := range files {
				content, err := readFile(f)
				if err != nil {
					return err
				}
				mt := mimeType
				if mt == "" || i > 0 {
					mt = guessMime(f, content)
				}
				req.Attachments = append(req.Attachments, domain.Attachment{FileName: filepath.Base(f), MimeType: mt, Content: content})
			}
			a, err := newApp(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.close()
			q, err := a.store.Queue(cmd.Context(), req)
			if err != nil {
				return documentRefusal(req.Type, err)
			}
			if q.Existing {
				// Nothing new was stored; its workflow was started the first time.
			} else if err := startDeclaration(cmd, a, q); err != nil {
				// The message is stored and cannot be withdrawn: it is not lost.
				fmt.Fprintf(stderr, "koerier: message %d is queued, but its workflow could not be started now (%v); the next send/receive starts it\n", q.Number, err)
			}
			if asJSON {
				return printJSON(
					cmd.OutOrStdout(),
					map[string]any{"number": q.Number, "version": q.Version, "status": q.Status, "existing": q.Existing, "superseded": q.Superseded},
				)
			}
			if q.Existing {
				fmt.Fprintf(
					cmd.OutOrStdout(), "already queued under reference %q: message %d, version %d, %s\n", req.ClientReference, q.Number, q.Version,
					q.Status,
				)
				return nil
			}
			switch req.Type {
			case domain.TypeEInvoice:
				fmt.Fprintf(cmd.OutOrStdout(), "queued: message %d, e-invoice %s (issued %s), version %d, %s\n", q.Number, q.Subject, q.Period, q.Version,
					q.Status)
			case domain.TypePayment:
				fmt.Fprintf(cmd.OutOrStdout(), "queued: message %d, payment order %s %s, version %d, %s; `starter bank send-receive --env %s` "+
					"sends it now, `starter show %d` shows its transactions\n", q.Number, q.Subject, q.Period, q.Version, q.Status, req.Environment,
					q.Number)
			default:
				fmt.Fprintf(cmd.OutOrStdout(), "queued: message %d, version %d, %s\n", q.Number, q.Version, q.Status)
			}
			for _, old := range q.Superseded {
				fmt.Fprintf(cmd.OutOrStdout(), "message %d (an older version) is now do-not-send\n", old)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Environment, "env", "", "environment that queues the message (required)")
	f.StringVar(&typ, "type", "", "message type: btw, obsup, icp, ib, vpb, loonaangifte, kvk, einvoice, payment (required)")
	f.StringVar(&req.Subject, "subject", "", "who the declaration is about: fiscal number, loonheffingennummer or KvK number "+
		"(required; an e-invoice is queued under its own number, a payment order under its MsgId unless it corrects the order of this subject)")
	f.StringVar(&req.Period, "period", "", "the period declared, e.g. 2026-10, 2026-Q3, 2026 (required; for an e-invoice its month of issue; "+
		"for a payment order the month of its execution date unless it corrects the order of this period)")
	f.StringArrayVar(&files, "file", nil, "the declaration (XBRL; for einvoice the UBL Invoice or CreditNote; for payment the pain.001); "+
		"repeat for attachments (required)")
	f.StringVar(&req.Recipient, "to", "", "einvoice only: the address it is sent to, instead of the customer's in the invoice")
	f.StringVar(&mimeType, "mime", "", "mime type of the first file (default: from its name and content)")
	f.StringVar(&req.ClientReference, "ref", "", "client reference: queueing again with the same reference returns the first message")
	f.StringVar(&req.Memo, "memo", "", "memo kept with the message")
	f.BoolVar(&asJSON, "json", false, "print {\"number\", \"version\", \"status\"} as JSON")
	for _, r := range []string{"env", "type", "file"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

// checkQueueFlags asks for subject and period as cobra asks for a required flag, except
// for an e-invoice, which takes them from the invoice, and a payment order, which takes
// them from its file unless it corrects an earlier order: then both name that order.
func checkQueueFlags(cmd *cobra.Command, typ domain.MessageType) error {
	switch typ {
	case domain.TypeEInvoice:
		return nil
	case domain.TypePayment:
		if cmd.Flags().Changed("to") {
			return errors.New("--to is for e-invoices (--type einvoice); a payment order goes to the environment's bank")
		}
		if cmd.Flags().Changed("subject") != cmd.Flags().Changed("period") {
			return errors.New("a payment order takes its subject (MsgId) and period (month of execution) from the file; give both --subject " +
				"and --period only to queue a corrected file as the next version of an earlier order (its subject and period, as " +
				"`starter show` prints them), or neither")
		}
		return nil
	}
	var missing []string
	for _, name := range []string{"period", "subject"} {
		if !cmd.Flags().Changed(name) {
			missing = append(missing, strconv.Quote(name))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("required flag(s) %s not set", strings.Join(missing, ", "))
	}
	if cmd.Flags().Changed("to") {
		return fmt.Errorf("--to is for e-invoices (--type einvoice); a %s message goes through Digipoort, not to an address", typ)
	}
	return nil
}

// documentRefusal spells out a failed check of an e-invoice or payment order, one rule a
// line, so that the sender sees every fault at once; other errors (a MsgId used before,
// an environment without a bank profile) pass unchanged.
func documentRefusal(typ domain.MessageType, err error) error {
	type fault struct{ rule, message string }
	var faults []fault
	var walk func(error)
	walk = func(e error) {
		switch f := e.(type) {
		case *domain.EInvoiceError:
			faults = append(faults, fault{f.Rule, f.Message})
			return
		case *domain.PaymentError:
			faults = append(faults, fault{f.Rule, f.Message})
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				walk(inner)
			}
		case interface{ Unwrap() error }:
			if inner := u.Unwrap(); inner != nil {
				walk(inner)
			}
		}
	}
	walk(err)
	if len(faults) == 0 {
		return err
	}
	what, fix := "the e-invoice", "fix the document"
	if typ == domain.TypePayment {
		what, fix = "the payment order", "fix the file"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is not queued: it fails %d check(s); %s and queue it again", what, len(faults), fix)
	for _, f := range faults {
		fmt.Fprintf(&b, "\n  rule %s: %s", f.rule, f.message)
	}
	return errors.New(b.String())
}

// readFile reads one file to queue. Its size is checked before it is read: a file
// over Digipoort's limit is refused without filling the operator's memory, and a
// device or pipe (which has no size and may never end) is not read at all.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): queue the declaration from a file", name, info.Mode().Type())
	}
	if info.Size() > domain.MaxAttachmentSize {
		return nil, tooLarge(name, info.Size())
	}
	// The file may grow between the stat and the read: read no more than the limit allows.
	content, err := io.ReadAll(io.LimitReader(f, domain.MaxAttachmentSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(content) > domain.MaxAttachmentSize {
		return nil, tooLarge(name, int64(len(content)))
	}
	return content, nil
}

func tooLarge(name string, size int64) error {
	return fmt.Errorf("%s is %d bytes (%.1f MiB), over Digipoort's limit of %d bytes (20 MiB) per file, so it was not read: "+
		"Digipoort cannot take it; check that it is the right file", name, size, float64(size)/(1<<20), domain.MaxAttachmentSize)
}

func guessMime(name string, content []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".xbrl", ".xml":
		return "application/xml"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	if len(content) > 0 && content[0] == '<' {
		return "application/xml"
	}
	return "application/octet-stream"
}

// startDeclaration starts the workflow of a freshly queued message.
func startDeclaration(cmd *cobra.Command, a *app, q store.Queued) error {
	if err := a.dial(cmd.Context()); err != nil {
		return err
	}
	return service.Starter(a.cfg, a.tc).Start(cmd.Context(), q.Declaration())
}

// typeJSON is one type in `starter types --json`.
type typeJSON struct {
	Type         domain.MessageType `json:"type"`
	Description  string             `json:"description"`
	Channel      domain.Channel     `json:"channel"`
	Berichtsoort string             `json:"berichtsoort"`
	IdentityType string             `json:"identity_type,omitempty"`
	Subject      string             `json:"subject"`
	Number       string             `json:"number,omitempty"`
	FirstFile    string             `json:"first_file"`
	Attachments  bool               `json:"attachments"`
}

// identityJSON is `starter types --type T --subject S --json`.
type identityJSON struct {
	Type                     domain.MessageType `json:"type"`
	Berichtsoort             string             `json:"berichtsoort"`
	Subject                  string             `json:"subject"`
	StoredSubject            string             `json:"stored_subject"`
	IdentiteitBelanghebbende identiteit         `json:"identiteitBelanghebbende"`
}

// identiteit is identiteitBelanghebbende as the aanleveren request carries it.
type identiteit struct {
	XMLName xml.Name `json:"-" xml:"identiteitBelanghebbende"`
	Nummer  string   `json:"nummer" xml:"nummer"`
	Type    string   `json:"type" xml:"type"`
}

func newTypesCmd() *cobra.Command {
	var typ, subject string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "types [--type T [--subject S]] [--json]",
		Short: "What each message type is sent as: berichtsoort, identity type, how the subject becomes the number, which files",
		Long: `Prints, per message type and with the settings of this installation (KOERIER_BERICHTSOORTEN,
KOERIER_IDENTITY_TYPES, KOERIER_BIJLAGEN), what queue accepts and what is sent to Digipoort.
With --type and --subject it checks the subject as queue would and prints the exact
identiteitBelanghebbende a message about it is sent with. It needs neither Postgres nor Temporal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.FromEnv()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if subject != "" {
				if typ == "" {
					return errors.New("--subject needs --type: the type decides the subject's form and identity type")
				}
				return printIdentity(out, cfg.Catalog, domain.MessageType(strings.ToLower(typ)), subject, asJSON)
			}
			specs := cfg.Catalog.Types()
			if typ != "" {
				spec, err := cfg.Catalog.Lookup(domain.MessageType(strings.ToLower(typ)))
				if err != nil {
					return err
				}
				specs = []domain.TypeSpec{spec}
			}
			rows := make([]typeJSON, 0, len(specs))
			for _, s := range specs {
				r := typeJSON{Type: s.Type, Description: s.Description, Channel: s.Channel, Berichtsoort: s.Berichtsoort, Subject: s.Subject.Expected(),
					FirstFile: s.Document.Describe(), Attachments: s.Attachments}
				if s.Channel == domain.ChannelDigipoort {
					r.IdentityType, r.Number = s.IdentityType, s.HowNumber()
				}
				rows = append(rows, r)
			}
			if asJSON {
				return printJSON(out, rows)
			}
			for i, r := range rows {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printType(out, r)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "one message type")
	cmd.Flags().StringVar(&subject, "subject", "", "a subject: print the identiteitBelanghebbende a message of --type about it is sent with")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printType(w io.Writer, r typeJSON) {
	fmt.Fprintf(w, "%s — %s\n", r.Type, r.Description)
	switch r.Channel {
	case domain.ChannelEmail:
		fmt.Fprintf(w, "  channel        %s: sent from the environment's own e-mail profile, not queued at the service\n", r.Channel)
		return
	case domain.ChannelBank:
		fmt.Fprintf(w, "  channel        %s: uploaded to the environment's own bank over SFTP (its bank profile); subject and period are "+
			"the file's MsgId and month of execution\n", r.Channel)
		return
	}
	soort := r.Berichtsoort
	if soort == "" {
		soort = fmt.Sprintf("(not configured: set KOERIER_BERICHTSOORTEN=%s=<the name Logius gave you>)", r.Type)
	}
	attachments := fmt.Sprintf("none: the process is not known to take berichtBijlagen (KOERIER_BIJLAGEN=%s=yes if Logius confirmed it does)", r.Type)
	if r.Attachments {
		attachments = "further files are sent as berichtBijlagen"
	}
	w2 := table(w)
	fmt.Fprintf(w2, "  berichtsoort\t%s\n", soort)
	fmt.Fprintf(w2, "  identity type\t%s\n", r.IdentityType)
	fmt.Fprintf(w2, "  subject\t%s\n", r.Subject)
	fmt.Fprintf(w2, "  number\t%s\n", r.Number)
	fmt.Fprintf(w2, "  first file\t%s\n", r.FirstFile)
	fmt.Fprintf(w2, "  attachments\t%s\n", attachments)
	_ = w2.Flush()
}

func printIdentity(w io.Writer, cat domain.Catalog, typ domain.MessageType, subject string, asJSON bool) error {
	spec, err := cat.Lookup(typ)
	if err != nil {
		return err
	}
	if spec.Channel != domain.ChannelDigipoort {
		return fmt.Errorf("message type %s is not sent through Digipoort: it has no identiteitBelanghebbende", typ)
	}
	stored, err := spec.NormalizeSubject(subject)
	if err != nil {
		return err
	}
	nummer, idType, err := spec.Identity(stored)
	if err != nil {
		return err
	}
	out := identityJSON{Type: typ, Berichtsoort: spec.Berichtsoort, Subject: subject, StoredSubject: stored,
		IdentiteitBelanghebbende: identiteit{Nummer: nummer, Type: idType}}
	if asJSON {
		return printJSON(w, out)
	}
	fragment, err := xml.Marshal(out.IdentiteitBelanghebbende)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "type %s, berichtsoort %s\n", typ, orDash(spec.Berichtsoort))
	fmt.Fprintf(w, "subject %q is stored as %s\n", subject, stored)
	fmt.Fprintf(w, "number: %s\n", spec.HowNumber())
	fmt.Fprintf(w, "%s\n", fragment)
	return nil
}
