// Package digipoort is Koerier's client for Logius' Digipoort WUS 2.0 services
// (koppelvlak 1.2): AanleverService (deliver), StatusinformatieService (statuses,
// processes, message types) and OphaalService (pickup).
//
// Requests are SOAP 1.1 document/literal with WS-Addressing 2005/08 headers and a
// WS-Security header (Timestamp, the client certificate as BinarySecurityToken, an
// exclusive-C14N RSA-SHA1 — or RSA-SHA256 — signature over Body, Timestamp and the
// addressing headers), sent over mutual TLS 1.2+. Responses must carry a signature
// that verifies against the configured Digipoort signing certificate(s); faults,
// which Digipoort does not sign, become typed errors. See package wsse for the
// WS-Security details and the libraries used.
//
// # Endpoints
//
// Each service has its own URL (Endpoints), because Logius' environments do not share
// one layout: production and preproduction serve /wus/2.0/<service>/1.2 on
// wus.digipoort.logius.nl and wus.preproductie.digipoort.logius.nl, while the
// conformance environment (cs-bedrijven.procesinfrastructuur.nl) serves
// /cpl/aanleverservice/1.2, /cpl/statusinformatieservice/1.2 and — differently —
// /cpl/ophaalservice/services/OphaalService_V1_2, as its WSDLs say. PresetEndpoints
// holds the three environments; a base URL (Config.URL, as the simulator uses) gets
// the /wus/2.0 paths. The configuration takes exactly one of a preset, a base URL or
// three service URLs: two at once is an error rather than a silent choice.
//
// # What a response must be
//
// Besides a valid, trusted signature and a fresh timestamp, a response must answer
// the request it is read as: wsa:RelatesTo equal to the request's wsa:MessageID and
// wsa:Action the operation's response action, both directly under the SOAP Header
// (where wsse.Verify demands them signed). Real Digipoort sends both; an answer
// without them could be a signed answer to some other request. The timestamp check
// cannot be switched off from the environment (Config.InsecureSkipTimestampCheckForTests
// exists for tests on captured responses only).
//
// The client follows no HTTP redirect: following a 307 would post a signed tax return
// to whatever address the answer names. A redirect is a Final error naming the
// address, so that a person checks the endpoint.
//
// Responses are bounded per operation (DefaultMaxResponseBytes, 16 MiB;
// DefaultMaxPickupResponseBytes, 64 MiB for pickup, whose messages may be 20 MiB
// each): a larger one is refused by its Content-Length before it is read. A verified
// response costs 5 to 7 times its size in memory at the peak; pickup contents are
// decoded straight from the verified tree into one buffer each
// (BenchmarkResponseMemory has the figures).
//
// # Certificates
//
// Certificate files may be PEM or DER. PKIoverheid certificates expire and are
// renewed: Config.NextClientCertificate holds a renewed client certificate next to the
// current one, and each call uses the valid one that expires last, for the TLS
// handshake and the signature alike (one HTTP transport per certificate, so the two
// never mix), never an expired or not yet valid one. Config.Certificates (and
// Client.Certificates) lists every configured certificate — client and
// response-signing — with its validity, days left and whether it is in use, plus the
// warnings due 60, 30 and 7 days before expiry; it is a pure function of the time, for
// the worker's log and for `starter digipoort certificates`. When Digipoort's server
// certificate is not trusted because the CA bundle lacks an intermediate CA, the error
// names the missing CA.
//
// Every error a Client method returns is an *Error with a Kind: Final (a person must
// act: fix the message, certificate or configuration) or Transient (retry later).
// Use IsFinal (or the Kind of the *Error) in retry policies.
//
// Configuration comes from the environment (ConfigFromEnv) or is built in code;
// package digipoort/simulator runs a faithful local Digipoort for tests and
// development.
package digipoort
