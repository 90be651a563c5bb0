package digipoort

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"koerier/digipoort/wsse"
)

// SignatureAlgorithm is the algorithm requests are signed with.
type SignatureAlgorithm = wsse.Algorithm

const (
	// SignatureRSASHA1 (with SHA-1 digests) is what Digipoort's WSDL prescribes; the
	// default.
	SignatureRSASHA1 = wsse.RSASHA1
	// SignatureRSASHA256 (with SHA-256 digests), should Digipoort require it.
	SignatureRSASHA256 = wsse.RSASHA256
)

const (
	// DefaultTimestampTolerance is the clock skew allowed when checking the
	// Created/Expires of a response's security timestamp.
	DefaultTimestampTolerance = 5 * time.Minute
	// MaxTimestampTolerance bounds the tolerance the environment may set: Digipoort's
	// timestamps expire ten minutes after they were made, and a tolerance of hours
	// would let an old, captured response be replayed as if it were fresh.
	MaxTimestampTolerance = time.Hour
	// DefaultHTTPTimeout bounds one request/response exchange (a 20 MiB delivery
	// included).
	DefaultHTTPTimeout = 2 * time.Minute
	// DefaultAutorisatieAdres is what every public WUS client sends as
	// autorisatieAdres when no authorisation service (AuSP) is registered.
	DefaultAutorisatieAdres = "http://geenausp.nl"
	// DefaultMaxResponseBytes bounds the response of every operation but pickup:
	// deliver, status and list answers are kilobytes (a status list with validation
	// details of a large return stays well under a megabyte), so 16 MiB is ample and
	// keeps a misbehaving server from making the worker hold hundreds of MiB.
	DefaultMaxResponseBytes = 16 << 20
	// DefaultMaxPickupResponseBytes bounds a pickup response (getBerichten,
	// getBerichtenKenmerk, …): a picked-up message may be up to 20 MiB (27 MiB as
	// base64), and 64 MiB holds two of those. A larger answer is refused with the
	// advice to narrow the time window or raise the bound; see MaxResponseBytes for
	// what a response costs in memory.
	DefaultMaxPickupResponseBytes = 64 << 20
	// MaxResponseMiBAllowed is the most KOERIER_DIGIPOORT_MAX_RESPONSE_MIB may set. A
	// verified response costs 5 to 7 times its size at the peak (measured: 80 MiB, 464
	// MiB of heap), so a 128 MiB answer is close to 1 GiB on its own; it holds four
	// messages of the 20 MiB maximum (27 MiB as base64 each), more than one kenmerk's
	// replies have any reason to be. A worker that may hold more than that per answer,
	// with two pickups at once (activities.ReceivePickup), risks being killed for memory
	// in the middle of every pickup instead of refusing the one answer that is too large.
	MaxResponseMiBAllowed = 128
)

// Environment variables read by ConfigFromEnv.
const (
	EnvEnvironment         = "KOERIER_DIGIPOORT_ENVIRONMENT"
	EnvURL                 = "KOERIER_DIGIPOORT_URL"
	EnvAanleverURL         = "KOERIER_DIGIPOORT_AANLEVER_URL"
	EnvStatusinformatieURL = "KOERIER_DIGIPOORT_STATUSINFORMATIE_URL"
	EnvOphaalURL           = "KOERIER_DIGIPOORT_OPHAAL_URL"

	EnvClientCert        = "KOERIER_DIGIPOORT_CLIENT_CERT"
	EnvClientKey         = "KOERIER_DIGIPOORT_CLIENT_KEY"
	EnvClientPFX         = "KOERIER_DIGIPOORT_CLIENT_PFX"
	EnvClientPFXPassword = "KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD"

	EnvClientCertNext        = "KOERIER_DIGIPOORT_CLIENT_CERT_NEXT"
	EnvClientKeyNext         = "KOERIER_DIGIPOORT_CLIENT_KEY_NEXT"
	EnvClientPFXNext         = "KOERIER_DIGIPOORT_CLIENT_PFX_NEXT"
	EnvClientPFXPasswordNext = "KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD_NEXT"

	EnvCA                 = "KOERIER_DIGIPOORT_CA"
	EnvSigningCert        = "KOERIER_DIGIPOORT_SIGNING_CERT"
	EnvTimestampTolerance = "KOERIER_DIGIPOORT_TIMESTAMP_TOLERANCE"
	EnvSignature          = "KOERIER_DIGIPOORT_SIGNATURE"
	EnvTimeout            = "KOERIER_DIGIPOORT_TIMEOUT"
	EnvAutorisatieAdres   = "KOERIER_DIGIPOORT_AUTORISATIEADRES"
	EnvMaxResponseMiB     = "KOERIER_DIGIPOORT_MAX_RESPONSE_MIB"
)

