package digipoort

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beevik/etree"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"koerier/digipoort/internal/wire"
	"koerier/digipoort/wsse"
)

const opDeliver = wire.OpAanleveren

// Client talks to Digipoort's WUS 2.0 services (koppelvlak 1.2). It is safe for
// concurrent use.
type Client struct {
	cfg       Config
	endpoints Endpoints
	ids       []*identity
	caCerts   []*x509.Certificate
	trust     func(*x509.Certificate, time.Time) error
	log       logrus.FieldLogger
	now       func() time.Time
	timeout   time.Duration
	tol       time.Duration // negative: time check off (InsecureSkipTimestampCheckForTests)
	maxResp   int64         // zero: the default per operation
	inUse     atomic.Int64  // index+1 of the client certificate last used, for the switch-over log line
	// newMessageID makes the wsa:MessageID of a request; nil means a random UUID
	// (tests fix it to replay a response signed in advance).
	newMessageID func() string
}

// identity is one client certificate with its own HTTP transport, so that a call's
// TLS connection and its signature always use the same certificate (a connection
// kept alive from before a switch-over cannot carry a request signed with the other).
type identity struct {
	named namedCert
	creds wsse.Credentials
	http  *http.Client
}

// New checks cfg and returns a client with a mutual-TLS (1.2+) HTTP transport per
// client certificate.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, endpoints: cfg.endpoints(), caCerts: cfg.ServerCACertificates, now: cfg.Now, timeout: cfg.HTTPTimeout,
		tol: cfg.TimestampTolerance, maxResp: cfg.MaxResponseBytes}
	if c.now == nil {
		c.now = time.Now
	}
	if c.timeout == 0 {
		c.timeout = DefaultHTTPTimeout
	}
	if c.tol == 0 {
		c.tol = DefaultTimestampTolerance
	}
	if cfg.InsecureSkipTimestampCheckForTests {
		c.tol = -1 // wsse: a negative tolerance skips the time check
	}
	if c.cfg.AutorisatieAdres == "" {
		c.cfg.AutorisatieAdres = DefaultAutorisatieAdres
	}
	c.log = cfg.Logger
	if c.log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		c.log = l
	}
	c.trust = wsse.TrustCertificatesAt(cfg.SigningCertificates)
	roots := cfg.ServerCAs
	if roots == nil {
		roots = poolOf(cfg.ServerCACertificates)
	}
	for _, nc := range cfg.clientCertificates() {
		tr := &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{nc.cert},
				RootCAs:      roots,
				// Some Digipoort front ends ask for the client certificate through a
				// renegotiation.
				Renegotiation: tls.RenegotiateOnceAsClient,
			},
			TLSHandshakeTimeout: 30 * time.Second,
			// As many kept connections as calls run at once (deliveries in many activities,
			// status and pickup calls in parallel): a connection not kept is a new mutual-TLS
			// handshake, two RSA signatures, for the next call.
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
		c.ids = append(c.ids, &identity{
			named: nc,
			creds: wsse.Credentials{Certificate: nc.cert.Leaf, Key: nc.cert.PrivateKey.(crypto.Signer)},
			http:  &http.Client{Transport: tr, Timeout: c.timeout, CheckRedirect: refuseRedirect},
		})
	}
	return c, nil
}

// refuseRedirect makes the HTTP client hand a redirect back instead of following it:
// following a 307/308 would POST the signed request — a tax return — to whatever
// address the answer names, and a 301/302 would turn it into a GET that loses it.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// SignedResponse is a response whose signature verified, exactly as Digipoort sent
// it: the bytes are kept, not re-serialised, because a signed answer is the proof
// that a return was delivered on time and only the original bytes still verify.
type SignedResponse struct {
	Op               string
	RequestMessageID string
	Received         time.Time
	Body             []byte
}

type recorderKey struct{}

// WithResponseRecorder returns a context under which every call hands each response
// whose signature verified and that answers the call's request (its wsa:RelatesTo and
// wsa:Action match) to record before the call returns (also when the payload then
// turns out to be an error, such as a statusFoutcode: that is evidence too). Faults
// are unsigned and are not recorded.
func WithResponseRecorder(ctx context.Context, record func(SignedResponse)) context.Context {
	return context.WithValue(ctx, recorderKey{}, record)
}

// Close releases idle connections.
func (c *Client) Close() {
	for _, id := range c.ids {
		id.http.CloseIdleConnections()
	}
}

// identity returns the client certificate to use now (see
// Config.NextClientCertificate) and logs when that changes.
func (c *Client) identity(op string) (*identity, error) {
	named := make([]namedCert, len(c.ids))
	for i, id := range c.ids {
		named[i] = id.named
	}
	i, err := chooseClientCertificate(named, c.now())
	if err != nil {
		return nil, newError(op, Final, err.Error(), nil)
	}
	id := c.ids[i]
	if prev := c.inUse.Swap(int64(i + 1)); prev != int64(i+1) {
		msg := "digipoort client certificate in use"
		if prev != 0 {
			msg = "digipoort client certificate switched"
		}
		l := id.named.cert.Leaf
		c.log.WithFields(logrus.Fields{"role": string(id.named.role), "subject": l.Subject.CommonName, "serial": serialHex(l),
			"not_after": l.NotAfter.UTC().Format(time.RFC3339)}).Info(msg)
	}
	return id, nil
}

