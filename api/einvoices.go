package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"koerier/store"
)

// Received e-invoices (issue 13): what came into the environment's mailbox as UBL,
// read through the environment's own token like its outgoing messages. Its sent
// e-invoices are messages (GET /v1/messages), with channel email.

const notFoundInvoice = "there is no received e-invoice with this number for this environment: GET /v1/einvoices lists them"

// invoiceView is one received e-invoice.
type invoiceView struct {
	Number        int64  `json:"number"`
	Kind          string `json:"kind"`
	InvoiceNumber string `json:"invoice_number"`
	Supplier      string `json:"supplier"`
	IssueDate     string `json:"issue_date"`
	// Amount is the payable amount as the document says it; absent when it had none
	// that could be read (a received invoice is kept all the same).
	Amount     string    `json:"amount,omitempty"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"`
	ReceivedAt time.Time `json:"received_at"`
	// Document is where the UBL document is read; absent when none is stored.
	Document string `json:"document,omitempty"`
}

func viewOf(i store.InvoiceView) invoiceView {
	v := invoiceView{Number: i.Number, Kind: i.Kind, InvoiceNumber: i.InvoiceNumber, Supplier: i.Supplier, IssueDate: i.IssueDate,
		Amount: i.Amount, Currency: i.Currency, Status: i.Status, ReceivedAt: i.ReceivedAt}
	if i.AttachmentID != 0 {
		v.Document = invoicePath(i.Number) + "/document"
	}
	return v
}

func invoicePath(number int64) string { return "/v1/einvoices/" + strconv.FormatInt(number, 10) }

// invoiceList is a page of GET /v1/einvoices.
type invoiceList struct {
	EInvoices []invoiceView `json:"einvoices"`
	// NextAfter is set when there are more: pass it as after for the next page.
	NextAfter int64 `json:"next_after,omitempty"`
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) {
	after, limit, rerr := invoicePage(r.URL.Query())
	if rerr != nil {
		rerr.write(w, r)
		return
	}
	// One more than the page tells whether there is a next one.
	invs, err := s.Store.IncomingInvoices(r.Context(), environmentOf(r).ID, after, limit+1)
	if err != nil {
		s.unavailable(w, r, "list received e-invoices", err)
		return
	}
	out := invoiceList{EInvoices: make([]invoiceView, 0, min(len(invs), limit))}
	for i, inv := range invs {
		if i == limit {
			out.NextAfter = invs[limit-1].Number
			break
		}
		out.EInvoices = append(out.EInvoices, viewOf(inv))
	}
	if out.NextAfter > 0 {
		q := r.URL.Query()
		q.Set("after", strconv.FormatInt(out.NextAfter, 10))
		w.Header().Set("Link", fmt.Sprintf(`</v1/einvoices?%s>; rel="next"`, q.Encode()))
	}
	writeJSON(w, http.StatusOK, out)
}

// invoicePage reads the list's query; unknown parameters are refused, as for messages.
func invoicePage(q url.Values) (after int64, limit int, _ *requestError) {
	known := []string{"after", "limit"}
	for k, v := range q {
		if !slices.Contains(known, k) {
			return 0, 0, badRequest("unknown query parameter %q: the parameters are %s", truncate(k, 40), strings.Join(known, ", "))
		}
		if len(v) > 1 {
			return 0, 0, badRequest("the query parameter %s is given %d times: give it once", k, len(v))
		}
	}
	limit = store.APIDefaultLimit
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, badRequest("after=%q is not a message number: pass next_after of the previous page", truncate(v, 40))
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.APIMaxLimit {
			return 0, 0, badRequest("limit=%q: give a number from 1 to %d", truncate(v, 40), store.APIMaxLimit)
		}
		limit = n
	}
	return after, limit, nil
}

// invoice reads one of the environment's received e-invoices: the page of one that
// starts just before its number, so that the store's environment filter decides, and
// another environment's invoice is not found exactly like a missing one.
func (s *Server) invoice(w http.ResponseWriter, r *http.Request) (store.InvoiceView, bool) {
	number, rerr := pathID(r, "number")
	if rerr != nil {
		rerr.write(w, r)
		return store.InvoiceView{}, false
	}
	invs, err := s.Store.IncomingInvoices(r.Context(), environmentOf(r).ID, number-1, 1)
	if err != nil {
		s.unavailable(w, r, "read received e-invoice", err)
		return store.InvoiceView{}, false
	}
	if len(invs) == 0 || invs[0].Number != number {
		notFound(w, r, notFoundInvoice)
		return store.InvoiceView{}, false
	}
	return invs[0], true
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoice(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, viewOf(inv))
}

// getInvoiceDocument sends the UBL document exactly as it was received.
func (s *Server) getInvoiceDocument(w http.ResponseWriter, r *http.Request) {
	inv, ok := s.invoice(w, r)
	if !ok {
		return
	}
	const noDocument = "this received e-invoice has no stored document: GET /v1/einvoices/{number} shows what is known of it"
	if inv.AttachmentID == 0 {
		notFound(w, r, noDocument)
		return
	}
	// The message is the environment's (invoice above); its files are read by number.
	files, err := s.Store.Attachments(r.Context(), inv.Number)
	if err != nil {
		s.unavailable(w, r, "read received e-invoice document", err)
		return
	}
	for _, f := range files {
		if f.ID == inv.AttachmentID {
			writeFile(w, r, f.FileName, f.MimeType, f.Content)
			return
		}
	}
	notFound(w, r, noDocument) // cleaned up between the two reads
}
