package bank

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func listenAndClose() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func validProfile(t *testing.T) Profile {
	t.Helper()
	host, _ := newKey(t)
	_, key := newKey(t)
	return Profile{
		Host: "sftp.bank.example", User: "koerier", PrivateKey: key,
		HostKey: string(ssh.MarshalAuthorizedKey(host.PublicKey())),
	}
}

func TestValidateAcceptsKeyForms(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string][]byte{
		"ed25519 openssh": validProfile(t).PrivateKey,
		"ecdsa pkcs8":     pkcs8(t, ec),
		"rsa pkcs8":       pkcs8(t, rk),
	} {
		p := validProfile(t)
		p.PrivateKey = key
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	p := validProfile(t)
	if p.String() != "koerier@sftp.bank.example:22" {
		t.Errorf("String = %q", p.String())
	}
	if p.uploadDir() != "upload" || p.downloadDir() != "download" || p.processedDir() != "download/processed" || p.archiveDir() != "" {
		t.Errorf("defaults: %q %q %q %q", p.uploadDir(), p.downloadDir(), p.processedDir(), p.archiveDir())
	}
}

func TestValidateRefusals(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, ed := newKey(t)
	encrypted := func() []byte {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(block)
	}()
	// A key with its body damaged: x/crypto's error must not quote it.
	damaged := []byte(strings.Replace(string(ed), "\n", "\n!!", 3))
	cases := []struct {
		name   string
		change func(*Profile)
		want   []string
	}{
		{"empty", func(p *Profile) { *p = Profile{} }, []string{"field Host", "field User", "field PrivateKey", "field HostKey"}},
		{"host with port", func(p *Profile) { p.Host = "sftp.bank.example:22" }, []string{"field Host"}},
		{"port", func(p *Profile) { p.Port = 70000 }, []string{"field Port"}},
		{"user with space", func(p *Profile) { p.User = "a b" }, []string{"field User"}},
		{"garbage key", func(p *Profile) { p.PrivateKey = []byte("not a key") }, []string{"field PrivateKey", "not a readable PEM"}},
		{"damaged key", func(p *Profile) { p.PrivateKey = damaged }, []string{"field PrivateKey"}},
		{"encrypted key", func(p *Profile) { p.PrivateKey = encrypted }, []string{"field PrivateKey", "passphrase"}},
		{"small rsa", func(p *Profile) { p.PrivateKey = pkcs8(t, small) }, []string{"field PrivateKey", "1024 bits"}},
		{"host key junk", func(p *Profile) { p.HostKey = "ssh-ed25519 notbase64" }, []string{"field HostKey"}},
		{"fingerprint short", func(p *Profile) { p.HostKey = "SHA256:abc" }, []string{"field HostKey", "43 base64"}},
		{"two host keys", func(p *Profile) { p.HostKey = p.HostKey + p.HostKey }, []string{"field HostKey", "one key"}},
		{"dotdot", func(p *Profile) { p.UploadDir = "../etc" }, []string{"field UploadDir"}},
		{"upload is download", func(p *Profile) { p.UploadDir = "in"; p.DownloadDir = "in/" }, []string{"field DownloadDir"}},
		{"processed is download", func(p *Profile) { p.ProcessedDir = "download" }, []string{"field ProcessedDir"}},
		{"archive is upload", func(p *Profile) { p.ArchiveDir = "upload" }, []string{"field ArchiveDir"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validProfile(t)
			tc.change(&p)
			err := p.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q: %v", w, err)
				}
			}
			noKey(t, p.PrivateKey, err.Error())
			noKey(t, ed, err.Error())
			// Dial refuses the same profile before touching the network.
			_, derr := Dial(context.Background(), p)
			if derr == nil || !strings.Contains(derr.Error(), "invalid profile") {
				t.Fatalf("Dial: %v", derr)
			}
			noKey(t, p.PrivateKey, derr.Error())
		})
	}
}

func TestProfileNeverPrintsKey(t *testing.T) {
	p := validProfile(t)
	for _, s := range []string{p.String(), fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), fmt.Sprintf("%v", &p)} {
		noKey(t, p.PrivateKey, s)
		if strings.Contains(s, "PRIVATE KEY") {
			t.Fatalf("the key shows in %q", s)
		}
	}
}
