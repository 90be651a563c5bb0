package mail

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func invoiceWithPDF() Outgoing {
	pdf := make([]byte, 3000) // every byte value, so base64 has something to get wrong
	for i := range pdf {
		pdf[i] = byte(i * 7)
	}
	return Outgoing{
		MessageID: "KOE-1000042@koerier.example",
		From:      "Omgeving Één <omgeving@koerier.test>",
		To:        "crediteuren@klant.example",
		Subject:   "Factuur F2024-042 – € 1.210,00",
		Text:      "Geachte heer, mevrouw,\n\nBijgaand factuur F2024-042 (UBL en PDF).\n",
		Attachments: []Attachment{
			{Name: "F2024-042.xml", MimeType: "application/xml", Content: []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\">\n  <cbc:Note>Één € regel</cbc:Note>\n</Invoice>\n")},
			{Name: "F2024-042.pdf", MimeType: "application/pdf", Content: pdf},
		},
	}
}

func TestComposeParseRoundTrip(t *testing.T) {
	o := invoiceWithPDF()
	now := time.Date(2024, 5, 2, 8, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	raw, err := Compose(o, now)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageID != o.MessageID || p.From != "omgeving@koerier.test" || p.Subject != o.Subject {
		t.Errorf("headers = %q %q %q, want %q %q %q", p.MessageID, p.From, p.Subject, o.MessageID, "omgeving@koerier.test", o.Subject)
	}
	if len(p.Attachments) != 2 {
		t.Fatalf("%d attachments, want 2", len(p.Attachments))
	}
	for i, a := range p.Attachments {
		w := o.Attachments[i]
		if a.Name != w.Name || a.MimeType != w.MimeType || !bytes.Equal(a.Content, w.Content) {
			t.Errorf("attachment %d = %s %s %d bytes, want %s %s %d bytes, identical", i, a.Name, a.MimeType, len(a.Content), w.Name, w.MimeType, len(w.Content))
		}
	}
	if p.DSN != nil || p.AutoReply {
		t.Errorf("an invoice is no DSN (%v) and no auto-reply (%v)", p.DSN, p.AutoReply)
	}

	again, err := Compose(o, now)
	if err != nil || !bytes.Equal(again, raw) {
		t.Errorf("Compose is not deterministic for the same input and time")
	}
	later, _ := Compose(o, now.Add(time.Hour))
	if diff := diffLines(raw, later); len(diff) != 1 || !strings.HasPrefix(diff[0], "Date: ") {
		t.Errorf("composing an hour later changed %q, want only the Date line", diff)
	}
	if !bytes.Contains(raw, []byte("\r\nMIME-Version: 1.0\r\n")) && !bytes.Contains(raw, []byte("\r\nMime-Version: 1.0\r\n")) {
		t.Errorf("no MIME-Version header:\n%s", raw)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Fatalf("line longer than RFC 5322 allows: %d", len(line))
		}
	}
}

func diffLines(a, b []byte) []string {
	al, bl := strings.Split(string(a), "\r\n"), strings.Split(string(b), "\r\n")
	var out []string
	for i := range max(len(al), len(bl)) {
		if i >= len(al) || i >= len(bl) || al[i] != bl[i] {
			if i < len(al) {
				out = append(out, al[i])
			}
		}
	}
	return out
}

func TestComposeRejectsBadInput(t *testing.T) {
	o := invoiceWithPDF()
	for name, mutate := range map[string]func(*Outgoing){
		"brackets in Message-ID": func(o *Outgoing) { o.MessageID = "<KOE-1@x>" },
		"no Message-ID":          func(o *Outgoing) { o.MessageID = "" },
		"bad To":                 func(o *Outgoing) { o.To = "nobody" },
		"header injection":       func(o *Outgoing) { o.To = "a@b.example\r\nBcc: c@d.example" },
		"nameless attachment":    func(o *Outgoing) { o.Attachments = []Attachment{{Content: []byte("x")}} },
	} {
		bad := o
		mutate(&bad)
		if _, err := Compose(bad, time.Now()); err == nil {
			t.Errorf("%s: Compose accepted it", name)
		}
	}
}