// EnvVariables lists every variable ConfigFromEnv reads (tests clear them all so that
// a developer's own settings do not leak in).
func EnvVariables() []string {
	return []string{EnvEnvironment, EnvURL, EnvAanleverURL, EnvStatusinformatieURL, EnvOphaalURL,
		EnvClientCert, EnvClientKey, EnvClientPFX, EnvClientPFXPassword,
		EnvClientCertNext, EnvClientKeyNext, EnvClientPFXNext, EnvClientPFXPasswordNext,
		EnvCA, EnvSigningCert, EnvTimestampTolerance, EnvSignature, EnvTimeout, EnvAutorisatieAdres, EnvMaxResponseMiB}
}

// endpointSettings names the ways to set the endpoints, for error messages.
const endpointSettings = EnvEnvironment + " / " + EnvURL + " / the per-service URLs"

// Config configures a Client.
type Config struct {
	// URL is a base URL of the WUS services, e.g. the simulator's
	// https://127.0.0.1:8443; the client appends
	// /wus/2.0/{aanleverservice,statusinformatieservice,ophaalservice}/1.2. Set either
	// URL or Endpoints.
	URL string
	// Endpoints are the three service URLs (PresetEndpoints gives Logius'). Set
	// either URL or Endpoints.
	Endpoints Endpoints
	// ClientCertificate is the PKIoverheid certificate and RSA key used for mutual
	// TLS and to sign requests (Leaf must be set; the Load* helpers do).
	ClientCertificate tls.Certificate
	// NextClientCertificate is optional: a second client certificate for the
	// switch-over to a renewed one. Of the two, each call uses the one that is valid
	// at that moment and expires last — for TLS and for the signature alike — and never
	// an expired or not yet valid one. Using the renewed certificate as soon as it is
	// valid (rather than when the old one runs out) means a problem with it (say,
	// Digipoort does not accept it: status 210) shows while the old one still works:
	// removing the new one switches back.
	NextClientCertificate tls.Certificate
	// ServerCAs verifies Digipoort's TLS server certificate.
	ServerCAs *x509.CertPool
	// ServerCACertificates are the certificates in ServerCAs, when known (ConfigFromEnv
	// fills them; New builds ServerCAs from them when ServerCAs is nil). With them an
	// untrusted server certificate is explained: which CA the bundle lacks.
	ServerCACertificates []*x509.Certificate
	// SigningCertificates are trusted to sign responses: a response's signing
	// certificate must be one of them (pinning) or chain to one that is a CA
	// certificate. See wsse.TrustCertificates.
	SigningCertificates []*x509.Certificate
	// SignatureAlgorithm signs requests; zero means RSA-SHA1.
	SignatureAlgorithm SignatureAlgorithm
	// TimestampTolerance is the clock skew allowed on response timestamps; zero means
	// DefaultTimestampTolerance. It cannot be negative: the check is never off in
	// service (see InsecureSkipTimestampCheckForTests).
	TimestampTolerance time.Duration
	// InsecureSkipTimestampCheckForTests switches the time check of response
	// timestamps off (the timestamp must still be present and signed). It exists for
	// tests that verify captured responses whose timestamps expired long ago; in a
	// service it would let a replayed old response pass as new. No environment
	// variable sets it.
	InsecureSkipTimestampCheckForTests bool
	// HTTPTimeout bounds each call; zero means DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// AutorisatieAdres is sent as autorisatieAdres in every request; empty means
	// DefaultAutorisatieAdres. The XSD makes it mandatory on status and pickup calls
	// when the requester is not the belanghebbende (role Intermediair), and every
	// public WUS client sends http://geenausp.nl ("no AuSP") on every call.
	AutorisatieAdres string
	// MaxResponseBytes bounds a response body of any operation; zero means the
	// defaults per operation (DefaultMaxResponseBytes, DefaultMaxPickupResponseBytes).
	// A verified response of n bytes costs the client 5 to 7 times n of heap at its
	// peak (the bytes, kept as evidence; the parsed tree; the canonical form the
	// signature is checked on, built in a growing buffer); see
	// BenchmarkResponseMemory.
	MaxResponseBytes int64
	// Logger receives one debug line per call (operation, status, duration; never
	// message content or key material) and an info line when the client certificate
	// in use changes. Nil discards.
	Logger logrus.FieldLogger
	// Now is the clock for request and response timestamps and for choosing the
	// client certificate; nil means time.Now.
	Now func() time.Time
	// Observe, when set, is called after every SOAP call with its operation
	// (aanleveren, getStatussenProces, …), how long it took and its error (nil when
	// it succeeded); the worker's metrics use it. It must return quickly: it runs on
	// the caller's goroutine.
	Observe func(operation string, took time.Duration, err error)

	// sources name where ConfigFromEnv read each certificate from, for the
	// certificate listing.
	sources certSources
}

