package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
)

// Outgoing is one message to submit.
type Outgoing struct {
	MessageID   string // without angle brackets, e.g. "KOE-1000001@koerier.example"
	From, To    string
	Subject     string
	Text        string       // body text
	Attachments []Attachment // the UBL (application/xml) and optional PDF
}

// Attachment is a file carried by a message, decoded.
type Attachment struct {
	Name     string
	MimeType string
	Content  []byte
}

// Compose builds the RFC 5322 message: Message-ID, Date, From, To, Subject,
// MIME-Version, and a multipart/mixed body with the text and the attachments
// (base64). The output depends only on o and now, so a message composed again
// for a retry is the same message.
func Compose(o Outgoing, now time.Time) ([]byte, error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("compose message %s: %w", o.MessageID, err)
	}
	from, _ := gomail.ParseAddress(o.From)
	to, _ := gomail.ParseAddress(o.To)

	// go-message writes header fields in the reverse order of setting them.
	var h gomail.Header
	// A fixed boundary (go-message picks a random one) keeps the bytes
	// reproducible; derived from the content, it cannot occur in it.
	h.SetContentType("multipart/mixed", map[string]string{"boundary": o.boundary()})
	h.Set("MIME-Version", "1.0")
	h.SetSubject(o.Subject)
	h.SetAddressList("To", []*gomail.Address{to})
	h.SetAddressList("From", []*gomail.Address{from})
	h.SetDate(now)
	h.SetMessageID(o.MessageID)

	var buf bytes.Buffer
	mw, err := message.CreateWriter(&buf, h.Header)
	if err != nil {
		return nil, fmt.Errorf("compose message %s: %w", o.MessageID, err)
	}
	var th gomail.InlineHeader
	th.Set("Content-Transfer-Encoding", "quoted-printable")
	th.Set("Content-Disposition", "inline")
	th.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	if err := writePart(mw, th.Header, []byte(o.Text)); err != nil {
		return nil, fmt.Errorf("compose message %s: text: %w", o.MessageID, err)
	}
	for _, a := range o.Attachments {
		var ah gomail.AttachmentHeader
		ah.Set("Content-Transfer-Encoding", "base64")
		ah.SetFilename(a.Name)
		ah.SetContentType(a.mimeType(), map[string]string{"name": a.Name})
		if err := writePart(mw, ah.Header, a.Content); err != nil {
			return nil, fmt.Errorf("compose message %s: attachment %s: %w", o.MessageID, a.Name, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose message %s: %w", o.MessageID, err)
	}
	return buf.Bytes(), nil
}

func writePart(mw *message.Writer, h message.Header, body []byte) error {
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(body); err != nil {
		return err
	}
	return pw.Close()
}

func (o Outgoing) check() error {
	var errs []error
	switch {
	case o.MessageID == "":
		errs = append(errs, errors.New("the Message-ID is empty"))
	case strings.ContainsAny(o.MessageID, "<> \t\r\n") || !strings.Contains(o.MessageID, "@"):
		errs = append(errs, fmt.Errorf("the Message-ID %q must look like left@right, without angle brackets or spaces", o.MessageID))
	}
	if _, err := gomail.ParseAddress(o.From); err != nil {
		errs = append(errs, fmt.Errorf("the From address %q is not an e-mail address: %v", o.From, err))
	}
	if _, err := gomail.ParseAddress(o.To); err != nil {
		errs = append(errs, fmt.Errorf("the To address %q is not an e-mail address: %v", o.To, err))
	}
	for i, a := range o.Attachments {
		if strings.TrimSpace(a.Name) == "" || strings.ContainsAny(a.Name, "\r\n") {
			errs = append(errs, fmt.Errorf("attachment %d has no usable file name", i+1))
		}
	}
	return errors.Join(errs...)
}

func (a Attachment) mimeType() string {
	if a.MimeType == "" {
		return "application/octet-stream"
	}
	return a.MimeType
}

func (o Outgoing) boundary() string {
	sum := sha256.New()
	for _, s := range []string{o.MessageID, o.From, o.To, o.Subject, o.Text} {
		io.WriteString(sum, s)
		sum.Write([]byte{0})
	}
	for _, a := range o.Attachments {
		io.WriteString(sum, a.Name)
		sum.Write([]byte{0})
		io.WriteString(sum, a.MimeType)
		sum.Write([]byte{0})
		sum.Write(a.Content)
		sum.Write([]byte{0})
	}
	return "=_koerier_" + hex.EncodeToString(sum.Sum(nil))[:40]
}
