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
//	sim.SetMode(simulator.Mode{Realistic: true, Scale: 0.01}) // behave like the real Digipoort, 100× faster
//
// The simulator has two modes (see Mode and "Realistic mode" below). The default mode
// is convenient: flows end in a few StepIntervals, a repeated delivery is answered with
// the original kenmerk, pickups echo the aanleverkenmerk. Realistic mode drops those
// conveniences, which the real Digipoort is not known to offer, so that a client's
// handling of lost answers and repeats can be tested against what really happens.
//
// # Protocol
//
// Requests must be signed like Digipoort requires (Timestamp, BinarySecurityToken,
// signature over Body, Timestamp and every WS-Addressing header, exclusive C14N,
// RSA-SHA1 or RSA-SHA256), with a matching SOAPAction and wsa:Action and wsa:To equal
// to the service endpoint. The certificate in the signature must be the TLS client
// certificate. Responses are signed in exactly the shape of Digipoort's own
// (wsse.LayoutDigipoort); faults are unsigned and have the shape of the captured
// Digipoort faults, HTTP 500, with the WSDL's fault action of the operation called
// (taken from the SOAPAction when the Body cannot be read) and wsa:RelatesTo.
//
// # What the simulator refuses
//
// Digipoort answers a request that does not meet its interface with the service's
// x100 fault, "Het verzoek voldoet niet aan de koppelvlakspecificaties…" (ALS100,
// STS100 captured; OPS100 for the ophaalservice, a prefix not confirmed). The
// simulator does the same, naming the problem after that text, for:
//
//   - anything that breaks the XSD (digipoort-koppelvlak-1.2.xsd), checked element by
//     element by wire.ValidateRequest: the request element of the operation, every
//     element in the koppelvlak namespace, the order of the sequence, no element or
//     attribute the XSD does not declare there, required elements present, no element
//     more often than allowed, the maximum lengths (kenmerk, aanleverkenmerk 40;
//     berichtsoort, bestandsnaam 80; nummer 35; type 20; rol 40; mimeType,
//     autorisatieAdres 255; inhoud 20 MiB decoded) and valid dateTime, base64 and URI
//     values. The structure is derived from the wire types; wire's tests prove it equal
//     to the XSD and hold the check against xmllint;
//   - an empty required value (<berichtsoort/>, an empty inhoud): the XSD lets it
//     pass, but nothing can be done with it;
//   - a request without autorisatieAdres, on every operation. The XSD makes it
//     optional, but mandatory on status and pickup calls when the requester is not the
//     belanghebbende (an intermediary, as Koerier is), and every public client sends
//     http://geenausp.nl on every call: Koerier's rule is stricter than the XSD so that
//     a client that forgets it fails here, not on some berichtsoort in production;
//   - a SOAP header other than WS-Addressing (To, From, ReplyTo, FaultTo, Action,
//     MessageID, RelatesTo) and wsse:Security: the WSDL declares no other header. A
//     refused header marked soapenv:mustUnderstand gets faultcode
//     soapenv:MustUnderstand (SOAP 1.1), other refusals soapenv:Client;
//   - everything about the envelope: not well-formed, a wrong SOAPAction or wsa:Action,
//     no wsa:MessageID, a foreign wsa:To, a ReplyTo other than anonymous, a signature
//     that does not verify or is not by the TLS client certificate, an operation the
//     service does not offer.
//
// A technical problem is the x400 fault (faultcode soapenv:Server, transient): ALS400
// is Logius' documented "technische fout"; STS400 and OPS400 follow the pattern. See
// faults.go for which codes are confirmed, and why ALS110–ALS170 (documented to exist,
// their meanings not published) are not used. A refused request starts nothing: a
// refused delivery is not counted in DeliveryStats.
//
// # Certificates
//
// On first start Options.Dir (default $KOERIER_SIM_DIR or .koerier/simulator) gets
// a development CA (ca.pem), a server certificate for 127.0.0.1/::1/localhost, a
// client certificate (client.pem/client-key.pem, and client.pfx with password
// "koerier-simulator") and the response-signing certificate (signing.pem); later
// starts reuse them.
//
// With Options.Persist (the binary's -persist, on by default there) the processes are
// kept in Options.Dir too (StateFile, written atomically shortly after a change — after
// a wait that grows with the state, at least 9 times the last write, so that keeping
// thousands of processes costs a tenth of a core — and at Close, read at start), as
// Digipoort keeps its processes: a simulator restarted on
// the same Dir answers for every kenmerk it gave out, with the same statuses. Without
// it a restart forgets them and each is refused STS100 "kenmerk onbekend".
//
// Like Digipoort, which takes only PKIoverheid client certificates, TLS requires a
// client certificate that chains to Options.ClientCAs (default the development CA;
// the binary's -client-ca flag): any other certificate, a self-signed one for
// instance, fails the handshake and reaches no service. Of the certificates that pass,
// the simulator knows client.pem, the PEM files in <Dir>/known-clients/ and
// Options.KnownClients (devcerts.Issued.Issue makes more from the CA).
//
// A delivery made with a certificate that passes TLS but is not known (not registered
// at Digipoort, in the real world) is accepted (a signed answer with a kenmerk) and
// its statuses are 105, 100, 110, 210 (authenticatie niet gelukt), like Digipoort. The
// status service answers that certificate about its own deliveries (so it sees the
// 210), getProcessen lists its own deliveries, and the ophaalservice gives it nothing.
// In general statuses are only given to the certificate that delivered: another
// certificate asking about a kenmerk gets STS100 "kenmerk onbekend".
//
// # Status flows
//
// In the default mode status i of a delivery has time delivery+i×StepInterval
// (default 1s; Instant: all at once); in realistic mode the statuses are spread over
// minutes (see Realistic mode). getStatussenProces returns only the statuses whose
// time has come, filtered by tijdstempelVanaf/Tot (inclusive, millisecond precision).
// getNieuweStatussenProces and getNieuweStatussen return each status once per
// certificate.
//
// The scenario is chosen by aanleverkenmerk (see Scenario), with the names of Logius'
// conformance environment: Happyflow, AanleverFault, StatusInformatieFault,
// Afleverfout, Foutuitvragendepartij, TechnischProbleemAfleveren,
// MaximaalAantalAfleverpogingen, ZwaarbelastAanleveren, OverbelastAanleveren,
// ZwaarbelastStatusInformatie, OverbelastStatusInformatie; and the simulator's own,
// prefixed Koerier: KoerierValidatieNietGelukt (Digipoort's own validation fails: 311
// with VAS500, for which the conformance environment has no aanleverkenmerk). Anything
// else is Happyflow unless a scenario was set for that aanleverkenmerk in advance
// (SetScenario or the control API). The sequences follow Logius' status flow:
// Digipoort validates the message itself (301; 311 when that fails) before it hands it
// over to the authority (405); a rejection by the authority after delivery (400) is
// 510; the happy flow is the captured conformance one, 105 100 110 200 301 301 405 400
// 500. Expected and Expectations give, per scenario, the faults, the status codes and
// the outcome, for a conformance run that delivers one message per scenario and
// compares.
//
// The aanleverResponse names the receiver (identiteitOntvanger: the request's, or the
// Belastingdienst's OIN, Options.Ontvanger) and echoes the autorisatieAdres, like the
// captured response. The 500 carries the Belastingdienst's acknowledgement in
// statusdetails: a Responsemessage document (ResponseType acknowledgement, "Status:
// Verwerkbaar") referring to the delivery's wsa:MessageID and kenmerk, in the shape
// captured from the conformance environment; the 510 a Responsemessage of ResponseType
// error (that shape is an assumption).
//
// # Idempotency
//
// Default mode: a second delivery with the same aanleverkenmerk, berichtsoort and
// identiteitBelanghebbende starts no new process: it is answered with the original
// response (same kenmerk and tijdstempelAangeleverd) and counted as a duplicate
// (DeliveryStats.Duplicates). This is a choice of the simulator: the real Digipoort is
// not known to deduplicate on aanleverkenmerk, which is why the client has
// FindDelivery. Deliveries without an aanleverkenmerk are never deduplicated.
//
// Realistic mode: a repeated delivery is not recognised. It starts a second process
// with its own kenmerk, flow and pickup, listed by getProcessen next to the first, and
// is counted in DeliveryStats.Repeated; DeliveryStats.Kenmerken and .Processes list
// every process of the aanleverkenmerk. In both modes DeliveryStats.Accepted counts the
// processes started, so "exactly once at Digipoort" is Accepted == 1.
//
// Each process records what its delivery carried (ProcessInfo.Inhoud and .Bijlagen:
// name, MIME type, decoded size and SHA-256 of berichtInhoud and of every bijlage of
// berichtBijlagen), not the content itself. A bijlage with an empty name, MIME type or
// content is refused like an empty berichtInhoud.
//
// # Pickup
//
// When a delivery's flow ends (known certificates only), a reply is put ready for
// pickup: a BerichtResultaat with the process kenmerk, the berichtsoort and identity
// of the delivery, time = the time of the last status, and a small XML document naming
// the final status. In the default mode the BerichtResultaat and the document also
// carry the aanleverkenmerk; in realistic mode neither does (the XSD makes it optional
// and the real Digipoort is not known to fill it), so replies can only be linked by
// kenmerk; digipoort.Client.FindDelivery, which looks for the aanleverkenmerk in the
// pickups, finds nothing then. getBerichtenLijst never carries it (BerichtLijstResultaat has no such
// element). The Nieuwe operations (getNieuweBerichtenLijst, getNieuweBerichtenKenmerk,
// getNieuweBerichten) return each message once per certificate; the plain ones return
// it every time. AddPickup (or POST /sim/pickups) adds messages that answer no delivery, to
// test unknown replies (ONB); they carry the aanleverkenmerk they are given.
//
// # Realistic mode
//
// Switched with SetMode, Options.Mode, PUT /sim/mode or the binary's -realistic flag;
// off by default. A process keeps the mode it was delivered in. Reset keeps the mode.
// Statuses come at these times after the delivery, multiplied by Mode.Scale (1 = real
// time; 0.01: a minute takes 600ms; RealisticTimings and FlowDuration give them):
//
//	105 at once (it comes with the aanleverResponse); then 100 +1m; 110 +20s; 200 or 210
//	+20s; 301 or 311 +1m (a second 301 +30s); 405 +30s; 400 +1m; 500 or 510 +4m;
//	410 2m after 405; 420 1m after 405, then 400 1h after it when a retry succeeds, or
//	the final 420 (AFS600) 72h after the first.
//
//	Happyflow                      105 0s, 100 1m, 110 1m20s, 200 1m40s, 301 2m40s,
//	                               301 3m10s, 405 3m40s, 400 4m40s, 500 8m40s
//	Afleverfout                    … 405 3m40s, 410 5m40s
//	Foutuitvragendepartij          … 405 3m40s, 400 4m40s, 510 8m40s
//	TechnischProbleemAfleveren     … 405 3m40s, 420 4m40s, 400 1h4m40s, 500 1h8m40s
//	MaximaalAantalAfleverpogingen  … 405 3m40s, 420 4m40s, 420 AFS600 72h4m40s
//	KoerierValidatieNietGelukt     105 0s, 100 1m, 110 1m20s, 200 1m40s, 311 2m40s
//	unknown certificate            105 0s, 100 1m, 110 1m20s, 210 1m40s
//
// Logius publishes no durations for the steps ("verloopt meestal direct", Statussen en
// foutcodes Digipoort v1.6); it does say that a 420 is retried for 72 hours and then
// ends with AFS600. The minutes are a deliberately unhurried ordinary day: a client
// that polls right after delivering sees only 105, and an answer lost in transit is
// looked up while the process is still running, the cases the default mode's
// sub-second flows hide. Injected statuses (POST /sim/statuses) follow the flow a
// scaled minute apart.
//
// # Control API
//
// A separate plain-HTTP listener (Options.ControlAddr, default 127.0.0.1:0; the binary
// uses 127.0.0.1:8444) serves JSON:
//
//	GET    /sim/health                      {"ok": true, "url": "https://127.0.0.1:…", "mode": Mode}
//	GET    /sim/mode                        {"realistic": false, "scale": 1, "flows": {"Happyflow": "8s", …}}
//	                                        (flows, read-only: how long each scenario's flow takes now)
//	PUT    /sim/mode                        {"realistic": true, "scale"?: 0.01}  -> 200 and the GET body
//	                                        realistic is required; scale in (0, 1], default 1 (real
//	                                        time); anything else -> 400 {"error": "…"}
//	GET    /sim/env[?pfx=1]                 the KOERIER_DIGIPOORT_* lines (text/plain)
//	GET    /sim/deliveries                  {"deliveries": {"<aanleverkenmerk>": DeliveryStats}}
//	GET    /sim/deliveries/{aanleverkenmerk} DeliveryStats: {"aanleverkenmerk", "attempts", "accepted",
//	                                        "duplicates", "repeated", "received", "kenmerken": [...],
//	                                        "processes": [ProcessInfo: {"kenmerk", "berichtsoort",
//	                                        "belanghebbende", "aangeleverd", "scenario", "realistic",
//	                                        "repeat", "status", "ended", "flow_ends", "inhoud": Content,
//	                                        "bijlagen": [Content]}], "scenario"}; Content is {"mime_type",
//	                                        "bestandsnaam", "size", "sha256"} of the decoded document
//	GET    /sim/calls                       {"calls": {"aanleveren": 3, "getStatussenProces": 7, …}, "total": 10}
//	GET    /sim/scenarios                   {"scenarios": [...], "overrides": {"<aanleverkenmerk>": "Afleverfout"}}
//	PUT    /sim/scenarios/{aanleverkenmerk} {"scenario": "Afleverfout"}            -> 204
//	DELETE /sim/scenarios/{aanleverkenmerk}                                       -> 204
//	POST   /sim/statuses/{aanleverkenmerk} InjectedStatus: {"code", "description"?, "for_kenmerk"?}  -> 204
//	POST   /sim/pickups                     Pickup: {"kenmerk"?, "berichtsoort", "identiteit": {"nummer", "type"},
//	                                        "aanleverkenmerk"?, "rol"?, "mime_type"?, "bestandsnaam"?,
//	                                        "inhoud"? (base64), "tijdstempel"? (RFC 3339)}
//	                                        -> 201 {"kenmerk", "berichtkenmerk"}
//	GET    /sim/faults                      {"faults": {"<operation>": FaultConfig}}
//	PUT    /sim/faults/{operation}          FaultConfig, operation = WSDL name or "*"  -> 204
//	DELETE /sim/faults[/{operation}]                                              -> 204
//	POST   /sim/reset                       forget everything but the mode           -> 204
//
// FaultConfig is {"http500": Rule, "overload": Rule, "slow": Rule, "timeout": Rule,
// "tamper": Rule, "unsigned": Rule} with Rule {"count": n, "probability": p,
// "max": m, "delay": "2s"}: the next n requests get the fault, after that each with
// probability p from a generator seeded by Options.Seed, at most m times in all. A
// timeout processes the request (a delivery is accepted and counted) and then does not
// answer for delay (default 10m) before breaking the connection: the client cannot
// know whether its request arrived. See FaultConfig for the others.
package simulator