// maxResponse is the bound on the response of op.
func (c *Client) maxResponse(op string) int64 {
	if c.maxResp > 0 {
		return c.maxResp
	}
	if svc, _ := wire.ServiceOf(op); svc == wire.Ophaal {
		return DefaultMaxPickupResponseBytes
	}
	return DefaultMaxResponseBytes
}

// call sends one signed request and returns the verified response payload decoded
// into out.
func (c *Client) call(ctx context.Context, op string, payload any, out any) (err error) {
	svc, _ := wire.ServiceOf(op)
	endpoint := c.endpoints.forService(svc)
	start := time.Now()
	if c.cfg.Observe != nil {
		defer func() { c.cfg.Observe(op, time.Since(start), err) }()
	}

	id, err := c.identity(op)
	if err != nil {
		return err
	}
	el, err := marshalElement(payload)
	if err != nil {
		return newError(op, Final, "cannot encode the request", err)
	}
	messageID := "urn:uuid:" + uuid.NewString()
	if c.newMessageID != nil {
		messageID = c.newMessageID()
	}
	env, err := wsse.SignedEnvelope(el, wsse.Addressing{
		To:        endpoint,
		Action:    wire.RequestAction(svc, op),
		MessageID: messageID,
		ReplyTo:   wsse.AnonymousAddress,
	}, id.creds, wsse.SignOptions{Algorithm: c.cfg.algorithm(), Created: c.now()})
	if err != nil {
		return newError(op, Final, "cannot sign the request with the client certificate", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(env))
	if err != nil {
		return newError(op, Final, "cannot build the HTTP request for "+endpoint+"; check "+endpointSettings, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+wire.RequestAction(svc, op)+`"`)

	resp, err := id.http.Do(req)
	if err != nil {
		e := c.transportError(op, ctx, err)
		c.log.WithFields(logrus.Fields{"op": op, "kind": e.Kind.String(), "duration": time.Since(start).Round(time.Millisecond)}).
			Debug("digipoort call failed")
		return e
	}
	defer resp.Body.Close()
	err = c.response(ctx, op, endpoint, messageID, resp, out, start)
	var e *Error
	if op == opDeliver && errors.As(err, &e) && e.HTTPStatus != 0 && e.Foutcode == "" && !strings.Contains(e.Msg, "DeliveryCandidates") {
		// No Digipoort fault: Digipoort may have processed the delivery and only its
		// answer is unusable.
		e.Msg += "; Digipoort may nevertheless have accepted the delivery: look it up (DeliveryCandidates) before delivering again"
	}
	return err
}

// response reads, verifies and decodes one HTTP response.
func (c *Client) response(ctx context.Context, op, endpoint, messageID string, resp *http.Response, out any, start time.Time) error {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return &Error{Op: op, Kind: Final, HTTPStatus: resp.StatusCode,
			Msg: fmt.Sprintf("%s answered HTTP %d, redirecting to %q; the client does not follow redirects, because that would send the signed "+
				"request elsewhere: check %s, and if Logius moved the service, configure its new URL", endpoint, resp.StatusCode,
				resp.Header.Get("Location"), endpointSettings)}
	}
	limit := c.maxResponse(op)
	tooLarge := func(n int64) error {
		return &Error{Op: op, Kind: Final, HTTPStatus: resp.StatusCode,
			Msg: fmt.Sprintf("response of %d bytes or more, larger than the %d bytes allowed for %s; refusing to read it (for pickup, ask for "+
				"a shorter time window; otherwise raise %s or Config.MaxResponseBytes if this is legitimate)", n, limit, op, EnvMaxResponseMiB)}
	}
	if resp.ContentLength > limit {
		return tooLarge(resp.ContentLength)
	}
	data, err := readBody(resp.Body, resp.ContentLength, limit)
	if err != nil {
		e := c.transportError(op, ctx, err)
		e.HTTPStatus = resp.StatusCode
		return e
	}
	c.log.WithFields(logrus.Fields{"op": op, "http_status": resp.StatusCode, "bytes": len(data),
		"duration": time.Since(start).Round(time.Millisecond)}).Debug("digipoort call")
	if int64(len(data)) > limit {
		return tooLarge(int64(len(data)))
	}
	return c.decodeResponse(op, resp.StatusCode, data, messageID, out, func() {
		if rec, ok := ctx.Value(recorderKey{}).(func(SignedResponse)); ok {
			rec(SignedResponse{Op: op, RequestMessageID: messageID, Received: c.now(), Body: data})
		}
	})
}

// readBody reads at most limit+1 bytes. With a Content-Length it reads into one
// buffer of that size: growing a buffer by doubling would, for a large pickup, hold
// up to twice the response plus the garbage of every smaller step.
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength <= 0 || contentLength > limit {
		return io.ReadAll(io.LimitReader(r, limit+1))
	}
	buf := make([]byte, contentLength+1) // one more to notice a body longer than announced
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return nil, fmt.Errorf("the response body is longer than its Content-Length %d", contentLength)
	case errors.Is(err, io.ErrUnexpectedEOF) && int64(n) == contentLength:
		return buf[:n:n], nil
	}
	return nil, fmt.Errorf("response body broke off after %d of %d bytes: %w", n, contentLength, err)
}

