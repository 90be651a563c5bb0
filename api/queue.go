package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sirupsen/logrus"

	"koerier/domain"
	"koerier/store"
)

// queueAnswer is the answer to a queue request, and to every replay of it.
type queueAnswer struct {
	Number    int64         `json:"number"`
	Version   int           `json:"version"`
	Status    domain.Status `json:"status"`
	DoNotSend bool          `json:"do_not_send"`
}

// requestError is a request the API refuses before anything reaches the store.
type requestError struct {
	status             int
	typ, title, detail string
}

func badRequest(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, ProblemBadRequest, "Bad request", fmt.Sprintf(format, args...)}
}

func tooLarge(format string, args ...any) *requestError {
	return &requestError{http.StatusRequestEntityTooLarge, ProblemTooLarge, "Request too large", fmt.Sprintf(format, args...)}
}

func (e *requestError) write(w http.ResponseWriter, r *http.Request) {
	if e.status == http.StatusRequestEntityTooLarge {
		// The rest of the body is not read: the connection cannot carry another request.
		w.Header().Set("Connection", "close")
	}
	writeProblem(w, r, e.status, e.typ, e.title, e.detail)
}

func (s *Server) queue(w http.ResponseWriter, r *http.Request) {
	env := environmentOf(r)
	key := r.Header.Get(headerIdempotencyKey)
	if len(r.Header.Values(headerIdempotencyKey)) > 1 {
		badRequest("send one Idempotency-Key header, not several").write(w, r)
		return
	}
	if key != "" && !validKey(key) {
		badRequest("the Idempotency-Key must be 1 to %d visible ASCII characters (a UUID is a good choice)", domain.MaxClientRefLen).write(w, r)
		return
	}
	cost := s.uploadCost(r)
	if !s.uploads.TryAcquire(cost) {
		w.Header().Set("Retry-After", "5")
		writeProblem(w, r, http.StatusServiceUnavailable, ProblemUnavailable, "Service busy",
			"this instance is taking in as many uploads as its memory allows: retry in a few seconds (with the same Idempotency-Key, "+
				"a message is never queued twice)")
		return
	}
	defer s.uploads.Release(cost)
	req, rerr := s.readQueueRequest(w, r)
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	req.Environment, req.ClientReference = env.Name, key
	q, err := s.Store.Queue(r.Context(), req)
	var check *domain.EInvoiceError
	var payCheck *domain.PaymentError
	switch {
	// The failed checks of a document go before ErrInvalid, which the store wraps them
	// in: the client gets the rule by name.
	case errors.As(err, &check):
		writeProblemDoc(w, r, Problem{Type: ProblemInvalidEInvoice, Title: "E-invoice not queued", Status: http.StatusUnprocessableEntity,
			Detail: checkDetail(err, check, check.Message), Rule: check.Rule})
		return
	case errors.As(err, &payCheck):
		writeProblemDoc(w, r, Problem{Type: ProblemInvalidPayment, Title: "Payment order not queued", Status: http.StatusUnprocessableEntity,
			Detail: checkDetail(err, payCheck, payCheck.Message), Rule: payCheck.Rule})
		return
	case reusedMsgID(err):
		// The file is sound, but the bank would refuse it as a duplicate (DUPL): a conflict
		// with the order queued before, not a fault of the file.
		writeProblem(w, r, http.StatusConflict, ProblemDuplicateMsgID, "MsgId used before",
			withoutSentinel(err)+"; to correct a payment order, queue the corrected file under a new MsgId with the subject and period "+
				"of the order it corrects: it becomes that order's next version")
		return
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, r, http.StatusConflict, ProblemConflict, "Idempotency-Key used with other content",
			withoutSentinel(err)+" (over the API the client reference is the Idempotency-Key: send new content with a new key)")
		return
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrRefused), errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, http.StatusUnprocessableEntity, ProblemInvalid, "Message not queued", withoutSentinel(err))
		return
	case err != nil:
		s.unavailable(w, r, "queue", err)
		return
	}
	if q.Existing {
		w.Header().Set(headerReplayed, "true")
	} else {
		// The message is stored and cannot be withdrawn; a workflow that does not start
		// now is started by the next send/receive, so this is logged, not answered. The
		// client may have gone meanwhile: the start must not be cancelled with it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), temporalTimeout)
		if err := s.Workflows.Start(ctx, q.Declaration()); err != nil {
			s.Log.WithFields(logrus.Fields{"request_id": w.Header().Get(headerRequestID), "message": q.Number}).WithError(err).
				Warn("message queued, but its workflow could not be started now; the next send/receive starts it")
		}
		cancel()
	}
	w.Header().Set("Location", messagePath(q.Number))
	// What the first request answered, also on a replay: a new message is always queued,
	// version of its own, and never do-not-send (only older versions are marked).
	writeJSON(w, http.StatusCreated, queueAnswer{Number: q.Number, Version: q.Version, Status: domain.StatusQueued})
}