func TestComposeDSNParses(t *testing.T) {
	o := invoiceWithPDF()
	original, err := Compose(o, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bounce, err := ComposeDSN("mx.klant.example", original, o.To, "5.1.1", "550 5.1.1 <crediteuren@klant.example>: Recipient address rejected", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(bounce)
	if err != nil {
		t.Fatal(err)
	}
	if p.DSN == nil {
		t.Fatalf("not recognised as a DSN:\n%s", bounce)
	}
	if p.DSN.OriginalMessageID != o.MessageID {
		t.Errorf("original Message-ID = %q, want %q", p.DSN.OriginalMessageID, o.MessageID)
	}
	if len(p.InReplyTo)+len(p.References) != 0 {
		t.Fatalf("the bounce links by In-Reply-To/References, so the test would not show the headers part is read")
	}
	r, ok := p.DSN.Failed()
	if !ok || r.Status != "5.1.1" || r.Recipient != o.To || r.Action != "failed" || !strings.Contains(r.Diagnostic, "Recipient address rejected") {
		t.Errorf("Failed() = %+v, %v; want failed 5.1.1 for %s with the diagnostic", r, ok, o.To)
	}
	if len(p.Attachments) != 0 {
		t.Errorf("the bounce's returned headers were taken as %d attachments", len(p.Attachments))
	}
	if !slices.Contains(p.RefersTo(), o.MessageID) {
		t.Errorf("RefersTo() = %v, want it to name %s", p.RefersTo(), o.MessageID)
	}
	if p.From != "MAILER-DAEMON@mx.klant.example" {
		t.Errorf("From = %q", p.From)
	}

	delayed, err := ComposeDSN("mx.klant.example", original, o.To, "4.2.2", "452 mailbox full", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pd, _ := Parse(delayed)
	if _, failed := pd.DSN.Failed(); failed || pd.DSN.Recipients[0].Action != "delayed" {
		t.Errorf("a 4.2.2 DSN: recipients %+v, want delayed and not failed", pd.DSN.Recipients)
	}
	if _, err := ComposeDSN("mx", original, o.To, "five", "", time.Now()); err == nil {
		t.Error("ComposeDSN accepted status \"five\"")
	}
}

// A bounce as Postfix sends it: the whole original returned as message/rfc822,
// with the UBL inside. The returned invoice is not an incoming attachment.
const postfixBounce = "Return-Path: <>\r\n" +
	"Message-ID: <20240502083001.ABC123@mx.klant.example>\r\n" +
	"From: MAILER-DAEMON@mx.klant.example (Mail Delivery System)\r\n" +
	"To: omgeving@koerier.test\r\n" +
	"Subject: Undelivered Mail Returned to Sender\r\n" +
	"Auto-Submitted: auto-replied\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1\"\r\n" +
	"\r\n" +
	"This is a MIME-encapsulated message.\r\n" +
	"\r\n" +
	"--B1\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
	"I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n" +
	"--B1\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n" +
	"Reporting-MTA: dns; mx.klant.example\r\nX-Postfix-Queue-ID: ABC123\r\n\r\n" +
	"Final-Recipient: rfc822; ok@klant.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n" +
	"Final-Recipient: RFC822; crediteuren@klant.example\r\nOriginal-Recipient: rfc822;crediteuren@klant.example\r\n" +
	"ACTION: Failed\r\nStatus: 5.1.1 (user unknown)\r\nRemote-MTA: dns; mail.klant.example\r\n" +
	"Diagnostic-Code: smtp; 550 5.1.1 <crediteuren@klant.example>: Recipient\r\n    address rejected: User unknown\r\n\r\n" +
	"--B1\r\nContent-Description: Undelivered Message\r\nContent-Type: message/rfc822\r\n\r\n" +
	"Message-ID: <KOE-1000007@koerier.example>\r\nFrom: omgeving@koerier.test\r\nSubject: Factuur 7\r\n" +
	"Content-Type: multipart/mixed; boundary=\"B2\"\r\n\r\n" +
	"--B2\r\nContent-Type: application/xml\r\nContent-Disposition: attachment; filename=\"F7.xml\"\r\n\r\n<Invoice/>\r\n--B2--\r\n" +
	"\r\n--B1--\r\n"

func TestParsePostfixBounce(t *testing.T) {
	p, err := Parse([]byte(postfixBounce))
	if err != nil {
		t.Fatal(err)
	}
	if p.DSN == nil || p.DSN.OriginalMessageID != "KOE-1000007@koerier.example" {
		t.Fatalf("DSN = %+v, want the original KOE-1000007@koerier.example", p.DSN)
	}
	if len(p.DSN.Recipients) != 2 {
		t.Fatalf("recipients = %+v, want 2", p.DSN.Recipients)
	}
	r, ok := p.DSN.Failed()
	if !ok || r.Recipient != "crediteuren@klant.example" || r.Status != "5.1.1" ||
		r.Diagnostic != "550 5.1.1 <crediteuren@klant.example>: Recipient address rejected: User unknown" {
		t.Errorf("Failed() = %+v, %v", r, ok)
	}
	if len(p.Attachments) != 0 {
		t.Errorf("the returned invoice was taken as an incoming attachment: %+v", p.Attachments)
	}
}

func TestParseDSNWithoutHeadersFallsBackToInReplyTo(t *testing.T) {
	raw := "Message-ID: <b1@mx.example>\r\nFrom: <MAILER-DAEMON@mx.example>\r\nIn-Reply-To: <KOE-1000008@koerier.example>\r\n" +
		"Content-Type: multipart/report; report-type=\"delivery-status\"; boundary=zz\r\n\r\n" +
		"--zz\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n" +
		"Final-Recipient: rfc822; x@klant.example\r\nAction: failed\r\nStatus: 5.7.1\r\n\r\n--zz--\r\n"
	p, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.DSN == nil || p.DSN.OriginalMessageID != "KOE-1000008@koerier.example" {
		t.Fatalf("DSN = %+v, want the original from In-Reply-To", p.DSN)
	}
	if r, ok := p.DSN.Failed(); !ok || r.Status != "5.7.1" {
		t.Errorf("Failed() = %+v, %v", r, ok)
	}
}

func TestParseAutoReply(t *testing.T) {
	const reply = "Message-ID: <ooo-1@klant.example>\r\nFrom: Jan <jan@klant.example>\r\nTo: omgeving@koerier.test\r\n" +
		"Subject: Afwezig: Factuur F2024-042\r\nIn-Reply-To: <KOE-1000042@koerier.example>\r\n" +
		"References: <older@koerier.example> <KOE-1000042@koerier.example>\r\n" +
		"%s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nIk ben afwezig tot maandag.\r\n"
	for header, want := range map[string]bool{
		"Auto-Submitted: auto-replied":             true,
		"Auto-Submitted: auto-generated; owner=x":  true,
		"X-Autoreply: yes":                         true,
		"X-Autorespond: Out of office":             true,
		"Precedence: auto_reply":                   true,
		"Auto-Submitted: no":                       false,
		"Auto-Submitted: No (a person wrote this)": false,
		"Precedence: bulk":                         false,
	} {
		p, err := Parse([]byte(strings.Replace(reply, "%s", header, 1)))
		if err != nil {
			t.Fatal(err)
		}
		if p.AutoReply != want {
			t.Errorf("%s: AutoReply = %v, want %v", header, p.AutoReply, want)
		}
		if want && !slices.Equal(p.RefersTo(), []string{"KOE-1000042@koerier.example", "older@koerier.example"}) {
			t.Errorf("%s: RefersTo() = %v", header, p.RefersTo())
		}
		if p.DSN != nil || len(p.Attachments) != 0 {
			t.Errorf("%s: an out-of-office reply has no DSN and no attachments", header)
		}
	}
}

func TestParsePlainMail(t *testing.T) {
	raw := "Message-ID: <plain-1@leverancier.example>\r\nFrom: =?utf-8?q?Bj=C3=B6rn?= <bjorn@leverancier.example>\r\n" +
		"Subject: =?utf-8?q?Vraag_over_factuur_=E2=82=AC?=\r\n\r\nHallo, zonder bijlage.\r\n"
	p, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.MessageID != "plain-1@leverancier.example" || p.From != "bjorn@leverancier.example" || p.Subject != "Vraag over factuur €" {
		t.Errorf("headers = %q %q %q", p.MessageID, p.From, p.Subject)
	}
	if len(p.Attachments) != 0 || p.DSN != nil || p.AutoReply || len(p.RefersTo()) != 0 {
		t.Errorf("plain mail parsed as %+v", p)
	}
}

func TestParseIncomingInvoiceParts(t *testing.T) {
	// Two UBL files as other mail programs send them: one text/xml without a
	// file name, quoted-printable and in ISO-8859-1 (kept byte for byte, the
	// XML says its own encoding); one base64 with an RFC 2231 file name and
	// spaces in the base64. Plus a signature image with a file name, and a
	// text body that is not an attachment.
	iso := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Invoice><Note>Caf\xe9</Note></Invoice>"
	raw := "Message-ID: <two@leverancier.example>\r\nFrom: facturen@leverancier.example\r\n" +
		"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n" +
		"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n" +
		"--inner\r\nContent-Type: text/plain\r\n\r\nZie bijlagen.\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>Zie bijlagen.</p>\r\n--inner--\r\n" +
		"--outer\r\nContent-Type: text/xml; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"<?xml version=3D\"1.0\" encoding=3D\"ISO-8859-1\"?><Invoice><Note>Caf=E9</Note></Invoi=\r\nce>\r\n" +
		"--outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename*=UTF-8''factuur%20%E2%82%AC.xml\r\n\r\n" +
		"PEludm9p Y2Uv\r\nPg==\r\n" +
		"--outer\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=logo.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw==\r\n" +
		"--outer--\r\n"
	p, err := Parse([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Attachments) != 3 {
		t.Fatalf("attachments = %+v, want 3", p.Attachments)
	}
	if a := p.Attachments[0]; a.Name != "attachment-1.xml" || a.MimeType != "text/xml" || string(a.Content) != iso {
		t.Errorf("QP text/xml = %s %s %q, want the ISO-8859-1 bytes unchanged", a.Name, a.MimeType, a.Content)
	}
	if a := p.Attachments[1]; a.Name != "factuur €.xml" || string(a.Content) != "<Invoice/>" {
		t.Errorf("base64 part = %q %q", a.Name, a.Content)
	}
	if a := p.Attachments[2]; a.Name != "logo.png" || a.MimeType != "image/png" {
		t.Errorf("named image = %q %q", a.Name, a.MimeType)
	}
}

func TestParseRejectsNonMessage(t *testing.T) {
	for _, raw := range []string{"", "no header separator and no colon"} {
		if _, err := Parse([]byte(raw)); err == nil && raw != "" {
			t.Errorf("Parse(%q) gave no error", raw)
		}
	}
	// Truncated multipart: what was read is returned, with an error.
	o := invoiceWithPDF()
	full, _ := Compose(o, time.Now())
	p, err := Parse(full[:len(full)*2/3])
	if err == nil {
		t.Error("a truncated message parsed without error")
	}
	if p.MessageID != o.MessageID {
		t.Errorf("headers of a truncated message lost: %q", p.MessageID)
	}
}

func FuzzParse(f *testing.F) {
	o := invoiceWithPDF()
	o.Attachments[1].Content = o.Attachments[1].Content[:100]
	invoice, _ := Compose(o, time.Unix(0, 0))
	bounce, _ := ComposeDSN("mx.example", invoice, o.To, "5.1.1", "550 no", time.Unix(0, 0))
	for _, seed := range [][]byte{invoice, bounce, []byte(postfixBounce), []byte("Subject: x\r\n\r\nbody"),
		[]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, _ := Parse(raw)
		_ = p.RefersTo()
		if p.DSN != nil {
			p.DSN.Failed()
		}
	})
}
