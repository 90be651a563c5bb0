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
// Every error a Client method returns is an *Error with a Kind: Final (a person must
// act: fix the message, certificate or configuration) or Transient (retry later).
// Use IsFinal (or the Kind of the *Error) in retry policies.
//
// Configuration comes from the environment (ConfigFromEnv) or is built in code;
// package digipoort/simulator runs a faithful local Digipoort for tests and
// development.
package digipoort