type certSources struct {
	client, next, signing string
}

// ConfigFromEnv reads the client configuration from the environment.
//
// Endpoints — exactly one of the three ways (setting two is an error, so that it is
// never unclear which one wins):
//
//	KOERIER_DIGIPOORT_ENVIRONMENT          production, preproduction or conformance (Logius' published URLs)
//	KOERIER_DIGIPOORT_URL                  a base URL (https://…) under which the client appends /wus/2.0/<service>/1.2,
//	                                       as the simulator and docker-compose use it
//	KOERIER_DIGIPOORT_AANLEVER_URL         } the three service URLs, all three: a service left out
//	KOERIER_DIGIPOORT_STATUSINFORMATIE_URL } would otherwise silently go to another environment
//	KOERIER_DIGIPOORT_OPHAAL_URL           }
//
// Certificates (PEM or DER where a file holds certificates only):
//
//	KOERIER_DIGIPOORT_CLIENT_CERT          PEM client certificate (chain) file  } one of the
//	KOERIER_DIGIPOORT_CLIENT_KEY           PEM private key file                 } two pairs
//	KOERIER_DIGIPOORT_CLIENT_PFX           PKCS#12/PFX file with cert and key   } is
//	KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD  its password                         } required
//	KOERIER_DIGIPOORT_CLIENT_CERT_NEXT, _CLIENT_KEY_NEXT, or _CLIENT_PFX_NEXT, _CLIENT_PFX_PASSWORD_NEXT
//	                                       optional second client certificate for the switch-over to a renewed one:
//	                                       each call uses the valid one that expires last (Config.NextClientCertificate)
//	KOERIER_DIGIPOORT_CA                   CA bundle for Digipoort's TLS server certificate, required; it must hold the
//	                                       intermediate CA certificates as well as the root
//	KOERIER_DIGIPOORT_SIGNING_CERT         certificate(s) trusted to sign responses, required
//
// Other settings:
//
//	KOERIER_DIGIPOORT_TIMESTAMP_TOLERANCE  positive Go duration, at most 1h (default 5m); the check cannot be switched off
//	KOERIER_DIGIPOORT_SIGNATURE            rsa-sha1 (default) or rsa-sha256
//	KOERIER_DIGIPOORT_TIMEOUT              Go duration per call (default 2m)
//	KOERIER_DIGIPOORT_AUTORISATIEADRES     autorisatieAdres sent with every request (default http://geenausp.nl)
//	KOERIER_DIGIPOORT_MAX_RESPONSE_MIB     bound on any response in MiB, at most 128 (default 16 per call, 64 for pickup)
//
// Every problem is reported (on one line, separated by "; "), each naming the
// variable and what belongs in it.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.LookupEnv) }