// checkDetail is the failed check's message; when more checks failed, the others
// follow with their rules, so that one answer names everything to correct. first is
// the check errors.As found in err, message its text without the rule.
func checkDetail(err, first error, message string) string {
	var others []string
	var walk func(error)
	walk = func(e error) {
		switch e.(type) {
		case *domain.EInvoiceError, *domain.PaymentError:
			if e != first {
				others = append(others, e.Error())
			}
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if len(others) == 0 {
		return message
	}
	return message + "; also " + strings.Join(others, "; ")
}

// reusedMsgID tells store.Queue's refusal of a payment file whose MsgId the environment
// used before from its other refusals. The store says so only in its text ("MsgId X was
// used by message N …", store/payments.go); TestQueuePaymentOverTheAPI fails if that
// text changes.
func reusedMsgID(err error) bool {
	if !errors.Is(err, store.ErrRefused) {
		return false
	}
	msg := withoutSentinel(err)
	return strings.HasPrefix(msg, "MsgId ") && strings.Contains(msg, " was used by message ")
}

func messagePath(number int64) string { return "/v1/messages/" + strconv.FormatInt(number, 10) }

func validKey(k string) bool {
	if len(k) > domain.MaxClientRefLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// withoutSentinel is a store error as the detail of a problem: the store's sentinel
// ("invalid input: …") is what the status code already says.
func withoutSentinel(err error) string {
	msg := err.Error()
	for _, s := range []error{store.ErrInvalid, store.ErrRefused, store.ErrNotFound, store.ErrConflict} {
		msg = strings.TrimPrefix(msg, s.Error()+": ")
	}
	return msg
}

// readQueueRequest reads a queue request's body, multipart or JSON, within the limits.
func (s *Server) readQueueRequest(w http.ResponseWriter, r *http.Request) (store.QueueRequest, *requestError) {
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mediaType != "multipart/form-data" && mediaType != "application/json") {
		w.Header().Set("Accept-Post", "multipart/form-data, application/json")
		got := r.Header.Get("Content-Type")
		if got == "" {
			got = "none"
		}
		return store.QueueRequest{}, &requestError{http.StatusUnsupportedMediaType, ProblemMediaType, "Unsupported media type",
			fmt.Sprintf("the Content-Type is %s: send multipart/form-data (fields type, subject, period, memo, to and file parts, "+
				"as curl -F does) or application/json (with the document base64-encoded)", got)}
	}
	if mediaType == "multipart/form-data" {
		// Refused before a byte is read when the client says how much is coming.
		if r.ContentLength > s.Limits.MaxRequest {
			return store.QueueRequest{}, s.requestTooLarge()
		}
		r.Body = http.MaxBytesReader(unwrap(w), r.Body, s.Limits.MaxRequest)
		return s.readMultipart(r, params["boundary"])
	}
	limit := s.jsonLimit()
	if r.ContentLength > limit {
		return store.QueueRequest{}, s.requestTooLarge()
	}
	r.Body = http.MaxBytesReader(unwrap(w), r.Body, limit)
	return s.readJSON(r)
}

// unwrap is net/http's own ResponseWriter under the request log's: MaxBytesReader tells
// only that one to close the connection once the cap is hit.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// jsonLimit is the JSON body's cap: base64 makes files a third larger.
// uploadCost is what a queue request may make the instance hold, reserved before its
// body is read: what the client declares (Content-Length), or the cap when it does not
// say (chunked), times what its encoding costs to decode.
func (s *Server) uploadCost(r *http.Request) int64 {
	limit, factor := s.Limits.MaxRequest, int64(1)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		limit, factor = s.jsonLimit(), jsonMemoryFactor
	}
	n := r.ContentLength
	if n <= 0 || n > limit {
		n = limit // a request over the cap is refused at once; it holds nothing long
	}
	return n * factor
}

func (s *Server) jsonLimit() int64 { return s.Limits.MaxRequest/3*4 + maxField }

func (s *Server) requestTooLarge() *requestError {
	return tooLarge("the request is over the limit of %s per queue request (and %s per file): queue fewer or smaller files",
		mib(s.Limits.MaxRequest), mib(s.Limits.MaxFile))
}

func (s *Server) fileTooLarge(name string) *requestError {
	return tooLarge("file %s is over Digipoort's limit of %s (%d bytes) per file, so it was not read: Digipoort cannot take it; "+
		"check that it is the right file", name, mib(s.Limits.MaxFile), s.Limits.MaxFile)
}

func mib(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// readError says what went wrong reading the body: over the cap, or malformed.
func (s *Server) readError(err error, what string) *requestError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return s.requestTooLarge()
	}
	return badRequest("the %s could not be read: %v; send a complete, well-formed body", what, err)
}

