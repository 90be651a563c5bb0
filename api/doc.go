// Package api is the environments' front door: an HTTP API through which a bookkeeping
// application (an environment) queues its own messages, reads their status and reply
// documents, and processes them, authenticated with a bearer token that belongs to one
// environment. The command line stays the operator's tool; it holds the database's and
// Temporal's credentials and sees every environment, which an environment must not.
//
// Decisions an environment can rely on (api/openapi.json says the same to clients):
//
//   - The environment is the token's (store.Authenticate), never a parameter. Another
//     environment's message answers 404 with exactly the body a missing one gets, in
//     every endpoint, so a token cannot learn which numbers exist elsewhere.
//   - Idempotency-Key is the message's client reference (rule 1 in docs/rules.md). The
//     same key with the same content answers what the first request answered: 201 with
//     the same body and Location (plus Idempotent-Replayed: true), so a client that lost
//     the first answer and retries cannot tell a retry from the first call and needs no
//     second code path. The same key with other content is 409. Without a key every
//     request queues (a retry then queues a new version of the declaration).
//   - POST /v1/messages/{number}/process is for environments that process by hand. An
//     auto-process environment is answered 409: its replies are applied as they arrive,
//     so a process call there would do nothing and a client that sends it has the
//     environment's profile wrong, which it should hear rather than have ignored. For a
//     hand-process environment the call signals the message's workflow (as `starter
//     process` does) and answers 202; the status changes when the workflow has applied
//     the replies (GET the message, or wait for the webhook).
//   - Limits are enforced while the body is read, never after: a body whose
//     Content-Length is over the total cap is refused before a byte of it is read; a
//     multipart body is streamed part by part and a file is refused at its 20 MiB + 1st
//     byte; http.MaxBytesReader stops everything at the total cap. Nothing is queued
//     unless the whole request was read and valid, and store.Queue stores a message and
//     its files in one transaction, so nothing is ever stored half.
//   - Errors are RFC 9457 problem details (application/problem+json) whose detail says
//     what to do.
//   - E-invoices (issue 13) are queued like declarations, as type einvoice with an
//     optional `to`; a UBL check that fails is a 422 of type invalid-einvoice whose
//     extension member `rule` names the check (domain.EInvoiceError), so a client can
//     branch on it without parsing text. Received e-invoices are read at /v1/einvoices.
//   - Payment orders (issue 14) are queued as type payment, one pain.001 file; a failed
//     check is a 422 of type invalid-payment with `rule` (domain.PaymentError). A MsgId
//     the environment used before is 409 duplicate-msgid, not 422: the file is sound, but
//     the bank would refuse it as a duplicate, and the answer says to give it a new
//     MsgId (with the subject and period of the order it corrects, to make it that
//     order's next version). A payment order's view carries its `transactions`, with the
//     bank's status per transfer shown, like every status, once processed (rule 13).
//   - The environment keeps its own e-mail profile at /v1/mail-profile. A password is
//     taken in and never given back (`password_set` only); left out, the stored one is
//     kept. After a change Server.MailSchedule brings the environment's e-mail schedule
//     in line; when it cannot, the profile stays saved and the answer's
//     `schedule_error` tells the client an operator must run `starter schedules apply`.
//
// The package holds no state between requests: every answer comes from Postgres and
// every action goes through store or Temporal, so any number of instances can run
// behind a load balancer.
//
// The OpenAPI document is written by hand (api/openapi.json, embedded and served at
// /v1/openapi.json) and checked against real responses with kin-openapi
// (openapi3filter.ValidateResponse) in e2e/api_test.go. kin-openapi rather than a
// code-first framework such as huma: the handlers are small and use net/http's own
// router, the document is the contract environments build against and is reviewed as
// such (a generated one changes whenever a Go type does), and kin-openapi is a
// validation library only, used in tests, so the binary carries no framework and the
// problem+json, streaming multipart and limit behaviour stay exactly as written here.
package api
