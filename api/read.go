package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"koerier/domain"
	"koerier/pipeline"
	"koerier/store"
)

// The 404s. Each says the same whether the number does not exist or belongs to another
// environment, so a token learns nothing about other environments' messages.
const (
	notFoundMessage = "there is no message with this number for this environment: GET /v1/messages lists your messages"
	notFoundDoc     = "there is no document with this id in a message of this environment with this number: " +
		"GET /v1/messages/{number}/documents lists a message's documents"
)

func notFound(w http.ResponseWriter, r *http.Request, detail string) {
	writeProblem(w, r, http.StatusNotFound, ProblemNotFound, "Not found", detail)
}

// answered writes the answer to a failed store read: 404 with detail for
// store.ErrNotFound, 503 for anything else. It reports whether it answered, that is
// whether err was not nil.
func (s *Server) answered(w http.ResponseWriter, r *http.Request, err error, step, detail string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		notFound(w, r, detail)
	default:
		s.unavailable(w, r, step, err)
	}
	return true
}

// pathID reads a positive number from the path; anything else is a malformed request.
func pathID(r *http.Request, name string) (int64, *requestError) {
	v := r.PathValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, badRequest("%q is not a %s: it is a positive whole number", truncate(v, 40), map[string]string{
			"number": "message number", "id": "document id"}[name])
	}
	return n, nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	number, rerr := pathID(r, "number")
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	m, err := s.Store.APIMessage(r.Context(), environmentOf(r).ID, number)
	if s.answered(w, r, err, "read message", notFoundMessage) {
		return
	}
	writeJSON(w, http.StatusOK, normalize(m))
}

// normalize makes empty lists [] rather than null, as the OpenAPI document says.
func normalize(m store.APIMessage) store.APIMessage {
	if m.Replies == nil {
		m.Replies = []store.APIReply{}
	}
	return m
}

// messageList is a page of GET /v1/messages.
type messageList struct {
	Messages []store.APIMessage `json:"messages"`
	// NextCursor is set when there are more: pass it as cursor for the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	f, rerr := s.listFilter(r.URL.Query())
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	msgs, next, err := s.Store.APIMessages(r.Context(), environmentOf(r).ID, f)
	if err != nil {
		s.unavailable(w, r, "list messages", err)
		return
	}
	out := messageList{Messages: make([]store.APIMessage, 0, len(msgs))}
	for _, m := range msgs {
		out.Messages = append(out.Messages, normalize(m))
	}
	if next > 0 {
		out.NextCursor = strconv.FormatInt(next, 10)
		q := r.URL.Query()
		q.Set("cursor", out.NextCursor)
		w.Header().Set("Link", fmt.Sprintf(`</v1/messages?%s>; rel="next"`, q.Encode()))
	}
	writeJSON(w, http.StatusOK, out)
}

// listFilter reads the list's query. Unknown parameters are refused: a misspelt filter
// would otherwise silently list everything.
func (s *Server) listFilter(q url.Values) (store.APIFilter, *requestError) {
	f := store.APIFilter{Limit: store.APIDefaultLimit}
	known := []string{"status", "type", "since", "cursor", "limit"}
	for k, v := range q {
		if !slices.Contains(known, k) {
			return f, badRequest("unknown query parameter %q: the filters are %s", truncate(k, 40), strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return f, badRequest("the query parameter %s is given %d times: give it once", k, len(v))
		}
	}
	if v := q.Get("status"); v != "" {
		st := domain.Status(v)
		if !slices.Contains(domain.OutgoingStatuses(), st) {
			return f, badRequest("unknown status %q: use one of %s", truncate(v, 40), joinStatuses(domain.OutgoingStatuses()))
		}
		f.Status = st
	}
	if v := q.Get("type"); v != "" {
		t := domain.MessageType(strings.ToLower(v))
		if _, err := s.Catalog.Lookup(t); err != nil {
			return f, badRequest("%v", err)
		}
		f.Type = t
	}
	if v := q.Get("since"); v != "" {
		// An offset's "+" arrives as a space when the client did not encode it.
		v = strings.ReplaceAll(v, " ", "+")
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if t, err = time.ParseInLocation(time.DateOnly, v, time.UTC); err != nil {
				return f, badRequest("since=%q is not a time: use RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01, UTC)", truncate(v, 40))
			}
		}
		f.Since = t
	}
	if v := q.Get("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return f, badRequest("cursor=%q is not a cursor this API gave: pass next_cursor of the previous page as it is", truncate(v, 40))
		}
		f.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.APIMaxLimit {
			return f, badRequest("limit=%q: give a number from 1 to %d", truncate(v, 40), store.APIMaxLimit)
		}
		f.Limit = n
	}
	return f, nil
}

