package devserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	gmtextproto "github.com/emersion/go-message/textproto"
)

// Overview is everything the server holds, as GET /api/messages returns it.
type Overview struct {
	Mailboxes []MailboxSummary `json:"mailboxes"`
	Outbound  []MessageSummary `json:"outbound"`
}

// MailboxSummary is one local mailbox.
type MailboxSummary struct {
	Address string          `json:"address"`
	Folders []FolderSummary `json:"folders"`
}

// FolderSummary is one folder of a mailbox.
type FolderSummary struct {
	Name     string           `json:"name"`
	Messages []MessageSummary `json:"messages"`
}

// MessageSummary describes a message without its body.
type MessageSummary struct {
	UID         uint32       `json:"uid"`
	From        string       `json:"from"`
	To          []string     `json:"to"`
	Subject     string       `json:"subject"`
	MessageID   string       `json:"message_id"`
	Received    time.Time    `json:"received"`
	Size        int          `json:"size"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is a named part of a message.
type Attachment struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Overview reads every mailbox, folder and the outbound log.
func (s *Server) Overview() Overview {
	ov := Overview{Mailboxes: []MailboxSummary{}, Outbound: []MessageSummary{}}
	for _, addr := range s.Mailboxes() {
		mb := MailboxSummary{Address: addr, Folders: []FolderSummary{}}
		for _, f := range s.Folders(addr) {
			fs := FolderSummary{Name: f, Messages: []MessageSummary{}}
			for _, m := range s.Messages(addr, f) {
				fs.Messages = append(fs.Messages, summary(m))
			}
			mb.Folders = append(mb.Folders, fs)
		}
		ov.Mailboxes = append(ov.Mailboxes, mb)
	}
	for _, m := range s.Outbound() {
		ov.Outbound = append(ov.Outbound, summary(m))
	}
	return ov
}

func summary(m Stored) MessageSummary {
	to := m.To
	if to == nil {
		to = []string{}
	}
	return MessageSummary{
		UID: m.UID, From: m.From, To: to, Subject: m.Subject, MessageID: m.MessageID,
		Received: m.Received, Size: len(m.Raw), Attachments: attachments(m.Raw),
	}
}

// attachments lists the parts that carry a file name, with decoded sizes.
func attachments(raw []byte) []Attachment {
	out := []Attachment{}
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		return out
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			if !message.IsUnknownCharset(err) {
				return out
			}
			continue
		}
		name := partFileName(p.Header)
		if name == "" {
			continue
		}
		n, _ := io.Copy(io.Discard, p.Body)
		ct, _, _ := p.Header.(interface {
			ContentType() (string, map[string]string, error)
		}).ContentType()
		out = append(out, Attachment{Name: name, ContentType: ct, Size: n})
	}
}

func partFileName(h mail.PartHeader) string {
	switch h := h.(type) {
	case *mail.AttachmentHeader:
		if name, err := h.Filename(); err == nil && name != "" {
			return name
		}
		_, params, _ := h.ContentType()
		return params["name"]
	case *mail.InlineHeader:
		if _, params, err := h.ContentDisposition(); err == nil && params["filename"] != "" {
			return params["filename"]
		}
		_, params, _ := h.ContentType()
		return params["name"]
	}
	return ""
}

func (s *Server) webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("GET /message", s.handleMessage)
	mux.HandleFunc("GET /api/messages", s.handleAPIMessages)
	mux.HandleFunc("POST /control/fail-next", s.handleFailNext)
	mux.HandleFunc("POST /control/drop-next", s.handleDropNext)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	return mux
}

type indexPage struct {
	Domain, SMTP, IMAP string
	TLS                bool
	Accepted           int
	Overview
}

func (s *Server) handleIndex(w http.ResponseWriter, _ *http.Request) {
	page := indexPage{
		Domain: s.cfg.Domain, SMTP: s.SMTPAddr(), IMAP: s.IMAPAddr(), TLS: s.cfg.TLS != nil,
		Accepted: s.Accepted(), Overview: s.Overview(),
	}
	s.render(w, indexTemplate, page)
}

func (s *Server) render(w http.ResponseWriter, t *template.Template, data any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		s.log.WithError(err).Error("render web page")
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// findMessage looks a message up by mailbox, folder and UID; an empty
// mailbox means the outbound log.
func (s *Server) findMessage(r *http.Request) (Stored, error) {
	q := r.URL.Query()
	uid, err := strconv.ParseUint(q.Get("uid"), 10, 32)
	if err != nil {
		return Stored{}, fmt.Errorf("uid %q is not a number", q.Get("uid"))
	}
	var list []Stored
	if q.Get("mailbox") == "" {
		list = s.Outbound()
	} else {
		if list, err = s.messages(q.Get("mailbox"), q.Get("folder")); err != nil {
			return Stored{}, err
		}
	}
	for _, m := range list {
		if m.UID == uint32(uid) {
			return m, nil
		}
	}
	return Stored{}, errNotFound
}

var errNotFound = errors.New("no such message: it may have been moved or deleted")

type messagePage struct {
	Mailbox, Folder string
	Message         MessageSummary
	Header          [][2]string
	RawURL          string
}

func (s *Server) handleMessage(w http.ResponseWriter, r *http.Request) {
	m, err := s.findMessage(r)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errNotFound) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	if r.URL.Query().Get("raw") != "" {
		name := fmt.Sprintf("message-%d.eml", m.UID)
		w.Header().Set("Content-Type", "message/rfc822")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		_, _ = w.Write(m.Raw)
		return
	}
	page := messagePage{
		Mailbox: r.URL.Query().Get("mailbox"), Folder: r.URL.Query().Get("folder"),
		Message: summary(m),
	}
	if page.Mailbox == "" {
		page.Folder = "Outbound"
	}
	raw := r.URL.Query()
	raw.Set("raw", "1")
	page.RawURL = "/message?" + raw.Encode()
	if h, err := gmtextproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Raw))); err == nil {
		mh := message.Header{Header: h}
		for f := mh.Fields(); f.Next(); {
			v, err := f.Text()
			if err != nil {
				v = f.Value()
			}
			page.Header = append(page.Header, [2]string{f.Key(), v})
		}
	}
	s.render(w, messageTemplate, page)
}

func (s *Server) handleAPIMessages(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Overview())
}

// FailNextRequest is the body of POST /control/fail-next.
type FailNextRequest struct {
	N        int    `json:"n"`
	Code     int    `json:"code"`
	Enhanced string `json:"enhanced"`
	Text     string `json:"text"`
	Stage    string `json:"stage"`
}

// DropNextRequest is the body of POST /control/drop-next.
type DropNextRequest struct {
	N int `json:"n"`
}

func (s *Server) handleFailNext(w http.ResponseWriter, r *http.Request) {
	var req FailNextRequest
	if err := decodeJSON(r, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f, err := newFailure(req.N, req.Code, req.Enhanced, req.Text, req.Stage)
	if err != nil {
		http.Error(w, "fail-next: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
	s.log.WithFields(map[string]any{"n": req.N, "code": req.Code, "stage": req.Stage}).Info("fail-next set")
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) handleDropNext(w http.ResponseWriter, r *http.Request) {
	var req DropNextRequest
	if err := decodeJSON(r, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.N < 0 {
		http.Error(w, "drop-next: n must be 0 or more", http.StatusBadRequest)
		return
	}
	s.DropNext(req.N)
	s.log.WithField("n", req.N).Info("drop-next set")
	writeJSON(w, http.StatusOK, req)
}

func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("read JSON body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// messagesTable is what the shared "messages" template gets.
type messagesTable struct {
	Mailbox, Folder string
	Messages        []MessageSummary
}

var funcs = template.FuncMap{
	"time": func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") },
	"dict": func(mailbox, folder string, msgs []MessageSummary) messagesTable {
		return messagesTable{mailbox, folder, msgs}
	},
}

var indexTemplate = template.Must(template.New("index").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Koerier dev mail</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.3rem 0 1rem;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f4f4f4}.muted{color:#777}code{font-size:.85rem}
</style></head><body>
<h1>Koerier development mail server</h1>
<p>Domain <code>{{.Domain}}</code> · SMTP <code>{{.SMTP}}</code>{{if .TLS}} (STARTTLS){{end}} ·
IMAP <code>{{.IMAP}}</code>{{if .TLS}} (TLS){{end}} · {{.Accepted}} accepted ·
<a href="/">reload</a> · <a href="/api/messages">JSON</a></p>
{{define "messages"}}{{$mb := .Mailbox}}{{$f := .Folder}}
{{if .Messages}}<table><tr><th>UID</th><th>Received</th><th>From</th><th>To</th><th>Subject</th><th>Message-ID</th><th>Attachments</th></tr>
{{range .Messages}}<tr><td><a href="/message?mailbox={{$mb}}&amp;folder={{$f}}&amp;uid={{.UID}}">{{.UID}}</a></td>
<td>{{time .Received}}</td><td>{{.From}}</td><td>{{range $i, $t := .To}}{{if $i}}, {{end}}{{$t}}{{end}}</td>
<td>{{.Subject}}</td><td><code>{{.MessageID}}</code></td>
<td>{{range .Attachments}}{{.Name}} ({{.Size}} bytes)<br>{{end}}</td></tr>
{{end}}</table>{{else}}<p class="muted">empty</p>{{end}}{{end}}
<h2>Mailboxes</h2>
{{range .Mailboxes}}{{$addr := .Address}}<h3>{{.Address}}</h3>
{{range .Folders}}<h4>{{.Name}}</h4>{{template "messages" (dict $addr .Name .Messages)}}{{end}}
{{else}}<p class="muted">No mailboxes yet: send mail to any address @{{.Domain}} or log in with one.</p>{{end}}
<h2>Outbound (other domains)</h2>
{{template "messages" (dict "" "" .Outbound)}}
</body></html>`))

var messageTemplate = template.Must(template.New("message").Funcs(funcs).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Message.Subject}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
td{font-family:monospace;white-space:pre-wrap;word-break:break-all}
</style></head><body>
<p><a href="/">← all mailboxes</a></p>
<h1>{{.Message.Subject}}</h1>
<p>{{if .Mailbox}}{{.Mailbox}} / {{end}}{{.Folder}} · UID {{.Message.UID}} · {{time .Message.Received}} · {{.Message.Size}} bytes ·
<a href="{{.RawURL}}">download .eml</a></p>
<h2>Attachments</h2>
{{if .Message.Attachments}}<ul>{{range .Message.Attachments}}<li>{{.Name}} ({{.ContentType}}, {{.Size}} bytes)</li>{{end}}</ul>{{else}}<p>none</p>{{end}}
<h2>Header</h2>
<table>{{range .Header}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
</body></html>`))