// readMultipart streams the parts: each is read only as far as its limit, so a file
// over 20 MiB is refused at its 20 MiB + 1st byte, and nothing is spooled to disk.
func (s *Server) readMultipart(r *http.Request, boundary string) (store.QueueRequest, *requestError) {
	var req store.QueueRequest
	if boundary == "" {
		return req, badRequest("the multipart/form-data Content-Type has no boundary parameter; let the HTTP client build the body (curl -F)")
	}
	mr := multipart.NewReader(r.Body, boundary)
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF { // only the bare io.EOF is the closing delimiter; a wrapped one is a body cut short
			break
		}
		if err != nil {
			return req, s.readError(err, "multipart body")
		}
		name := part.FormName()
		switch name {
		case "type", "subject", "period", "memo", "to":
			if seen[name] {
				return req, badRequest("the field %s is given twice: send it once", name)
			}
			seen[name] = true
			v, rerr := s.readPart(part, maxField, func() *requestError {
				return tooLarge("the field %s is over %d bytes: it cannot be valid", name, maxField)
			})
			if rerr != nil {
				return req, rerr
			}
			switch name {
			case "type":
				req.Type = domain.MessageType(strings.ToLower(strings.TrimSpace(string(v))))
			case "subject":
				req.Subject = string(v)
			case "period":
				req.Period = string(v)
			case "memo":
				req.Memo = string(v)
			case "to":
				req.Recipient = strings.TrimSpace(string(v))
			}
		case "file":
			if len(req.Attachments) == maxFiles {
				return req, tooLarge("the message has more than %d files: queue the declaration with at most %d attachments", maxFiles, maxFiles-1)
			}
			fileName := part.FileName()
			if fileName == "" {
				return req, badRequest("a file part has no filename: send each file as a file (curl -F file=@path)")
			}
			content, rerr := s.readPart(part, s.Limits.MaxFile, func() *requestError { return s.fileTooLarge(fileName) })
			if rerr != nil {
				return req, rerr
			}
			req.Attachments = append(req.Attachments, domain.Attachment{FileName: fileName,
				MimeType: mimeOf(fileName, part.Header.Get("Content-Type"), content), Content: content})
		case "":
			return req, badRequest("a part has no form-data name: name the fields type, subject, period, memo, to and file")
		default:
			return req, badRequest("unknown field %q: the fields are type, subject, period, memo, to (e-invoices only) and file (one or more)",
				truncate(name, 40))
		}
	}
	return req, nil
}

// readPart reads a part up to limit bytes; one more byte means it is too large.
func (s *Server) readPart(part *multipart.Part, limit int64, over func() *requestError) ([]byte, *requestError) {
	b, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		return nil, s.readError(err, "multipart body")
	}
	if int64(len(b)) > limit {
		return nil, over()
	}
	return b, nil
}