// ConfigFromLookup is ConfigFromEnv with another source of variables.
func ConfigFromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var cfg Config
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	endpointsFromEnv(get, &cfg, bad)

	var ok bool
	cfg.ClientCertificate, cfg.sources.client, ok = clientCertFromEnv(get, lookup, "", bad)
	if !ok && cfg.sources.client == "" {
		bad("no client certificate: set %s and %s (PEM certificate and key files) or %s and %s (PKCS#12/PFX file and its password)",
			EnvClientCert, EnvClientKey, EnvClientPFX, EnvClientPFXPassword)
	}
	cfg.NextClientCertificate, cfg.sources.next, _ = clientCertFromEnv(get, lookup, "_NEXT", bad)
	if sameCertificate(cfg.ClientCertificate.Leaf, cfg.NextClientCertificate.Leaf) {
		bad("%s and %s hold the same certificate: put the renewed certificate in the _NEXT variables, or unset them",
			cfg.sources.client, cfg.sources.next)
	}

	if f := get(EnvCA); f == "" {
		bad("%s is not set: put the bundle of the CA certificates that issued Digipoort's TLS server certificate in it "+
			"(the intermediate CAs as well as the root)", EnvCA)
	} else if certs, err := LoadCertificates(f); err != nil {
		bad("%s=%s: %v (it must hold the CA certificates, PEM or DER, that issued Digipoort's TLS server certificate)", EnvCA, f, err)
	} else {
		cfg.ServerCACertificates = certs
		cfg.ServerCAs = poolOf(certs)
	}

	if f := get(EnvSigningCert); f == "" {
		bad("%s is not set: put the certificate(s) Digipoort signs its responses with in it (PEM or DER)", EnvSigningCert)
	} else if certs, err := LoadCertificates(f); err != nil {
		bad("%s=%s: %v (it must hold the certificate(s), PEM or DER, Digipoort signs its responses with)", EnvSigningCert, f, err)
	} else if ca := firstCA(certs); ca != nil {
		// A trusted CA would trust every certificate it issues: for a PKIoverheid CA,
		// many organisations, the filer perhaps among them, who could then sign its
		// own "delivered on time". Digipoort's own certificate is pinned instead.
		bad("%s=%s holds the CA certificate %q: put Digipoort's own signing certificate in it (Logius publishes it), not a CA "+
			"(a CA vouches for every organisation it issues to); when Logius renews it, add the new one beside the old", EnvSigningCert, f,
			ca.Subject.String())
	} else {
		cfg.SigningCertificates = certs
		cfg.sources.signing = EnvSigningCert + "=" + f
	}

	if v := get(EnvTimestampTolerance); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case strings.EqualFold(v, "off") || strings.EqualFold(v, "disabled") || (err == nil && d <= 0):
			bad("%s=%q: the timestamp check of responses cannot be switched off or made zero or negative: without it a captured old "+
				"response could be replayed as a new one; set a positive duration such as 5m (the default), or fix this machine's clock "+
				"if responses are refused for their timestamp", EnvTimestampTolerance, v)
		case err != nil:
			bad("%s=%q is not a Go duration: use e.g. 5m or 30s", EnvTimestampTolerance, v)
		case d > MaxTimestampTolerance:
			bad("%s=%q is more than %s: so large a tolerance lets old responses pass as fresh; use at most %s and fix this machine's clock "+
				"if responses are refused for their timestamp", EnvTimestampTolerance, v, MaxTimestampTolerance, MaxTimestampTolerance)
		default:
			cfg.TimestampTolerance = d
		}
	}
	if v := get(EnvSignature); v != "" {
		a, err := wsse.ParseAlgorithm(v)
		if err != nil {
			bad("%s=%q: use rsa-sha1 (Digipoort's WSDL) or rsa-sha256", EnvSignature, v)
		}
		cfg.SignatureAlgorithm = a
	}
	if v := get(EnvTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("%s=%q is not a positive Go duration: use e.g. 2m", EnvTimeout, v)
		}
		cfg.HTTPTimeout = d
	}
	if v := get(EnvMaxResponseMiB); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > MaxResponseMiBAllowed {
			bad("%s=%q: give a whole number of MiB between 1 and %d (unset: 16 for every call, 64 for pickup); a verified answer costs 5 to 7 "+
				"times its size in memory", EnvMaxResponseMiB, v, MaxResponseMiBAllowed)
		}
		cfg.MaxResponseBytes = int64(n) << 20
	}
	cfg.AutorisatieAdres = get(EnvAutorisatieAdres)
	if len(problems) > 0 {
		// One line, so that it reads well in a log and as a command-line error.
		return Config{}, errors.New("digipoort configuration: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

// endpointsFromEnv applies the one endpoint setting that is set.
func endpointsFromEnv(get func(string) string, cfg *Config, bad func(string, ...any)) {
	env, base := get(EnvEnvironment), get(EnvURL)
	svc := [3]string{get(EnvAanleverURL), get(EnvStatusinformatieURL), get(EnvOphaalURL)}
	svcNames := [3]string{EnvAanleverURL, EnvStatusinformatieURL, EnvOphaalURL}
	var set []string
	if env != "" {
		set = append(set, EnvEnvironment)
	}
	if base != "" {
		set = append(set, EnvURL)
	}
	for i, v := range svc {
		if v != "" {
			set = append(set, svcNames[i])
		}
	}
	ways := "set exactly one of: " + EnvEnvironment + " (" + strings.Join(Environments(), ", ") + "), " + EnvURL +
		" (a base URL, such as the one the simulator prints), or all three of " + strings.Join(svcNames[:], ", ") + " (one URL per service)"
	switch {
	case len(set) == 0:
		bad("no Digipoort endpoint: %s", ways)
	case env != "" && len(set) > 1, base != "" && len(set) > 1:
		bad("conflicting Digipoort endpoint settings %s: %s, and unset the others", strings.Join(set, ", "), ways)
	case env != "":
		e, err := PresetEndpoints(env)
		if err != nil {
			bad("%s=%q: %v", EnvEnvironment, env, err)
		}
		cfg.Endpoints = e
	case base != "":
		if err := checkBaseURL(base); err != nil {
			bad("%s=%q: %v", EnvURL, base, err)
		}
		cfg.URL = base
	default:
		e := Endpoints{Aanlever: svc[0], Statusinformatie: svc[1], Ophaal: svc[2]}
		if err := e.check(svcNames); err != nil {
			bad("%s (or use %s or %s instead)", oneLineErr(err), EnvEnvironment, EnvURL)
		}
		cfg.Endpoints = e
	}
}

// clientCertFromEnv reads one client certificate slot (suffix "" or "_NEXT"). It
// returns the certificate, where it came from ("" when the slot is empty) and whether
// it loaded.
func clientCertFromEnv(get func(string) string, lookup func(string) (string, bool), suffix string,
	bad func(string, ...any)) (tls.Certificate, string, bool) {
	eCert, eKey, ePFX, ePass := EnvClientCert+suffix, EnvClientKey+suffix, EnvClientPFX+suffix, EnvClientPFXPassword+suffix
	certFile, keyFile, pfxFile := get(eCert), get(eKey), get(ePFX)
	pfxPassword, _ := lookup(ePass)
	switch {
	case pfxFile != "" && (certFile != "" || keyFile != ""):
		bad("both %s and %s/%s are set: configure the client certificate either as PFX or as PEM files, not both", ePFX, eCert, eKey)
		return tls.Certificate{}, ePFX, false
	case pfxFile != "":
		c, err := LoadClientCertificatePFX(pfxFile, pfxPassword)
		if err != nil {
			bad("%s=%s: %v (put the PKCS#12/PFX file holding the client certificate and its key in it, and its password in %s)",
				ePFX, pfxFile, err, ePass)
			return c, ePFX, false
		}
		return c, ePFX + "=" + pfxFile, true
	case certFile != "" && keyFile != "":
		c, err := LoadClientCertificatePEM(certFile, keyFile)
		if err != nil {
			bad("%s=%s, %s=%s: %v (put the PEM client certificate in the first and its PEM private key in the second)",
				eCert, certFile, eKey, keyFile, err)
			return c, eCert, false
		}
		return c, eCert + "=" + certFile, true
	case certFile != "":
		bad("%s is set but %s is not: put the PEM file with the client certificate's private key in it", eCert, eKey)
		return tls.Certificate{}, eCert, false
	case keyFile != "":
		bad("%s is set but %s is not: put the PEM file with the client certificate in it", eKey, eCert)
		return tls.Certificate{}, eKey, false
	}
	return tls.Certificate{}, "", false
}

func oneLineErr(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// LoadClientCertificatePEM loads a PEM certificate (chain) and its PEM private key.
func LoadClientCertificatePEM(certFile, keyFile string) (tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return finishClientCert(c)
}

// LoadClientCertificatePFX loads a PKCS#12/PFX file (as PKIoverheid certificates
// are issued) with its password.
func LoadClientCertificatePFX(file, password string) (tls.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot read PFX (wrong password or not a PKCS#12 file): %w", err)
	}
	c := tls.Certificate{PrivateKey: key, Leaf: cert, Certificate: [][]byte{cert.Raw}}
	for _, ca := range chain {
		c.Certificate = append(c.Certificate, ca.Raw)
	}
	return finishClientCert(c)
}

func finishClientCert(c tls.Certificate) (tls.Certificate, error) {
	if c.Leaf == nil {
		if len(c.Certificate) == 0 {
			return c, errors.New("no certificate")
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return c, err
		}
		c.Leaf = leaf
	}
	if _, ok := c.PrivateKey.(*rsa.PrivateKey); !ok {
		return c, fmt.Errorf("the private key is a %T; Digipoort's WS-Security profile needs an RSA key", c.PrivateKey)
	}
	return c, nil
}

// LoadCertificates reads the certificates of a file in either encoding Logius and
// the CAs hand them out in: PEM (every CERTIFICATE block) or DER (one certificate, or
// several concatenated, as a .cer/.crt file holds them).
func LoadCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParseCertificates(data)
}

// ParseCertificates is LoadCertificates on bytes.
func ParseCertificates(data []byte) ([]*x509.Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN")) {
		certs, err := x509.ParseCertificates(data)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("neither PEM nor DER X.509 certificates (DER: %v)", err)
		}
		return certs, nil
	}
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block in the file")
	}
	return certs, nil
}

