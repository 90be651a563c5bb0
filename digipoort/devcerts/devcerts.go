// Package devcerts creates the development PKI of the Digipoort simulator: a CA, a
// TLS server certificate for 127.0.0.1/localhost, a client certificate (PEM and
// PKCS#12/PFX, like a PKIoverheid certificate arrives) and the certificate the
// simulator signs its responses with. The CA plays PKIoverheid: the simulator's TLS
// takes only client certificates it issued (Issue), as Digipoort takes only
// PKIoverheid ones. Nothing here is fit for production.
package devcerts

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// PFXPassword protects the development client.pfx.
const PFXPassword = "koerier-simulator"

// Paths are the files of a development PKI directory.
type Paths struct {
	Dir               string
	CA                string // ca.pem: verifies the simulator's TLS server certificate
	CAKey             string
	ServerCert        string
	ServerKey         string
	ClientCert        string // client.pem + client-key.pem: the known client
	ClientKey         string
	ClientPFX         string // the same client as PKCS#12
	ClientPFXPassword string
	SigningCert       string // signing.pem: trust this for response signatures
	SigningKey        string
}

// PathsIn returns the file names in dir.
func PathsIn(dir string) Paths {
	j := func(n string) string { return filepath.Join(dir, n) }
	return Paths{
		Dir: dir, CA: j("ca.pem"), CAKey: j("ca-key.pem"),
		ServerCert: j("server.pem"), ServerKey: j("server-key.pem"),
		ClientCert: j("client.pem"), ClientKey: j("client-key.pem"),
		ClientPFX: j("client.pfx"), ClientPFXPassword: PFXPassword,
		SigningCert: j("signing.pem"), SigningKey: j("signing-key.pem"),
	}
}

// Ensure makes dir hold a complete development PKI: files that exist are reused,
// missing ones are created (everything anew when the CA is missing). created reports
// whether anything was written.
func Ensure(dir string) (p Paths, created bool, err error) {
	p = PathsIn(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, false, err
	}
	var ca *Issued
	if exists(p.CA) && exists(p.CAKey) {
		if ca, err = LoadIssued(p.CA, p.CAKey); err != nil {
			return p, false, fmt.Errorf("devcerts: existing CA in %s is unreadable (remove the directory to start over): %w", dir, err)
		}
	} else {
		if ca, err = newCA(); err != nil {
			return p, false, err
		}
		if err := ca.Write(p.CA, p.CAKey); err != nil {
			return p, false, err
		}
		for _, f := range []string{p.ServerCert, p.ServerKey, p.ClientCert, p.ClientKey, p.ClientPFX, p.SigningCert, p.SigningKey} {
			_ = os.Remove(f)
		}
		created = true
	}
	leaf := func(certFile, keyFile string, tmpl *x509.Certificate) error {
		if exists(certFile) && exists(keyFile) {
			return nil
		}
		c, err := ca.Issue(tmpl)
		if err != nil {
			return err
		}
		created = true
		return c.Write(certFile, keyFile)
	}
	if err := leaf(p.ServerCert, p.ServerKey, ServerTemplate()); err != nil {
		return p, created, err
	}
	if err := leaf(p.ClientCert, p.ClientKey, ClientTemplate("Koerier development client")); err != nil {
		return p, created, err
	}
	if err := leaf(p.SigningCert, p.SigningKey, SigningTemplate()); err != nil {
		return p, created, err
	}
	if !exists(p.ClientPFX) {
		client, err := LoadIssued(p.ClientCert, p.ClientKey)
		if err != nil {
			return p, created, err
		}
		pfx, err := pkcs12.Modern.Encode(client.Key, client.Cert, []*x509.Certificate{ca.Cert}, PFXPassword)
		if err != nil {
			return p, created, err
		}
		if err := os.WriteFile(p.ClientPFX, pfx, 0o600); err != nil {
			return p, created, err
		}
		created = true
	}
	return p, created, nil
}

// Issued is a certificate with its key.
type Issued struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// CertPEM and KeyPEM encode the pair.
func (i *Issued) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: i.Cert.Raw})
}

func (i *Issued) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(i.Key)})
}

// TLS returns the pair as a tls.Certificate with Leaf set.
func (i *Issued) TLS() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{i.Cert.Raw}, PrivateKey: i.Key, Leaf: i.Cert}
}

// Fingerprint is the hex SHA-256 of the certificate.
func (i *Issued) Fingerprint() string { return Fingerprint(i.Cert) }

// Fingerprint is the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

// Write stores the certificate (0644) and key (0600).
func (i *Issued) Write(certFile, keyFile string) error {
	if err := os.WriteFile(certFile, i.CertPEM(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyFile, i.KeyPEM(), 0o600)
}

// WritePFX stores the pair as PKCS#12 protected by password.
func (i *Issued) WritePFX(file, password string, chain ...*x509.Certificate) error {
	pfx, err := pkcs12.Modern.Encode(i.Key, i.Cert, chain, password)
	if err != nil {
		return err
	}
	return os.WriteFile(file, pfx, 0o600)
}

// Issue signs a new RSA-2048 certificate from tmpl with this (CA) pair.
func (i *Issued) Issue(tmpl *x509.Certificate) (*Issued, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.Cert, &key.PublicKey, i.Key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: c, Key: key}, nil
}

// SelfSigned creates a self-signed leaf (for "untrusted" tests).
func SelfSigned(tmpl *x509.Certificate) (*Issued, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: c, Key: key}, nil
}

// LoadIssued reads a PEM certificate and PEM RSA key.
func LoadIssued(certFile, keyFile string) (*Issued, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	key, ok := pair.PrivateKey.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key")
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &Issued{Cert: leaf, Key: key}, nil
}

func newCA() (*Issued, error) { return NewCA("Koerier Digipoort simulator development CA") }

// NewCA creates a self-signed CA that issues certificates with Issue: the development
// CA, or another one to test that a certificate from a CA the simulator does not trust
// is refused.
func NewCA(commonName string) (*Issued, error) {
	now := time.Now()
	return SelfSigned(&x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Koerier (development)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	})
}

// ServerTemplate is the simulator's TLS server certificate: 127.0.0.1, ::1, localhost.
func ServerTemplate() *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"Koerier (development)"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(5, 0, 0),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
}

// ClientTemplate is a client certificate with common name cn.
func ClientTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"Koerier (development)"}, Country: []string{"NL"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(5, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// SigningTemplate is the simulator's response-signing certificate (Digipoort signs
// with a PKIoverheid server certificate).
func SigningTemplate() *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: "digipoort-simulator.localhost", Organization: []string{"Koerier (development)"}, Country: []string{"NL"}},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(5, 0, 0),
		DNSNames:    []string{"digipoort-simulator.localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func exists(f string) bool {
	_, err := os.Stat(f)
	return err == nil
}
