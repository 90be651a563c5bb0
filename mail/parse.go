package mail

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Parsed is what Koerier needs from a received message.
type Parsed struct {
	MessageID, From, Subject string
	InReplyTo, References    []string
	Attachments              []Attachment
	DSN                      *DSN // RFC 3464 multipart/report; report-type=delivery-status
	AutoReply                bool // Auto-Submitted other than "no" (RFC 3834), X-Autoreply/X-Autorespond, or Precedence auto_reply
}

// RefersTo lists every Message-ID the message names (DSN original, In-Reply-To,
// References), without brackets, each once, most direct first.
func (p Parsed) RefersTo() []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if p.DSN != nil {
		add(p.DSN.OriginalMessageID)
	}
	for _, id := range p.InReplyTo {
		add(id)
	}
	for i := len(p.References) - 1; i >= 0; i-- {
		add(p.References[i])
	}
	return out
}

// maxDepth bounds multipart nesting; real mail nests a few levels, hostile
// mail would otherwise recurse without end.
const maxDepth = 16

// Parse reads a received message: its headers, every attachment (any part
// with a file name, or of type application/xml, text/xml or application/pdf;
// transfer encoding removed, bytes otherwise untouched — no charset
// conversion, since an XML file declares its own encoding), and whether it is
// a delivery status notification or an automatic reply.
//
// A malformed message gives what could be read together with an error.
func Parse(raw []byte) (Parsed, error) {
	br := bufio.NewReader(bytes.NewReader(raw))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		return Parsed{}, fmt.Errorf("parse message: header: %w", err)
	}
	h := gomail.Header{Header: message.Header{Header: th}}
	p := Parsed{
		MessageID:  first(msgIDs(h.Get("Message-Id"))),
		From:       fromAddress(h),
		InReplyTo:  msgIDs(h.Get("In-Reply-To")),
		References: msgIDs(h.Get("References")),
		AutoReply:  isAutoReply(h),
	}
	p.Subject, _ = h.Subject() // on a bad encoding the raw text is kept

	w := walker{p: &p}
	err = w.walk(h.Header, br, 0, false)
	if p.DSN != nil && p.DSN.OriginalMessageID == "" {
		// Not every MTA returns the original headers; a reply link is the
		// next best evidence of what bounced.
		if len(p.InReplyTo) > 0 {
			p.DSN.OriginalMessageID = p.InReplyTo[0]
		} else if len(p.References) > 0 {
			p.DSN.OriginalMessageID = p.References[len(p.References)-1]
		}
	}
	if err != nil {
		if p.MessageID != "" {
			return p, fmt.Errorf("parse message %s: %w", p.MessageID, err)
		}
		return p, fmt.Errorf("parse message: %w", err)
	}
	return p, nil
}

type walker struct {
	p       *Parsed
	unnamed int
}

func (w *walker) walk(h message.Header, body io.Reader, depth int, inReport bool) error {
	mt, params, err := h.ContentType()
	if err != nil || mt == "" {
		mt, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mt, "multipart/") {
		return w.walkMultipart(mt, params, body, depth)
	}
	decoded := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)

	if inReport {
		switch mt {
		case "message/delivery-status", "message/global-delivery-status":
			b, err := io.ReadAll(decoded)
			w.p.DSN.Recipients = append(w.p.DSN.Recipients, parseDeliveryStatus(b)...)
			return err
		case "message/rfc822", "message/global", "text/rfc822-headers":
			oh, err := textproto.ReadHeader(bufio.NewReader(decoded))
			if id := first(msgIDs(oh.Get("Message-Id"))); id != "" && w.p.DSN.OriginalMessageID == "" {
				w.p.DSN.OriginalMessageID = id
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("returned message headers: %w", err)
			}
			return nil
		}
	}

	name := filename(h)
	// A returned or forwarded message is not a file the sender meant to send.
	nested := strings.HasPrefix(mt, "message/") || mt == "text/rfc822-headers"
	invoiceType := mt == "application/xml" || mt == "text/xml" || mt == "application/pdf"
	if (name == "" || nested) && !invoiceType {
		_, err := io.Copy(io.Discard, decoded)
		return err
	}
	content, err := io.ReadAll(decoded)
	if err != nil {
		return fmt.Errorf("attachment %q: %w", name, err)
	}
	if name == "" {
		w.unnamed++
		name = fmt.Sprintf("attachment-%d%s", w.unnamed, extension(mt))
	}
	w.p.Attachments = append(w.p.Attachments, Attachment{Name: name, MimeType: mt, Content: content})
	return nil
}

func (w *walker) walkMultipart(mt string, params map[string]string, body io.Reader, depth int) error {
	boundary := params["boundary"]
	if boundary == "" {
		return fmt.Errorf("%s without a boundary", mt)
	}
	if depth >= maxDepth {
		return fmt.Errorf("parts nested more than %d deep", maxDepth)
	}
	report := mt == "multipart/report" && strings.EqualFold(params["report-type"], "delivery-status") && w.p.DSN == nil
	if report {
		w.p.DSN = &DSN{}
	}
	mr := textproto.NewMultipartReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", mt, err)
		}
		if err := w.walk(message.Header{Header: part.Header}, part, depth+1, report); err != nil {
			return err
		}
	}
}

// decodeTransfer undoes base64 and quoted-printable; anything else (7bit,
// 8bit, binary, unknown) is passed through as it is.
func decodeTransfer(enc string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// skipSpace drops the white space mail software puts into base64 (line
// breaks, and in the wild also spaces and tabs) that the decoder rejects.
type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(b []byte) (int, error) {
	for {
		n, err := s.r.Read(b)
		j := 0
		for _, c := range b[:n] {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				b[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

func filename(h message.Header) string {
	ah := gomail.AttachmentHeader{Header: h}
	name, _ := ah.Filename()
	if dec, err := new(mime.WordDecoder).DecodeHeader(name); err == nil {
		name = dec
	}
	return strings.TrimSpace(name)
}

func extension(mt string) string {
	switch mt {
	case "application/xml", "text/xml":
		return ".xml"
	case "application/pdf":
		return ".pdf"
	}
	return ""
}

func fromAddress(h gomail.Header) string {
	if l, err := h.AddressList("From"); err == nil && len(l) > 0 {
		return l[0].Address
	}
	return strings.TrimSpace(h.Get("From"))
}

// msgIDs reads a list of message identifiers leniently: real mail carries
// identifiers a strict RFC 5322 parser rejects, and a missed link to an
// invoice costs more than an odd identifier.
func msgIDs(v string) []string {
	var out []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i+1:], '>')
		if j < 0 {
			break
		}
		if id := strings.TrimSpace(v[i+1 : i+1+j]); id != "" {
			out = append(out, id)
		}
		v = v[i+1+j+1:]
	}
	if out == nil {
		if v = strings.TrimSpace(v); v != "" && !strings.ContainsAny(v, " \t<>") {
			out = append(out, v)
		}
	}
	return out
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

func isAutoReply(h gomail.Header) bool {
	if v := headerToken(h.Get("Auto-Submitted")); v != "" && v != "no" {
		return true
	}
	if h.Get("X-Autoreply") != "" || h.Get("X-Autorespond") != "" {
		return true
	}
	return headerToken(h.Get("Precedence")) == "auto_reply"
}

// headerToken is the lower-cased value before any parameters or comment.
func headerToken(v string) string {
	if i := strings.IndexAny(v, ";("); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}