func firstCA(certs []*x509.Certificate) *x509.Certificate {
	for _, c := range certs {
		if c.IsCA {
			return c
		}
	}
	return nil
}

// LoadCertPool reads a CA bundle (PEM or DER) into a pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	certs, err := LoadCertificates(file)
	if err != nil {
		return nil, err
	}
	return poolOf(certs), nil
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

func (c Config) check() error {
	var errs []error
	switch {
	case c.URL != "" && !c.Endpoints.IsZero():
		errs = append(errs, errors.New("both URL and Endpoints are set: set one (URL is a base URL, Endpoints one URL per service)"))
	case c.URL != "":
		if err := checkBaseURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("URL %q: %w", c.URL, err))
		}
	case c.Endpoints.IsZero():
		errs = append(errs, errors.New("no endpoint: set URL (a base URL) or Endpoints (PresetEndpoints gives Logius')"))
	default:
		if err := c.Endpoints.check([3]string{"Endpoints.Aanlever", "Endpoints.Statusinformatie", "Endpoints.Ophaal"}); err != nil {
			errs = append(errs, err)
		}
	}
	for i, cc := range []tls.Certificate{c.ClientCertificate, c.NextClientCertificate} {
		name := [2]string{"ClientCertificate", "NextClientCertificate"}[i]
		switch {
		case i == 1 && cc.Leaf == nil && cc.PrivateKey == nil && len(cc.Certificate) == 0:
			// No second certificate: fine.
		case cc.Leaf == nil || cc.PrivateKey == nil:
			errs = append(errs, fmt.Errorf("%s needs a certificate (Leaf) and its private key", name))
		default:
			if _, ok := cc.PrivateKey.(*rsa.PrivateKey); !ok {
				errs = append(errs, fmt.Errorf("%s key is a %T; an RSA key is needed", name, cc.PrivateKey))
			}
		}
	}
	if c.ServerCAs == nil && len(c.ServerCACertificates) == 0 {
		errs = append(errs, errors.New("ServerCAs is nil: configure the CA bundle that verifies Digipoort's server certificate"))
	}
	if len(c.SigningCertificates) == 0 {
		errs = append(errs, errors.New("SigningCertificates is empty: configure the certificate(s) Digipoort signs responses with"))
	}
	if c.TimestampTolerance < 0 {
		errs = append(errs, errors.New("TimestampTolerance is negative: the timestamp check cannot be switched off that way "+
			"(tests on captured responses set InsecureSkipTimestampCheckForTests)"))
	}
	if _, err := wsse.ParseAlgorithm(string(c.algorithm())); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("digipoort configuration: %w", errors.Join(errs...))
	}
	return nil
}

// endpoints resolves URL or Endpoints (after check).
func (c Config) endpoints() Endpoints {
	if c.URL != "" {
		e, _ := BaseURLEndpoints(c.URL)
		return e
	}
	return c.Endpoints
}

func (c Config) algorithm() SignatureAlgorithm {
	if c.SignatureAlgorithm == "" {
		return SignatureRSASHA1
	}
	return c.SignatureAlgorithm
}

// clientCertificates are the configured client certificates with where they came
// from.
func (c Config) clientCertificates() []namedCert {
	out := []namedCert{{cert: c.ClientCertificate, role: RoleClient, source: c.sources.client}}
	if c.NextClientCertificate.Leaf != nil {
		out = append(out, namedCert{cert: c.NextClientCertificate, role: RoleClientNext, source: c.sources.next})
	}
	return out
}
