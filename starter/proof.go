package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"koerier/digipoort"
	"koerier/domain"
	"koerier/store"
)

// Proof of filing (docs/rules.md): `digipoort verify` checks a signed
// Digipoort response offline, `digipoort proof` hands a message's responses over.

const proofTime = "2006-01-02T15:04:05.000Z"

// trustedSigners are the certificates a signed response is checked against: the files
// named with --trust, else KOERIER_DIGIPOORT_SIGNING_CERT, the certificate(s) the
// service itself trusts. A response is never trusted on the strength of the
// certificate it carries: anyone can sign with a certificate of their own.
func trustedSigners(files []string) ([]*x509.Certificate, error) {
	if len(files) == 0 {
		f, _ := os.LookupEnv(digipoort.EnvSigningCert)
		if f = strings.TrimSpace(f); f == "" {
			return nil, fmt.Errorf("no trusted signing certificate: name the file (PEM or DER) with Digipoort's signing certificate with --trust FILE, "+
				"or set %s as the service has it (get the certificate from Logius, not from the response)", digipoort.EnvSigningCert)
		}
		files = []string{f}
	}
	var out []*x509.Certificate
	for _, f := range files {
		certs, err := digipoort.LoadCertificates(f)
		if err != nil {
			return nil, fmt.Errorf("trusted signing certificate %s: %w (it must hold Digipoort's signing certificate(s), PEM or DER)", f, err)
		}
		out = append(out, certs...)
	}
	return out, nil
}

// verifyJSON is the --json output of `digipoort verify`: exactly one object.
type verifyJSON struct {
	File            string                `json:"file"`
	SHA256          string                `json:"sha256"`
	Verified        bool                  `json:"verified"`
	Reason          string                `json:"reason,omitempty"`
	Signer          *signerJSON           `json:"signer,omitempty"`
	SignedAt        *time.Time            `json:"signed_at,omitempty"`
	Operation       string                `json:"operation,omitempty"`
	RelatesTo       string                `json:"relates_to,omitempty"`
	Kenmerk         string                `json:"kenmerk,omitempty"`
	Aanleverkenmerk string                `json:"aanleverkenmerk,omitempty"`
	Berichtsoort    string                `json:"berichtsoort,omitempty"`
	Belanghebbende  string                `json:"belanghebbende,omitempty"`
	DeliveredAt     *time.Time            `json:"delivered_at,omitempty"`
	Statuses        []digipoortStatusLine `json:"statuses"`
	// DerivedStatus is null for a response that is not verified: what it claims counts
	// for nothing.
	DerivedStatus *domain.Status `json:"derived_status"`
}

type signerJSON struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

