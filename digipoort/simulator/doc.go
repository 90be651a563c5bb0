// Package simulator is a faithful local Digipoort (WUS 2.0, koppelvlak 1.2) for
// development and tests: AanleverService, StatusinformatieService and OphaalService
// over HTTPS with mutual TLS on 127.0.0.1, speaking the same SOAP/WS-Addressing/
// WS-Security protocol as Digipoort. Run it as a binary
// (go run ./digipoort/cmd/digipoort-simulator) or in-process:
//
//	sim, err := simulator.Start(ctx, simulator.Options{Dir: t.TempDir(), StepInterval: 5 * time.Millisecond})
//	if err != nil { t.Fatal(err) }
//	defer sim.Close()
//	cfg, err := sim.ClientConfig()        // digipoort.Config for a client the simulator knows
//	client, err := digipoort.New(cfg)
//	// or, for code that reads the environment: for _, l := range sim.Env() { k, v, _ := strings.Cut(l, "="); t.Setenv(k, v) }
//	sim.SetScenario("2026000123", simulator.Afleverfout)
//	sim.Deliveries("2026000123").Accepted  // exactly-once assertions
//
// # Protocol
//
// Requests must be signed like Digipoort requires (Timestamp, BinarySecurityToken,
// signature over Body, Timestamp and every WS-Addressing header, exclusive C14N,
// RSA-SHA1 or RSA-SHA256), with a matching SOAPAction and wsa:Action and wsa:To equal
// to the service endpoint. The certificate in the signature must be the TLS client
// certificate. A request that fails any check gets the service's x100 fault (ALS100,
// STS100, OPS100) describing the problem, like Digipoort's "voldoet niet aan de
// koppelvlakspecificaties". Field limits of the XSD are enforced the same way.
// Responses are signed in exactly the shape of Digipoort's own (wsse.LayoutDigipoort);
// faults are unsigned and have the shape of the captured Digipoort faults, HTTP 500.
//
// # Certificates
//
// On first start Options.Dir (default $KOERIER_SIM_DIR or .koerier/simulator) gets
// a development CA (ca.pem), a server certificate for 127.0.0.1/::1/localhost, a
// client certificate (client.pem/client-key.pem, and client.pfx with password
// "koerier-simulator") and the response-signing certificate (signing.pem); later
// starts reuse them. TLS accepts any client certificate; the simulator knows
// client.pem, the PEM files in <Dir>/known-clients/ and Options.KnownClients.
//
// A delivery made with an unknown certificate is accepted (a signed answer with a
// kenmerk) and its statuses are 105, 100, 110, 210 (authenticatie niet gelukt), like
// Digipoort. The status service answers that certificate about its own deliveries
// (so it sees the 210), getProcessen lists its own deliveries, and the ophaalservice
// gives it nothing. In general statuses are only given to the certificate that
// delivered: another certificate asking about a kenmerk gets STS100 "kenmerk onbekend".
//
// # Status flows
//
// Status i of a delivery has time delivery+i×StepInterval (default 1s; Instant: all at
// once); getStatussenProces returns only the statuses whose time has come, filtered by
// tijdstempelVanaf/Tot (inclusive, millisecond precision).
// getNieuweStatussenProces returns them once per certificate. The scenario is chosen
// by aanleverkenmerk (see Scenario): Happyflow, AanleverFault, Afleverfout,
// Foutuitvragendepartij (311), Afkeuruitvragendepartij (510),
// TechnischProbleemAfleveren, MaximaalAantalAfleverpogingen, OverbelastAanleveren,
// ZwaarbelastAanleveren, StatusInformatieFault, OverbelastStatusInformatie,
// ZwaarbelastStatusInformatie; anything else is Happyflow unless a scenario was set
// for that aanleverkenmerk in advance (SetScenario or the control API).
//
// # Idempotency
//
// A second delivery with the same aanleverkenmerk, berichtsoort and
// identiteitBelanghebbende starts no new process: it is answered with the original
// response (same kenmerk and tijdstempelAangeleverd) and counted as a duplicate, so
// tests can assert exactly-once delivery (DeliveryStats.Accepted == 1). This is a
// choice of the simulator: the real Digipoort is not known to deduplicate on
// aanleverkenmerk, which is why the client has FindDelivery. Deliveries without an
// aanleverkenmerk are never deduplicated.
//
// # Pickup
//
// When a delivery's flow ends (known certificates only), a reply is put ready for
// pickup: a BerichtResultaat with the process kenmerk, the aanleverkenmerk, the
// berichtsoort and identity of the delivery, time = the time of the last status, and
// a small XML document naming the final status. AddPickup (or POST /sim/pickups)
// adds messages that answer no delivery, to test unknown replies (ONB).
//
// # Control API
//
// A separate plain-HTTP listener (Options.ControlAddr, default 127.0.0.1:0; the binary
// uses 127.0.0.1:8444) serves JSON:
//
//	GET    /sim/health                      {"ok": true, "url": "https://127.0.0.1:…"}
//	GET    /sim/env[?pfx=1]                 the KOERIER_DIGIPOORT_* lines (text/plain)
//	GET    /sim/deliveries                  {"deliveries": {"<aanleverkenmerk>": DeliveryStats}}
//	GET    /sim/deliveries/{aanleverkenmerk} DeliveryStats: {"aanleverkenmerk", "attempts", "accepted",
//	                                        "duplicates", "received", "kenmerken": [...], "scenario"}
//	GET    /sim/calls                       {"calls": {"aanleveren": 3, "getStatussenProces": 7, …}, "total": 10}
//	GET    /sim/scenarios                   {"scenarios": [...], "overrides": {"<aanleverkenmerk>": "Afleverfout"}}
//	PUT    /sim/scenarios/{aanleverkenmerk} {"scenario": "Afleverfout"}            -> 204
//	DELETE /sim/scenarios/{aanleverkenmerk}                                       -> 204
//	POST   /sim/pickups                     Pickup: {"kenmerk"?, "berichtsoort", "identiteit": {"nummer", "type"},
//	                                        "aanleverkenmerk"?, "rol"?, "mime_type"?, "bestandsnaam"?,
//	                                        "inhoud"? (base64), "tijdstempel"? (RFC 3339)}
//	                                        -> 201 {"kenmerk", "berichtkenmerk"}
//	GET    /sim/faults                      {"faults": {"<operation>": FaultConfig}}
//	PUT    /sim/faults/{operation}          FaultConfig, operation = WSDL name or "*"  -> 204
//	DELETE /sim/faults[/{operation}]                                              -> 204
//	POST   /sim/reset                       forget everything                        -> 204
//
// FaultConfig is {"http500": Rule, "overload": Rule, "slow": Rule, "timeout": Rule,
// "tamper": Rule, "unsigned": Rule} with Rule {"count": n, "probability": p,
// "max": m, "delay": "2s"}: the next n requests get the fault, after that each with
// probability p from a generator seeded by Options.Seed, at most m times in all. A
// timeout processes the request (a delivery is accepted and counted) and then does not
// answer for delay (default 10m) before breaking the connection: the client cannot
// know whether its request arrived. See FaultConfig for the others.
package simulator
