package main

import (
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"koerier/domain"
	"koerier/internal/service"
	"koerier/store"
)

func newQueueCmd() *cobra.Command {
	var req store.QueueRequest
	var typ, mimeType string
	var files []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "queue --env E --type T --subject S --period P --file F",
		Short: "Queue a message for delivery (it cannot be withdrawn afterwards)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Type = domain.MessageType(strings.ToLower(typ))
			for i, f := range files {
				content, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("read %s: %w", f, err)
				}
				mt := mimeType
				if mt == "" || i > 0 {
					mt = guessMime(f, content)
				}
				req.Attachments = append(req.Attachments, domain.Attachment{FileName: filepath.Base(f), MimeType: mt, Content: content})
			}
			a, err := newApp(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer a.close()
			q, err := a.store.Queue(cmd.Context(), req)
			if err != nil {
				return err
			}
			if q.Existing {
				// Nothing new was stored; its workflow was started the first time.
			} else if err := startDeclaration(cmd, a, q); err != nil {
				// The message is stored and cannot be withdrawn: it is not lost.
				fmt.Fprintf(stderr, "koerier: message %d is queued, but its workflow could not be started now (%v); the next send/receive starts it\n", q.Number, err)
			}
			if asJSON {
				return printJSON(
					cmd.OutOrStdout(),
					map[string]any{"number": q.Number, "version": q.Version, "status": q.Status, "existing": q.Existing, "superseded": q.Superseded},
				)
			}
			if q.Existing {
				fmt.Fprintf(
					cmd.OutOrStdout(), "already queued under reference %q: message %d, version %d, %s\n", req.ClientReference, q.Number, q.Version,
					q.Status,
				)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queued: message %d, version %d, %s\n", q.Number, q.Version, q.Status)
			for _, old := range q.Superseded {
				fmt.Fprintf(cmd.OutOrStdout(), "message %d (an older version) is now do-not-send\n", old)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Environment, "env", "", "environment that queues the message (required)")
	f.StringVar(&typ, "type", "", "message type: btw, obsup, icp, ib, vpb, loonaangifte, kvk (required)")
	f.StringVar(&req.Subject, "subject", "", "who the declaration is about: fiscal number, loonheffingennummer or KvK number (required)")
	f.StringVar(&req.Period, "period", "", "the period declared, e.g. 2026-10, 2026-Q3, 2026 (required)")
	f.StringArrayVar(&files, "file", nil, "the declaration (XBRL); repeat for attachments (required)")
	f.StringVar(&mimeType, "mime", "", "mime type of the first file (default: from its name and content)")
	f.StringVar(&req.ClientReference, "ref", "", "client reference: queueing again with the same reference returns the first message")
	f.StringVar(&req.Memo, "memo", "", "memo kept with the message")
	f.BoolVar(&asJSON, "json", false, "print {\"number\", \"version\", \"status\"} as JSON")
	for _, r := range []string{"env", "type", "subject", "period", "file"} {
		_ = cmd.MarkFlagRequired(r)
	}
	return cmd
}

func guessMime(name string, content []byte) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".xbrl", ".xml":
		return "application/xml"
	}
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	if len(content) > 0 && content[0] == '<' {
		return "application/xml"
	}
	return "application/octet-stream"
}

// startDeclaration starts the workflow of a freshly queued message.
func startDeclaration(cmd *cobra.Command, a *app, q store.Queued) error {
	if err := a.dial(cmd.Context()); err != nil {
		return err
	}
	return service.Starter(a.cfg, a.tc).Start(cmd.Context(), q.Declaration())
}