func newDigipoortVerifyCmd() *cobra.Command {
	var (
		trust  []string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "verify FILE [--trust PEM]... [--json]",
		Short: "Verify a stored or saved signed Digipoort response offline and show the statuses in it",
		Long: `Verifies a signed Digipoort response exactly as it was received (a file written by
'starter digipoort proof', or any saved response; "-" reads standard input): the
signature, every signed reference, and that the signing certificate is one of the
trusted ones (or chains to a trusted CA) and was valid when it signed. Only the age of
the security timestamp is not checked: a proof is read long after it was received.

Trusted are the PEM certificates named with --trust, else KOERIER_DIGIPOORT_SIGNING_CERT.
Then it prints what the response says: for a delivery (aanleveren) the kenmerk and when
Digipoort received it (tijdstempelAangeleverd), and every status in it with the status
Koerier derives from them. Exits non-zero when the response is not verified.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			trusted, err := trustedSigners(trust)
			if err != nil {
				return err
			}
			file := args[0]
			var data []byte
			data, err = readResponse(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			ev, everr := digipoort.ReadEvidence(data, trusted)
			out := verifyOutput(file, data, ev)
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else if err := printVerify(cmd.OutOrStdout(), out, ev); err != nil {
				return err
			}
			if everr != nil {
				return oneLine(fmt.Errorf("%s: %w", file, everr))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&trust, "trust", nil, "PEM file with a certificate trusted to sign Digipoort's responses (repeatable; "+
		"default: "+digipoort.EnvSigningCert+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	return cmd
}

func verifyOutput(file string, data []byte, ev digipoort.Evidence) verifyJSON {
	sum := sha256.Sum256(data)
	out := verifyJSON{File: file, SHA256: hex.EncodeToString(sum[:]), Verified: ev.Verified, Reason: ev.Reason, Statuses: []digipoortStatusLine{}}
	if !ev.Verified {
		return out
	}
	out.Signer = &signerJSON{Subject: ev.Signer.Subject, Issuer: ev.Signer.Issuer, Serial: ev.Signer.Serial,
		NotBefore: ev.Signer.NotBefore.UTC(), NotAfter: ev.Signer.NotAfter.UTC()}
	created := ev.Created.UTC()
	out.SignedAt = &created
	out.Operation, out.RelatesTo, out.Kenmerk = ev.Operation, ev.RelatesTo, ev.Kenmerk
	out.Aanleverkenmerk, out.Berichtsoort = ev.Aanleverkenmerk, ev.Berichtsoort
	if ev.Belanghebbende != (digipoort.Identity{}) {
		out.Belanghebbende = ev.Belanghebbende.String()
	}
	if !ev.Aangeleverd.IsZero() {
		at := ev.Aangeleverd.UTC()
		out.DeliveredAt = &at
	}
	codes := make([]domain.StatusCode, 0, len(ev.Statuses))
	for _, s := range ev.Statuses {
		codes = append(codes, domain.StatusCode{Code: s.Code, Foutcode: s.ErrorCode})
		out.Statuses = append(out.Statuses, digipoortStatusLine{Code: s.Code, Time: s.Time.UTC(), Description: s.Description,
			ErrorCode: s.ErrorCode, ErrorDescription: s.ErrorDescription, Details: s.Details})
	}
	derived := domain.DeriveStatus(codes)
	out.DerivedStatus = &derived
	return out
}

func printVerify(w io.Writer, out verifyJSON, ev digipoort.Evidence) error {
	if !out.Verified {
		fmt.Fprintf(w, "%s: NOT VERIFIED\nreason: %s\nsha256: %s\nNothing in this response may be relied on.\n", out.File, out.Reason, out.SHA256)
		return nil
	}
	fmt.Fprintf(w, "%s: verified\n", out.File)
	tw := table(w)
	expired := ""
	if ev.Signer.NotAfter.Before(time.Now()) {
		expired = " (expired since, which does not matter: it was valid when it signed)"
	}
	fmt.Fprintf(tw, "signed by\t%s\n", out.Signer.Subject)
	fmt.Fprintf(tw, "certificate\tserial %s, issued by %s\n", out.Signer.Serial, out.Signer.Issuer)
	fmt.Fprintf(tw, "valid\t%s to %s%s\n", out.Signer.NotBefore.Format(time.DateOnly), out.Signer.NotAfter.Format(time.DateOnly), expired)
	fmt.Fprintf(tw, "signed at\t%s\n", out.SignedAt.Format(proofTime))
	fmt.Fprintf(tw, "operation\t%s\n", orDash(out.Operation))
	if out.RelatesTo != "" {
		fmt.Fprintf(tw, "answers request\t%s\n", out.RelatesTo)
	}
	fmt.Fprintf(tw, "kenmerk\t%s\n", orDash(out.Kenmerk))
	if out.Operation == "aanleveren" {
		fmt.Fprintf(tw, "aanleverkenmerk\t%s\n", orDash(out.Aanleverkenmerk))
		fmt.Fprintf(tw, "berichtsoort\t%s\n", orDash(out.Berichtsoort))
		fmt.Fprintf(tw, "belanghebbende\t%s\n", orDash(out.Belanghebbende))
		if out.DeliveredAt != nil {
			fmt.Fprintf(tw, "received by Digipoort\t%s (tijdstempelAangeleverd)\n", out.DeliveredAt.Format(proofTime))
		}
	}
	fmt.Fprintf(tw, "sha256\t%s\n", out.SHA256)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(out.Statuses) == 0 {
		fmt.Fprintln(w, "no statuses in this response")
	} else {
		tw = table(w)
		fmt.Fprintln(tw, "CODE\tTIME\tDESCRIPTION\tERROR")
		for _, s := range out.Statuses {
			e := orDash(s.ErrorCode)
			if s.ErrorCode != "" && s.ErrorDescription != "" {
				e += " " + firstLineOf(s.ErrorDescription)
			}
			at := "-"
			if !s.Time.IsZero() {
				at = s.Time.Format(proofTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Code, at, s.Description, e)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, s := range out.Statuses {
			if d := strings.TrimSpace(s.Details); d != "" {
				fmt.Fprintf(w, "details of %s:\n  %s\n", s.Code, strings.ReplaceAll(d, "\n", "\n  "))
			}
		}
	}
	fmt.Fprintf(w, "derived status: %s (%s)\n", *out.DerivedStatus, out.DerivedStatus.Label())
	if n := len(out.Statuses); n > 0 {
		if info := domain.InterpretStatus(out.Statuses[n-1].Code, out.Statuses[n-1].ErrorCode); info.Advice != "" {
			fmt.Fprintf(w, "advice: %s\n", info.Advice)
		}
	}
	return nil
}

// proofSource is what `digipoort proof` reads (*store.Store).
type proofSource interface {
	Message(ctx context.Context, number int64) (store.Message, error)
	SignedResponses(ctx context.Context, number int64) ([]store.SignedResponse, error)
}

func newDigipoortProofCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "proof NUMBER [--dir D]",
		Short: "Write the signed Digipoort responses of a message to a folder, to hand over as proof of filing",
		Long: `Writes every signed Digipoort response Koerier kept for the message (the answer to
its delivery, with tijdstempelAangeleverd, and the status answers) to a folder, byte
for byte as received, one file per response named by order, operation, attempt and
time, with a README (message, kenmerk, times, SHA-256 of each file and how to verify
them with 'starter digipoort verify') and a SHA256SUMS file. Existing files are never
overwritten. Needs Postgres (KOERIER_DATABASE_URL); when KOERIER_DIGIPOORT_SIGNING_CERT
is set, the README also says whether each response verifies now.`,
		Args: cobra.ExactArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			var trusted []*x509.Certificate
			if f, _ := os.LookupEnv(digipoort.EnvSigningCert); strings.TrimSpace(f) != "" {
				certs, err := trustedSigners(nil)
				if err != nil {
					return err
				}
				trusted = certs
			}
			return writeProof(cmd.Context(), cmd.OutOrStdout(), a.store, numbers[0], dir, trusted, time.Now())
		}),
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to write to (created if needed; default koerier-proof-NUMBER in the current folder)")
	return cmd
}

type proofFile struct {
	name string
	r    store.SignedResponse
	sum  string
}

// writeProof writes the responses of message number to dir. It checks every file name
// before it writes anything, and creates each file exclusively, so an existing file is
// never overwritten, not even by a second export running at the same time.
func writeProof(ctx context.Context, w io.Writer, src proofSource, number int64, dir string, trusted []*x509.Certificate, now time.Time) error {
	m, err := src.Message(ctx, number)
	if err != nil {
		return err
	}
	rs, err := src.SignedResponses(ctx, number)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("message %d has no signed Digipoort responses: it was not delivered yet, or before this version of Koerier "+
			"kept them (`starter digipoort status --kenmerk K` asks Digipoort for its statuses again)", number)
	}
	if dir == "" {
		dir = fmt.Sprintf("koerier-proof-%d", number)
	}
	width := len(fmt.Sprint(len(rs)))
	if width < 2 {
		width = 2
	}
	files := make([]proofFile, len(rs))
	for i, r := range rs {
		sum := sha256.Sum256(r.Body)
		files[i] = proofFile{
			name: fmt.Sprintf("%0*d-%s-attempt%d-%s.xml", width, i+1, r.Operation, r.Attempt, r.ReceivedAt.UTC().Format("20060102T150405.000Z")),
			r:    r, sum: hex.EncodeToString(sum[:]),
		}
	}
	names := []string{"README.txt", "SHA256SUMS"}
	for _, f := range files {
		names = append(names, f.name)
	}
	var exist []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			exist = append(exist, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("check %s: %w", filepath.Join(dir, n), err)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("refusing to overwrite %s in %s: choose another --dir, or move them away first", strings.Join(exist, ", "), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	var sums strings.Builder
	for _, f := range files {
		if err := createOnly(filepath.Join(dir, f.name), f.r.Body); err != nil {
			return err
		}
		fmt.Fprintf(&sums, "%s  %s\n", f.sum, f.name)
	}
	if err := createOnly(filepath.Join(dir, "SHA256SUMS"), []byte(sums.String())); err != nil {
		return err
	}
	if err := createOnly(filepath.Join(dir, "README.txt"), proofReadme(m, files, trusted, now)); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	fmt.Fprintf(w, "wrote %d signed Digipoort response(s) of message %d, README.txt and SHA256SUMS to %s\n", len(files), number, abs)
	return nil
}

// createOnly writes a new, read-only file: a proof is handed over as it was kept.
func createOnly(path string, data []byte) error { return createNew(path, data, 0o444, "--dir") }

func proofReadme(m store.Message, files []proofFile, trusted []*x509.Certificate, now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Proof of filing: Koerier message %d\n\n", m.Number)
	fmt.Fprintf(&b, "message          %d (%s", m.Number, m.Type)
	if m.Berichtsoort != "" {
		fmt.Fprintf(&b, ", berichtsoort %s", m.Berichtsoort)
	}
	fmt.Fprintf(&b, ") for %s, period %s", orDash(m.Subject), orDash(m.Period))
	if m.Version != nil {
		fmt.Fprintf(&b, ", version %d", *m.Version)
	}
	fmt.Fprintf(&b, "\nstatus           %s (attempt %d)\n", m.Status, m.Attempt)
	fmt.Fprintf(&b, "kenmerk          %s\n", orDashPtr(m.Kenmerk))
	fmt.Fprintf(&b, "aanleverkenmerk  %s\n", orDashPtr(m.Aanleverkenmerk))
	fmt.Fprintf(&b, "exported         %s by %s\n\n", now.UTC().Format(proofTime), operator())
	b.WriteString(`The .xml files are signed responses of Digipoort (Logius), byte for byte as Koerier
received them, in the order it received them. Do not open and save them in an editor:
one changed byte and the signature no longer verifies. The answer to a delivery
(aanleveren) holds tijdstempelAangeleverd, the time Digipoort received the return; a
status answer (getStatussenProces) holds every status of the delivery until then.

`)
	for _, f := range files {
		fmt.Fprintf(&b, "%s\n", f.name)
		fmt.Fprintf(&b, "  operation      %s, attempt %d, kenmerk %s\n", f.r.Operation, f.r.Attempt, orDashPtr(f.r.Kenmerk))
		fmt.Fprintf(&b, "  received       %s (request %s)\n", f.r.ReceivedAt.UTC().Format(proofTime), orDash(f.r.RequestMessageID))
		fmt.Fprintf(&b, "  size, sha256   %d bytes, %s\n", len(f.r.Body), f.sum)
		if len(trusted) > 0 {
			fmt.Fprintf(&b, "  verified now   %s\n", verifiedNow(f.r.Body, trusted))
		}
	}
	b.WriteString(`
How to check them:
  sha256sum -c SHA256SUMS
      the files are the ones listed here;
  starter digipoort verify FILE --trust DIGIPOORT-SIGNING-CERT.pem [--json]
      the signature verifies and Digipoort's signing certificate was valid when it
      signed (or set KOERIER_DIGIPOORT_SIGNING_CERT instead of --trust). Take
      Digipoort's signing certificate from Logius, not from these files: the
      certificate inside a response proves nothing by itself.
`)
	if len(trusted) == 0 {
		b.WriteString("\nNot verified at export: KOERIER_DIGIPOORT_SIGNING_CERT was not set.\n")
	}
	return []byte(b.String())
}

// verifiedNow is one line for the README: what the response proves, or why it does not.
func verifiedNow(body []byte, trusted []*x509.Certificate) string {
	ev, err := digipoort.ReadEvidence(body, trusted)
	if !ev.Verified {
		return "NO: " + ev.Reason
	}
	var parts []string
	parts = append(parts, "yes, signed at "+ev.Created.UTC().Format(proofTime))
	if !ev.Aangeleverd.IsZero() {
		parts = append(parts, "received by Digipoort at "+ev.Aangeleverd.UTC().Format(proofTime))
	}
	if len(ev.Statuses) > 0 {
		codes := make([]string, len(ev.Statuses))
		for i, s := range ev.Statuses {
			codes[i] = s.Code
		}
		parts = append(parts, "statuses "+strings.Join(codes, " "))
	}
	if err != nil {
		parts = append(parts, "but: "+err.Error())
	}
	return strings.Join(parts, "; ")
}

// maxSavedResponse bounds what verify reads: no Digipoort response Koerier accepts is
// larger (digipoort's response bounds), and a wrong file must not fill the memory.
const maxSavedResponse = 64 << 20

func readResponse(stdin io.Reader, file string) ([]byte, error) {
	var r io.Reader = stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read the response: %w", err)
		}
		defer f.Close()
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			return nil, fmt.Errorf("read the response: %s is not a regular file", file)
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSavedResponse+1))
	if err != nil {
		return nil, fmt.Errorf("read the response: %w", err)
	}
	if len(data) > maxSavedResponse {
		return nil, fmt.Errorf("%s is larger than %d MiB: no Digipoort response Koerier keeps is that large; check that it is the right file",
			file, maxSavedResponse>>20)
	}
	return data, nil
}
