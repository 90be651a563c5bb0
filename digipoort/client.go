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
	cfg     Config
	http    *http.Client
	creds   wsse.Credentials
	trust   func(*x509.Certificate) error
	log     logrus.FieldLogger
	now     func() time.Time
	timeout time.Duration
	tol     time.Duration
	maxResp int64
}

// New checks cfg and returns a client with a mutual-TLS (1.2+) HTTP transport.
func New(cfg Config) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, now: cfg.Now, timeout: cfg.HTTPTimeout, tol: cfg.TimestampTolerance, maxResp: cfg.MaxResponseBytes}
	if c.now == nil {
		c.now = time.Now
	}
	if c.timeout == 0 {
		c.timeout = DefaultHTTPTimeout
	}
	if c.tol == 0 {
		c.tol = DefaultTimestampTolerance
	}
	if c.maxResp <= 0 {
		c.maxResp = DefaultMaxResponseBytes
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
	c.creds = wsse.Credentials{Certificate: cfg.ClientCertificate.Leaf, Key: cfg.ClientCertificate.PrivateKey.(crypto.Signer)}
	c.trust = wsse.TrustCertificates(cfg.SigningCertificates)
	c.cfg.URL = strings.TrimRight(cfg.URL, "/")
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cfg.ClientCertificate},
			RootCAs:      cfg.ServerCAs,
			// Some Digipoort front ends ask for the client certificate through a
			// renegotiation.
			Renegotiation: tls.RenegotiateOnceAsClient,
		},
		TLSHandshakeTimeout: 30 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	c.http = &http.Client{Transport: tr, Timeout: c.timeout}
	return c, nil
}

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
// whose signature verified to record before the call returns (also when the payload
// then turns out to be an error, such as a statusFoutcode: that is evidence too).
// Faults are unsigned and are not recorded.
func WithResponseRecorder(ctx context.Context, record func(SignedResponse)) context.Context {
	return context.WithValue(ctx, recorderKey{}, record)
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// call sends one signed request and returns the verified response payload decoded
// into out.
func (c *Client) call(ctx context.Context, op string, payload any, out any) error {
	svc, _ := wire.ServiceOf(op)
	endpoint := c.cfg.URL + svc.Path
	start := time.Now()

	el, err := marshalElement(payload)
	if err != nil {
		return newError(op, Final, "cannot encode the request", err)
	}
	messageID := "urn:uuid:" + uuid.NewString()
	env, err := wsse.SignedEnvelope(el, wsse.Addressing{
		To:        endpoint,
		Action:    wire.RequestAction(svc, op),
		MessageID: messageID,
		ReplyTo:   wsse.AnonymousAddress,
	}, c.creds, wsse.SignOptions{Algorithm: c.cfg.algorithm(), Created: c.now()})
	if err != nil {
		return newError(op, Final, "cannot sign the request with the client certificate", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(env))
	if err != nil {
		return newError(op, Final, "cannot build the HTTP request; check KOERIER_DIGIPOORT_URL", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+wire.RequestAction(svc, op)+`"`)

	resp, err := c.http.Do(req)
	if err != nil {
		e := transportError(op, ctx, err, c.timeout.String())
		c.log.WithFields(logrus.Fields{"op": op, "kind": e.Kind.String(), "duration": time.Since(start).Round(time.Millisecond)}).
			Debug("digipoort call failed")
		return e
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		e := transportError(op, ctx, err, c.timeout.String())
		e.HTTPStatus = resp.StatusCode
		return e
	}
	c.log.WithFields(logrus.Fields{"op": op, "http_status": resp.StatusCode, "bytes": len(data),
		"duration": time.Since(start).Round(time.Millisecond)}).Debug("digipoort call")
	if int64(len(data)) > c.maxResp {
		return &Error{Op: op, Kind: Final, HTTPStatus: resp.StatusCode,
			Msg: fmt.Sprintf("response larger than %d bytes; refusing to read it (raise Config.MaxResponseBytes if this is legitimate)", c.maxResp)}
	}
	err = c.decodeResponse(op, resp.StatusCode, data, messageID, out, func() {
		if rec, ok := ctx.Value(recorderKey{}).(func(SignedResponse)); ok {
			rec(SignedResponse{Op: op, RequestMessageID: messageID, Received: c.now(), Body: data})
		}
	})
	var e *Error
	if op == opDeliver && errors.As(err, &e) && e.Foutcode == "" && !strings.Contains(e.Msg, "DeliveryCandidates") {
		// No Digipoort fault: Digipoort may have processed the delivery and only its
		// answer is unusable.
		e.Msg += "; Digipoort may nevertheless have accepted the delivery: look it up (DeliveryCandidates) before delivering again"
	}
	return err
}

// decodeResponse turns a raw HTTP response into out or a typed error: faults become
// *Error with their foutcode; anything else must be a signed envelope that verifies
// against the trusted signing certificates, answers this request and carries the
// expected payload element.
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
			Msg: fmt.Sprintf("HTTP %d from Digipoort; check KOERIER_DIGIPOORT_URL (base URL of the WUS services)", httpStatus)}
	case perr != nil:
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus, Err: perr, Msg: "malformed response from Digipoort"}
	}
	if _, err := m.Verify(wsse.VerifyOptions{Trust: c.trust, Now: c.now(), Tolerance: c.tol}); err != nil {
		return verifyError(op, httpStatus, err)
	}
	if verified != nil {
		verified()
	}
	if want := wire.ResponseAction(svc, op); m.Addressing.Action != "" && m.Addressing.Action != want {
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response has wsa:Action %q, want %q", m.Addressing.Action, want)}
	}
	if requestMessageID != "" && m.Addressing.RelatesTo != "" && m.Addressing.RelatesTo != requestMessageID {
		return &Error{Op: op, Kind: Final, HTTPStatus: httpStatus,
			Msg: fmt.Sprintf("response relates to message %s, not to this request (%s)", m.Addressing.RelatesTo, requestMessageID)}
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
	x, err := m.PayloadXML()
	if err == nil {
		err = xml.Unmarshal(x, out)
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
