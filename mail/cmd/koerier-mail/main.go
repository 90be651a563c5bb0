// Command koerier-mail runs the development mail server (package
// koerier/mail/devserver) that `make run` starts, and lists what it holds.
//
//	koerier-mail [-smtp 127.0.0.1:2525] [-imap 127.0.0.1:1993] [-web 127.0.0.1:8025]
//	             [-domain koerier.test] [-password P] [-dir D | -cert F -key F]
//	koerier-mail list [-web URL] [--json]
//
// The password may come from KOERIER_DEV_MAIL_PASSWORD instead of -password.
// Without -cert/-key, -dir makes (once) and reuses a CA and a server
// certificate there (ca.pem, cert.pem, key.pem); clients trust ca.pem. With
// neither, the server runs without TLS.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/mail/devserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "koerier-mail:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "list" {
		return list(ctx, args[1:], stdout, stderr)
	}
	return serve(ctx, args, stdout, stderr)
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("koerier-mail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	smtpAddr := fs.String("smtp", "127.0.0.1:2525", "SMTP listen address (STARTTLS when TLS is configured)")
	imapAddr := fs.String("imap", "127.0.0.1:1993", "IMAP listen address (implicit TLS when TLS is configured)")
	webAddr := fs.String("web", "127.0.0.1:8025", `web page listen address ("" for none)`)
	domain := fs.String("domain", "koerier.test", "local domain: every address in it is a mailbox")
	password := fs.String("password", "", "password of every local mailbox (default $KOERIER_DEV_MAIL_PASSWORD)")
	certFile := fs.String("cert", "", "server certificate (PEM)")
	keyFile := fs.String("key", "", "server key (PEM)")
	dir := fs.String("dir", "", "directory for a generated CA and server certificate, used when -cert/-key are absent")
	bounceDelay := fs.Duration("bounce-delay", time.Second, "delay before a bounce- or autoreply- scenario message arrives")
	logLevel := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q; the only subcommand is list", fs.Arg(0))
	}
	if *password == "" {
		*password = os.Getenv("KOERIER_DEV_MAIL_PASSWORD")
	}
	if *password == "" {
		return errors.New("no mailbox password: pass -password or set KOERIER_DEV_MAIL_PASSWORD")
	}
	log := logrus.New()
	log.SetOutput(stderr)
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log.SetLevel(level)

	var tlsConfig *tls.Config
	var caFile string
	switch {
	case *certFile != "" || *keyFile != "":
		if *certFile == "" || *keyFile == "" {
			return errors.New("-cert and -key go together")
		}
		pair, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return fmt.Errorf("load -cert/-key: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	case *dir != "":
		certs, err := devserver.EnsureCerts(*dir)
		if err != nil {
			return err
		}
		if tlsConfig, err = certs.ServerTLS(); err != nil {
			return err
		}
		caFile = certs.CAFile
	default:
		log.Warn("no -cert/-key or -dir: serving SMTP and IMAP without TLS")
	}

	srv, err := devserver.Start(devserver.Config{
		Domain: *domain, Password: *password,
		SMTPAddr: *smtpAddr, IMAPAddr: *imapAddr, WebAddr: *webAddr,
		TLS: tlsConfig, BounceDelay: *bounceDelay, Log: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "SMTP %s\nIMAP %s\n", srv.SMTPAddr(), srv.IMAPAddr())
	if srv.WebURL() != "" {
		fmt.Fprintf(stdout, "web  %s\n", srv.WebURL())
	}
	if caFile != "" {
		fmt.Fprintf(stdout, "CA   %s\n", caFile)
	}
	<-ctx.Done()
	return srv.Close()
}

func list(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("koerier-mail list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultWeb := os.Getenv("KOERIER_DEV_MAIL_WEB")
	if defaultWeb == "" {
		defaultWeb = "http://127.0.0.1:8025"
	}
	web := fs.String("web", defaultWeb, "the dev mail server's web URL (default $KOERIER_DEV_MAIL_WEB)")
	asJSON := fs.Bool("json", false, "print the server's JSON as it is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	url := strings.TrimSuffix(*web, "/") + "/api/messages"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("list: is koerier-mail running at %s? %w", *web, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("list: read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("list: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var ov devserver.Overview
	if err := json.Unmarshal(body, &ov); err != nil {
		return fmt.Errorf("list: %s did not return the expected JSON: %w", url, err)
	}
	return printTable(stdout, ov)
}

func printTable(w io.Writer, ov devserver.Overview) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MAILBOX\tFOLDER\tUID\tRECEIVED\tFROM\tTO\tSUBJECT\tMESSAGE-ID\tATTACHMENTS")
	row := func(mailbox, folder string, m devserver.MessageSummary) {
		var atts []string
		for _, a := range m.Attachments {
			atts = append(atts, fmt.Sprintf("%s (%d B)", a.Name, a.Size))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", mailbox, folder, m.UID,
			m.Received.Local().Format("2006-01-02 15:04:05"), orDash(m.From), orDash(strings.Join(m.To, ",")),
			orDash(oneLine(m.Subject)), orDash(m.MessageID), orDash(strings.Join(atts, ", ")))
	}
	n := 0
	for _, mb := range ov.Mailboxes {
		for _, f := range mb.Folders {
			for _, m := range f.Messages {
				row(mb.Address, f.Name, m)
				n++
			}
		}
	}
	for _, m := range ov.Outbound {
		row("(outbound)", "-", m)
		n++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d message(s) in %d mailbox(es)\n", n, len(ov.Mailboxes))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