func joinStatuses(sts []domain.Status) string {
	out := make([]string, len(sts))
	for i, s := range sts {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

// documentList is GET /v1/messages/{number}/documents.
type documentList struct {
	Documents []store.APIDocument `json:"documents"`
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request) {
	number, rerr := pathID(r, "number")
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	docs, err := s.Store.APIDocuments(r.Context(), environmentOf(r).ID, number)
	if s.answered(w, r, err, "list documents", notFoundMessage) {
		return
	}
	if docs == nil {
		docs = []store.APIDocument{}
	}
	writeJSON(w, http.StatusOK, documentList{Documents: docs})
}

// getDocument sends a document's bytes as they were queued or received, with its media
// type and file name, as the seed's "Opslaan bijlage" saved it.
func (s *Server) getDocument(w http.ResponseWriter, r *http.Request) {
	number, rerr := pathID(r, "number")
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	id, rerr := pathID(r, "id")
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	doc, content, err := s.Store.APIDocument(r.Context(), environmentOf(r).ID, number, id)
	if s.answered(w, r, err, "read document", notFoundDoc) {
		return
	}
	writeFile(w, r, doc.Name, doc.MimeType, content)
}

// writeFile sends a stored file's bytes with its media type, file name and digest.
func writeFile(w http.ResponseWriter, r *http.Request, name, mimeType string, content []byte) {
	h := w.Header()
	mt, _, perr := mime.ParseMediaType(mimeType)
	if perr != nil {
		mt = "application/octet-stream"
	}
	h.Set("Content-Type", mt)
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": name})
	if disposition == "" {
		disposition = "attachment"
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Length", strconv.Itoa(len(content)))
	sum := sha256.Sum256(content)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	// RFC 9530: the client can check what it saved against what Koerier holds.
	h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(content)
	}
}

// process asks the message's workflow to apply its received replies to the
// environment's view, as `starter process` does. See the package documentation for why
// an auto-process environment is refused.
func (s *Server) process(w http.ResponseWriter, r *http.Request) {
	env := environmentOf(r)
	number, rerr := pathID(r, "number")
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	m, err := s.Store.APIMessage(r.Context(), env.ID, number)
	if s.answered(w, r, err, "read message", notFoundMessage) {
		return
	}
	if env.AutoProcess {
		writeProblem(w, r, http.StatusConflict, ProblemAutoProcess, "Environment processes automatically",
			fmt.Sprintf("environment %s processes replies as they arrive, so there is nothing to process by hand: GET the message "+
				"(or wait for the webhook) to see its status", env.Name))
		return
	}
	decls, err := s.Store.Declarations(r.Context(), []int64{number})
	if err != nil {
		s.unavailable(w, r, "read message", err)
		return
	}
	d, ok := decls[number]
	if !ok {
		notFound(w, r, notFoundMessage)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), temporalTimeout)
	defer cancel()
	if err := s.Workflows.Signal(ctx, d, pipeline.SignalProcess, pipeline.OperatorSignal{By: "environment " + env.Name + " (API)"}); err != nil {
		s.unavailable(w, r, "signal process", err)
		return
	}
	w.Header().Set("Location", messagePath(number))
	writeJSON(w, http.StatusAccepted, normalize(m))
}
