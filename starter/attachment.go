package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"koerier/store"
)

func newAttachmentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attachment",
		Short: "The files of a message: save them (the page's 'Opslaan bijlage')",
	}
	var id int64
	var out string
	save := &cobra.Command{
		Use:   "save <number> [--id ID] [--out DIR]",
		Short: "Write a message's files and those of its reply documents, byte for byte, to a folder, and print their paths",
		Long: `Writes the files of message NUMBER as they were queued or received, byte for byte
under their own names: for an outgoing message its declaration and further files and
every file of the reply documents linked to it; for an incoming message (a reply
document, or an unknown reply ONB) its own file. --id writes one file (the ids are in
'starter show NUMBER'). Existing files are never overwritten: the command refuses and
writes nothing. Two files with the same name both get written, the later one with its
id added (reply-1234.xml). Needs Postgres (KOERIER_DATABASE_URL).`,
		Args: cobra.ExactArgs(1),
		RunE: withNumbers(false, func(cmd *cobra.Command, a *app, numbers []int64) error {
			return saveAttachments(cmd.Context(), cmd.OutOrStdout(), a.store, numbers[0], id, out)
		}),
	}
	save.Flags().Int64Var(&id, "id", 0, "write only the file with this `ID` (listed by starter show NUMBER)")
	save.Flags().StringVar(&out, "out", ".", "folder to write to (created if needed)")
	cmd.AddCommand(save)
	return cmd
}

type fileSource interface {
	MessageFiles(ctx context.Context, number int64) ([]store.MessageFile, error)
}

// saveAttachments writes the files of message number to dir. Every name is decided and
// checked before anything is written, and each file is created exclusively, so an
// existing file is never overwritten, not even by a save running at the same time;
// when a write fails, the files this call wrote are removed again.
func saveAttachments(ctx context.Context, w io.Writer, src fileSource, number, id int64, dir string) error {
	files, err := src.MessageFiles(ctx, number)
	if err != nil {
		return err
	}
	if id != 0 {
		var one []store.MessageFile
		for _, f := range files {
			if f.ID == id {
				one = append(one, f)
			}
		}
		if len(one) == 0 {
			return fmt.Errorf("message %d has no file with id %d (nor has any of its reply documents): `starter show %d` lists them", number, id, number)
		}
		files = one
	}
	if len(files) == 0 {
		return fmt.Errorf("message %d has no files, and no reply document of it has one", number)
	}
	for _, f := range files {
		// The stored sum was computed when the file came in: a file that no longer
		// matches it is not what was sent or received, and is not handed out as such.
		if sum := sha256.Sum256(f.Content); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(f.Content)) != f.Size {
			return fmt.Errorf("file %d (%s) of message %d does not match the SHA-256 and size it was stored with: nothing written; "+
				"report this, the database may be damaged", f.ID, f.Name, f.Message)
		}
	}
	names := attachmentNames(files)
	var exist []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			exist = append(exist, n)
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("check %s: %w", filepath.Join(dir, n), err)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("refusing to overwrite %s in %s: nothing written; choose another --out, or move them away first",
			strings.Join(exist, ", "), dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	var written []string
	for i, f := range files {
		p := filepath.Join(abs, names[i])
		if err := createNew(p, f.Content, 0o644, "--out"); err != nil {
			for _, done := range written {
				_ = os.Remove(done)
			}
			return fmt.Errorf("%w; the %d file(s) written before were removed again", err, len(written))
		}
		written = append(written, p)
	}
	for _, p := range written {
		fmt.Fprintln(w, p)
	}
	return nil
}

// attachmentNames are the names the files are written under: their own, made safe
// for a file system (a received name is Digipoort's or a stranger's word, and may
// hold a path), and made unique (case-insensitively, for file systems that ignore
// case) by adding the file's id.
func attachmentNames(files []store.MessageFile) []string {
	out := make([]string, len(files))
	taken := map[string]bool{}
	for i, f := range files {
		name := safeFileName(f.Name, f.ID)
		if taken[strings.ToLower(name)] {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(name, ext), f.ID, ext)
		}
		for n := 2; taken[strings.ToLower(name)]; n++ {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(name, ext), n, ext)
		}
		taken[strings.ToLower(name)] = true
		out[i] = name
	}
	return out
}

// safeFileName keeps a name to one plain file name in the target folder.
func safeFileName(name string, id int64) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, strings.TrimSpace(name))
	name = strings.TrimLeft(name, ".")
	if name == "" {
		return fmt.Sprintf("file-%d", id)
	}
	return name
}

// createNew writes a new file with mode perm; an existing one is an error (flag names
// the option that chooses the folder), and a half-written one is removed.
func createNew(path string, data []byte, perm os.FileMode, flag string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w (nothing is overwritten; choose another %s)", path, err, flag)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