// decodeResponse turns a raw HTTP response into out or a typed error: faults become
// *Error with their foutcode; anything else must be a signed envelope that verifies
// against the trusted signing certificates, answers this request (wsa:RelatesTo is
// its MessageID, wsa:Action the operation's response action) and carries the expected
// payload element.
func (c *Client) decodeResponse(op string, httpStatus int, data []byte, requestMessageID string, out any, verified func()) error {
	svc, _ := wire.ServiceOf(op)
	m, perr := wsse.Parse(data)
	if perr == nil && m.Fault != nil {
		f := m.Fault
		return faultError(op, httpStatus, f.CodeLocal(), f.String, f.Foutcode, f.Foutbeschrijving)
	}
	switch {
	case httpStatus >= 500 || httpStatus == http.StatusRequestTimeout || httpStatus == http.StatusTooManyRequests:
		return &Error{Op: op, Kind: Transient, HTTPStatus: httpStatus, Err: perr,
			Msg: fmt.Sprintf("HTTP %d from Digipoort without a Digipoort fault; retry later", httpStatus)}
	case httpStatus != http.StatusOK:
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: perr,
			Msg: fmt.Sprintf("HTTP %d from Digipoort; check %s", httpStatus, endpointSettings)}
	case perr != nil:
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: perr, Msg: "malformed response from Digipoort"}
	}
	if _, err := m.Verify(wsse.VerifyOptions{TrustAt: c.trust, Now: c.now(), Tolerance: c.tol}); err != nil {
		return verifyError(op, httpStatus, err)
	}
	// Verify guarantees that every addressing header directly under the Header is
	// signed; that they are there at all is for the client to demand. Digipoort always
	// sends both (see the captured responses): without RelatesTo a signed answer to
	// another request — replayed or misrouted — would pass as the answer to this one.
	a := m.Addressing
	switch want := wire.ResponseAction(svc, op); {
	case a.Action == "":
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response has no wsa:Action header (directly under the SOAP Header); want %q: it cannot be trusted as the answer", want)}
	case a.Action != want:
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response has wsa:Action %q, want %q", a.Action, want)}
	case a.RelatesTo == "":
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: "response has no wsa:RelatesTo header (directly under the SOAP Header): it cannot be tied to this request (" + requestMessageID + ")"}
	case a.RelatesTo != requestMessageID:
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response relates to message %s, not to this request (%s)", a.RelatesTo, requestMessageID)}
	}
	if verified != nil {
		verified()
	}
	p := m.Payload()
	if p == nil || p.Tag != op2response(op) || p.NamespaceURI() != wire.NS {
		got := "nothing"
		if p != nil {
			got = "{" + p.NamespaceURI() + "}" + p.Tag
		}
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response Body holds %s, want {%s}%s", got, wire.NS, op2response(op))}
	}
	target := out
	if br, ok := out.(*berichtenResponse); ok {
		// Pickup content (up to 20 MiB a message) is decoded straight from the verified
		// tree and then dropped from it, so that re-serialising the payload and
		// encoding/xml do not each make more copies of it.
		contents, err := takeContents(p)
		if err != nil {
			return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: err, Msg: "cannot decode the response payload"}
		}
		br.contents, target = contents, &br.BerichtenResponse
	}
	x, err := m.PayloadXML()
	if err == nil {
		err = xml.Unmarshal(x, target)
	}
	if err != nil {
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: err, Msg: "cannot decode the response payload"}
	}
	return nil
}

func op2response(op string) string {
	if op == wire.OpAanleveren {
		return "aanleverResponse"
	}
	return op + "Response"
}

func verifyError(op string, httpStatus int, err error) *Error {
	e := &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: err}
	switch {
	case errors.Is(err, wsse.ErrUnsigned):
		e.Msg = "the response is not signed; an unsigned success response cannot be trusted"
	case errors.Is(err, wsse.ErrSignature):
		e.Msg = "the response signature does not verify: it was altered or not signed by Digipoort; do not trust it"
	case errors.Is(err, wsse.ErrUntrusted):
		e.Msg = "the response is signed by a certificate that is not trusted; if Digipoort renewed its signing certificate, " +
			"put the new one in KOERIER_DIGIPOORT_SIGNING_CERT"
	case errors.Is(err, wsse.ErrTimestamp):
		e.Msg = "the response's security timestamp is not acceptable; check this machine's clock (or " +
			EnvTimestampTolerance + ")"
	default:
		e.Msg = "malformed response from Digipoort"
	}
	return e
}

// marshalElement encodes a payload struct as an etree element.
func marshalElement(v any) (*etree.Element, error) {
	b, err := xml.Marshal(v)
	if err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}
