package digipoort

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
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
	// TimestampCheckDisabled as Config.TimestampTolerance switches the time check of
	// response timestamps off (the timestamp must still be present and signed). Only
	// for tests on captured responses.
	TimestampCheckDisabled time.Duration = -1
	// DefaultHTTPTimeout bounds one request/response exchange (a 20 MiB delivery
	// included).
	DefaultHTTPTimeout = 2 * time.Minute
	// DefaultAutorisatieAdres is what every public WUS client sends as
	// autorisatieAdres when no authorisation service (AuSP) is registered.
	DefaultAutorisatieAdres = "http://geenausp.nl"
	// DefaultMaxResponseBytes bounds the size of a response body (getBerichten can
	// return several messages of up to 20 MiB each).
	DefaultMaxResponseBytes = 256 << 20
)

// Environment variables read by ConfigFromEnv.
const (
	EnvURL                = "KOERIER_DIGIPOORT_URL"
	EnvClientCert         = "KOERIER_DIGIPOORT_CLIENT_CERT"
	EnvClientKey          = "KOERIER_DIGIPOORT_CLIENT_KEY"
	EnvClientPFX          = "KOERIER_DIGIPOORT_CLIENT_PFX"
	EnvClientPFXPassword  = "KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD"
	EnvCA                 = "KOERIER_DIGIPOORT_CA"
	EnvSigningCert        = "KOERIER_DIGIPOORT_SIGNING_CERT"
	EnvTimestampTolerance = "KOERIER_DIGIPOORT_TIMESTAMP_TOLERANCE"
	EnvSignature          = "KOERIER_DIGIPOORT_SIGNATURE"
	EnvTimeout            = "KOERIER_DIGIPOORT_TIMEOUT"
	EnvAutorisatieAdres   = "KOERIER_DIGIPOORT_AUTORISATIEADRES"
)

// Config configures a Client.
type Config struct {
	// URL is the base URL of the WUS services, e.g.
	// https://wus.preproductie.digipoort.logius.nl; the client appends
	// /wus/2.0/{aanleverservice,statusinformatieservice,ophaalservice}/1.2.
	URL string
	// ClientCertificate is the PKIoverheid certificate and RSA key used for mutual
	// TLS and to sign requests (Leaf must be set; the Load* helpers do).
	ClientCertificate tls.Certificate
	// ServerCAs verifies Digipoort's TLS server certificate.
	ServerCAs *x509.CertPool
	// SigningCertificates are trusted to sign responses: a response's signing
	// certificate must be one of them (pinning) or chain to one that is a CA
	// certificate. See wsse.TrustCertificates.
	SigningCertificates []*x509.Certificate
	// SignatureAlgorithm signs requests; zero means RSA-SHA1.
	SignatureAlgorithm SignatureAlgorithm
	// TimestampTolerance is the clock skew allowed on response timestamps; zero
	// means DefaultTimestampTolerance, TimestampCheckDisabled (negative) switches the
	// time check off.
	TimestampTolerance time.Duration
	// HTTPTimeout bounds each call; zero means DefaultHTTPTimeout.
	HTTPTimeout time.Duration
	// AutorisatieAdres is sent as autorisatieAdres in every request; empty means
	// DefaultAutorisatieAdres. The XSD makes it mandatory on status and pickup calls
	// when the requester is not the belanghebbende (role Intermediair), and every
	// public WUS client sends http://geenausp.nl ("no AuSP") on every call.
	AutorisatieAdres string
	// MaxResponseBytes bounds a response body; zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// Logger receives one debug line per call (operation, status, duration; never
	// message content or key material). Nil discards.
	Logger logrus.FieldLogger
	// Now is the clock for request and response timestamps; nil means time.Now.
	Now func() time.Time
}