// queueJSON is the JSON form of a queue request: the files are base64 (standard alphabet,
// padded), the first in document. To is an e-invoice's address when its customer has
// none in the invoice.
type queueJSON struct {
	Type         string           `json:"type"`
	Subject      string           `json:"subject"`
	Period       string           `json:"period"`
	Memo         string           `json:"memo"`
	Document     string           `json:"document"`
	DocumentName string           `json:"document_name"`
	Attachments  []attachmentJSON `json:"attachments"`
	To           string           `json:"to"`
}

type attachmentJSON struct {
	Name     string `json:"name"`
	MimeType string `json:"mime_type"`
	Content  string `json:"content"`
}

func (s *Server) readJSON(r *http.Request) (store.QueueRequest, *requestError) {
	var req store.QueueRequest
	var in queueJSON
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, s.requestTooLarge()
		}
		return req, badRequest("the JSON body could not be read: %v; send one object with type, subject, period, memo, "+
			"document (base64), document_name, attachments and (e-invoices only) to", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, badRequest("the JSON body has more after its object: send one object")
	}
	req.Type = domain.MessageType(strings.ToLower(strings.TrimSpace(in.Type)))
	req.Subject, req.Period, req.Memo, req.Recipient = in.Subject, in.Period, in.Memo, strings.TrimSpace(in.To)
	if in.Document == "" {
		return req, &requestError{http.StatusUnprocessableEntity, ProblemInvalid, "Message not queued",
			"document is missing: send the declaration (or the e-invoice's UBL, or the payment order's pain.001) base64-encoded in document"}
	}
	name := in.DocumentName
	if name == "" {
		name = "declaration.xml"
		if req.Type == domain.TypeEInvoice {
			name = "invoice.xml"
		} else if req.Type == domain.TypePayment {
			name = "payment.xml"
		} else if spec, err := s.Catalog.Lookup(req.Type); err == nil && spec.Document == domain.DocumentXBRL {
			name = "declaration.xbrl"
		}
	}
	if len(in.Attachments) >= maxFiles {
		return req, tooLarge("the message has more than %d files: queue the declaration with at most %d attachments", maxFiles, maxFiles-1)
	}
	total := int64(0)
	files := append([]attachmentJSON{{Name: name, MimeType: "application/xml", Content: in.Document}}, in.Attachments...)
	for i, f := range files {
		field := "document"
		if i > 0 {
			field = fmt.Sprintf("attachments[%d]", i-1)
			if f.Name == "" {
				return req, badRequest("%s has no name: give each attachment its file name", field)
			}
		}
		if decodedLen(f.Content) > s.Limits.MaxFile {
			return req, s.fileTooLarge(f.Name)
		}
		content, err := base64.StdEncoding.DecodeString(f.Content)
		if err != nil {
			return req, badRequest("%s is not base64 (standard alphabet with padding, RFC 4648 section 4): %v", field, err)
		}
		if total += int64(len(content)); total > s.Limits.MaxRequest {
			return req, s.requestTooLarge()
		}
		req.Attachments = append(req.Attachments, domain.Attachment{FileName: filepath.Base(f.Name), MimeType: mimeOf(f.Name, f.MimeType, content),
			Content: content})
	}
	return req, nil
}

// decodedLen is the length base64 text decodes to, so a file over the limit is refused
// before it is decoded.
func decodedLen(s string) int64 {
	n := int64(len(s)) / 4 * 3
	if strings.HasSuffix(s, "==") {
		n -= 2
	} else if strings.HasSuffix(s, "=") {
		n--
	}
	return n
}

// mimeOf is a file's media type: the declared one without parameters (the store checks
// for XML by the type alone), or, where the client declared none or only
// application/octet-stream (curl does for .xbrl), what the name and content say, as
// `starter queue` guesses it.
func mimeOf(name, declared string, content []byte) string {
	if mt, _, err := mime.ParseMediaType(declared); err == nil && mt != "application/octet-stream" {
		return mt
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".xbrl", ".xml":
		return "application/xml"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil && mt != "application/octet-stream" {
			return mt
		}
	}
	if trimmed := strings.TrimLeft(string(content[:min(len(content), 512)]), " \t\r\n\ufeff"); strings.HasPrefix(trimmed, "<") {
		return "application/xml"
	}
	return "application/octet-stream"
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
