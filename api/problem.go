package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Problem is an RFC 9457 problem detail. Type names the kind of problem (the OpenAPI
// document lists them); Detail says what went wrong with this request and what to do.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// RequestID is set on server errors only, so an operator can find the log line;
	// client errors leave it out so that equal mistakes get equal bodies (a 404 for
	// another environment's message is byte for byte the 404 of a missing one).
	RequestID string `json:"request_id,omitempty"`
	// Rule is set on an e-invoice or payment order that failed its check
	// (ProblemInvalidEInvoice, ProblemInvalidPayment): the name of the check, e.g.
	// ubl.sum.lines or payment.ctrlsum, for a client to branch on.
	Rule string `json:"rule,omitempty"`
}

// Problem types. RFC 9457 asks for a URI; these are tag URIs (RFC 4151) because they
// name kinds of problems rather than pages to fetch: the OpenAPI document describes each.
const (
	problemBase          = "tag:koerier,2026:problem:"
	ProblemUnauthorized  = problemBase + "unauthorized"
	ProblemNotFound      = problemBase + "not-found"
	ProblemBadRequest    = problemBase + "bad-request"
	ProblemMethod        = problemBase + "method-not-allowed"
	ProblemTooLarge      = problemBase + "too-large"
	ProblemMediaType     = problemBase + "unsupported-media-type"
	ProblemInvalid       = problemBase + "invalid-message"
	ProblemConflict      = problemBase + "idempotency-conflict"
	ProblemAutoProcess   = problemBase + "auto-process"
	ProblemUnavailable   = problemBase + "unavailable"
	ProblemInternal      = problemBase + "internal"
	problemContentType   = "application/problem+json"
	headerRequestID      = "X-Request-Id"
	headerReplayed       = "Idempotent-Replayed"
	headerIdempotencyKey = "Idempotency-Key"
)

// Problem types of e-invoices and e-mail profiles (issue 13).
const (
	// ProblemInvalidEInvoice is an e-invoice whose UBL failed its check; it carries Rule.
	ProblemInvalidEInvoice = problemBase + "invalid-einvoice"
	// ProblemInvalidProfile is an e-mail profile the store refused to save.
	ProblemInvalidProfile = problemBase + "invalid-mail-profile"
)

// Problem types of payment orders (issue 14).
const (
	// ProblemInvalidPayment is a payment file (pain.001) that failed its check; it
	// carries Rule.
	ProblemInvalidPayment = problemBase + "invalid-payment"
	// ProblemDuplicateMsgID is a sound payment file whose MsgId the environment used
	// before: the bank would refuse it as a duplicate (DUPL).
	ProblemDuplicateMsgID = problemBase + "duplicate-msgid"
)

// writeProblem answers with a problem detail. Server errors carry the request id.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, typ, title, detail string) {
	writeProblemDoc(w, r, Problem{Type: typ, Title: title, Status: status, Detail: detail})
}

// writeProblemDoc answers with a problem that may carry extension members.
func writeProblemDoc(w http.ResponseWriter, r *http.Request, p Problem) {
	typ, status := p.Type, p.Status
	if status >= 500 {
		p.RequestID = w.Header().Get(headerRequestID)
	}
	if info := requestInfoOf(r); info != nil {
		info.problem = typ
	}
	body, _ := json.Marshal(p)
	h := w.Header()
	h.Set("Content-Type", problemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSON answers with a JSON document.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here (every answer is a plain struct).
		http.Error(w, "could not encode the answer", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