// ConfigFromEnv reads the client configuration from the environment:
//
//	KOERIER_DIGIPOORT_URL                  base URL (https://…), required
//	KOERIER_DIGIPOORT_CLIENT_CERT          PEM client certificate (chain) file  } one of the
//	KOERIER_DIGIPOORT_CLIENT_KEY           PEM private key file                 } two pairs
//	KOERIER_DIGIPOORT_CLIENT_PFX           PKCS#12/PFX file with cert and key   } is
//	KOERIER_DIGIPOORT_CLIENT_PFX_PASSWORD  its password                         } required
//	KOERIER_DIGIPOORT_CA                   PEM CA bundle for Digipoort's TLS server certificate, required
//	KOERIER_DIGIPOORT_SIGNING_CERT         PEM certificate(s) trusted to sign responses, required
//	KOERIER_DIGIPOORT_TIMESTAMP_TOLERANCE  Go duration (default 5m); "off" disables the time check
//	KOERIER_DIGIPOORT_SIGNATURE            rsa-sha1 (default) or rsa-sha256
//	KOERIER_DIGIPOORT_TIMEOUT              Go duration per call (default 2m)
//	KOERIER_DIGIPOORT_AUTORISATIEADRES     autorisatieAdres sent with every request (default http://geenausp.nl)
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

	cfg.URL = get(EnvURL)
	if cfg.URL == "" {
		bad("%s is not set: put the base URL of Digipoort's WUS services in it, e.g. https://wus.preproductie.digipoort.logius.nl "+
			"(the simulator prints its own)", EnvURL)
	} else if err := checkURL(cfg.URL); err != nil {
		bad("%s=%q: %v", EnvURL, cfg.URL, err)
	}

	certFile, keyFile, pfxFile := get(EnvClientCert), get(EnvClientKey), get(EnvClientPFX)
	pfxPassword, _ := lookup(EnvClientPFXPassword)
	switch {
	case pfxFile != "" && (certFile != "" || keyFile != ""):
		bad("both %s and %s/%s are set: configure the client certificate either as PFX or as PEM files, not both",
			EnvClientPFX, EnvClientCert, EnvClientKey)
	case pfxFile != "":
		c, err := LoadClientCertificatePFX(pfxFile, pfxPassword)
		if err != nil {
			bad("%s=%s: %v (put the PKCS#12/PFX file holding the client certificate and its key in it, and its password in %s)",
				EnvClientPFX, pfxFile, err, EnvClientPFXPassword)
		}
		cfg.ClientCertificate = c
	case certFile != "" && keyFile != "":
		c, err := LoadClientCertificatePEM(certFile, keyFile)
		if err != nil {
			bad("%s=%s, %s=%s: %v (put the PEM client certificate in the first and its PEM private key in the second)",
				EnvClientCert, certFile, EnvClientKey, keyFile, err)
		}
		cfg.ClientCertificate = c
	case certFile != "":
		bad("%s is set but %s is not: put the PEM file with the client certificate's private key in it", EnvClientCert, EnvClientKey)
	case keyFile != "":
		bad("%s is set but %s is not: put the PEM file with the client certificate in it", EnvClientKey, EnvClientCert)
	default:
		bad("no client certificate: set %s and %s (PEM certificate and key files) or %s and %s (PKCS#12/PFX file and its password)",
			EnvClientCert, EnvClientKey, EnvClientPFX, EnvClientPFXPassword)
	}

	if f := get(EnvCA); f == "" {
		bad("%s is not set: put the PEM bundle of the CA certificate(s) that issued Digipoort's TLS server certificate in it", EnvCA)
	} else if pool, err := LoadCertPool(f); err != nil {
		bad("%s=%s: %v (it must hold the PEM CA certificate(s) that issued Digipoort's TLS server certificate)", EnvCA, f, err)
	} else {
		cfg.ServerCAs = pool
	}

	if f := get(EnvSigningCert); f == "" {
		bad("%s is not set: put the PEM certificate(s) Digipoort signs its responses with in it", EnvSigningCert)
	} else if certs, err := LoadCertificates(f); err != nil {
		bad("%s=%s: %v (it must hold the PEM certificate(s) Digipoort signs its responses with)", EnvSigningCert, f, err)
	} else {
		cfg.SigningCertificates = certs
	}

	if v := get(EnvTimestampTolerance); v != "" {
		if strings.EqualFold(v, "off") || strings.EqualFold(v, "disabled") {
			cfg.TimestampTolerance = TimestampCheckDisabled
		} else if d, err := time.ParseDuration(v); err != nil {
			bad("%s=%q is not a Go duration: use e.g. 5m or 30s (or \"off\" to disable the time check)", EnvTimestampTolerance, v)
		} else if d < 0 {
			cfg.TimestampTolerance = TimestampCheckDisabled
		} else {
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
	cfg.AutorisatieAdres = get(EnvAutorisatieAdres)
	if len(problems) > 0 {
		// One line, so that it reads well in a log and as a command-line error.
		return Config{}, errors.New("digipoort configuration: " + strings.Join(problems, "; "))
	}
	return cfg, nil
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "https" || u.Host == "" {
		return errors.New("must be an https:// URL (Digipoort requires mutual TLS)")
	}
	if strings.Contains(u.Path, "/wus/") {
		return errors.New("give the base URL only (without /wus/2.0/…); the client adds the service paths")
	}
	return nil
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

// LoadCertificates reads every CERTIFICATE block of a PEM file.
func LoadCertificates(file string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
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
		return nil, errors.New("no PEM CERTIFICATE in the file")
	}
	return certs, nil
}

// LoadCertPool reads a PEM CA bundle into a pool.
func LoadCertPool(file string) (*x509.CertPool, error) {
	certs, err := LoadCertificates(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func (c Config) check() error {
	var errs []error
	if err := checkURL(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("URL %q: %w", c.URL, err))
	}
	if c.ClientCertificate.Leaf == nil || c.ClientCertificate.PrivateKey == nil {
		errs = append(errs, errors.New("ClientCertificate needs a certificate (Leaf) and its private key"))
	} else if _, ok := c.ClientCertificate.PrivateKey.(*rsa.PrivateKey); !ok {
		errs = append(errs, fmt.Errorf("ClientCertificate key is a %T; an RSA key is needed", c.ClientCertificate.PrivateKey))
	}
	if c.ServerCAs == nil {
		errs = append(errs, errors.New("ServerCAs is nil: configure the CA bundle that verifies Digipoort's server certificate"))
	}
	if len(c.SigningCertificates) == 0 {
		errs = append(errs, errors.New("SigningCertificates is empty: configure the certificate(s) Digipoort signs responses with"))
	}
	if _, err := wsse.ParseAlgorithm(string(c.algorithm())); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("digipoort configuration: %w", errors.Join(errs...))
	}
	return nil
}

func (c Config) algorithm() SignatureAlgorithm {
	if c.SignatureAlgorithm == "" {
		return SignatureRSASHA1
	}
	return c.SignatureAlgorithm
}
