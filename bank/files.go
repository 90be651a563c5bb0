package bank

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
)

// partSuffix marks a file still being written; banks skip such names, and
// Reports skips them too.
const partSuffix = ".part"

// MaxReportSize bounds one status report read into memory. A pain.002 for
// the largest batch a bank accepts stays well under it.
const MaxReportSize = 16 << 20

// Where Find found a file.
const (
	InUpload  = "upload"  // under its final name in UploadDir: handed to the bank
	InArchive = "archive" // in ArchiveDir: the bank has consumed it
	Partial   = "partial" // only name+".part" in UploadDir: an interrupted upload the bank never read
	Nowhere   = ""
)

// Upload hands content to the bank under name in UploadDir. It writes
// name+".part" (overwriting a ".part" of an earlier try), checks its size, and
// renames it to name, so the bank never reads half a file.
//
// A nil error means the server confirmed the rename. Otherwise the error is:
//   - ErrNotUploaded (wrapped) when the rename request was never sent or the
//     server answered it with a refusal: the bank does not have the file
//     under its final name because of this call;
//   - ErrNotUploaded and ErrExists when name is already in the upload or
//     archive folder: nothing was written; the bank has a file of that name;
//   - ErrUncertain when the rename request was sent but no answer came: the
//     file may have been renamed. Call Find before uploading it again.
func (c *Conn) Upload(ctx context.Context, name string, content []byte) error {
	final := path.Join(c.p.uploadDir(), name)
	fail := func(err error) error {
		return fmt.Errorf("upload %s to the bank's SFTP server %s: %w", final, c.p, withCause(ctx, err))
	}
	notUploaded := func(stage string, err error) error {
		return fail(fmt.Errorf("%w: %s: %w", ErrNotUploaded, stage, err))
	}
	if err := checkName(name); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotUploaded, err))
	}
	end, err := c.begin(ctx)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrNotUploaded, err))
	}
	defer end()

	where, _, err := c.find(name)
	if err != nil {
		return notUploaded("look for an earlier copy", err)
	}
	if where == InUpload || where == InArchive {
		return fail(fmt.Errorf("%w: %w: it is in the %s folder; use Find to compare it with this file before doing anything else",
			ErrNotUploaded, ErrExists, where))
	}

	part := final + partSuffix
	f, err := c.sftp.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return notUploaded("create "+part, err)
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return notUploaded("write "+part, err)
	}
	// A server that truncated the write without an error (a full disk on
	// some servers) must not get the rename.
	fi, err := c.sftp.Stat(part)
	if err != nil {
		return notUploaded("check "+part, err)
	}
	if fi.Size() != int64(len(content)) {
		return notUploaded("check "+part, fmt.Errorf("the server holds %d bytes, %d were written", fi.Size(), len(content)))
	}

	c.out.mark()
	defer c.out.unmark()
	if c.posix {
		err = c.sftp.PosixRename(part, final)
	} else {
		err = c.sftp.Rename(part, final)
	}
	switch {
	case err == nil:
		return nil
	case !c.out.sentAfterMark():
		return notUploaded("rename "+part+" (the request never left)", err)
	case serverAnswered(err):
		return notUploaded("the server refused to rename "+part, err)
	default:
		return fail(fmt.Errorf("%w: %w", ErrUncertain, err))
	}
}

// serverAnswered tells a status reply of the server (the request was
// processed and failed) from a lost connection.
func serverAnswered(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)
}

// Find says where a file of that name is: InUpload, InArchive, Partial or
// Nowhere, with its size there. After an uncertain upload it decides between
// "handed over" and "upload again".
func (c *Conn) Find(ctx context.Context, name string) (where string, size int64, err error) {
	if err := checkName(name); err != nil {
		return "", 0, fmt.Errorf("find %s at %s: %w", name, c.p, err)
	}
	end, err := c.begin(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("find %s at %s: %w", name, c.p, err)
	}
	defer end()
	where, size, err = c.find(name)
	if err != nil {
		return "", 0, fmt.Errorf("find %s at %s: %w", name, c.p, withCause(ctx, err))
	}
	return where, size, nil
}

func (c *Conn) find(name string) (string, int64, error) {
	places := []struct{ where, path string }{{InUpload, path.Join(c.p.uploadDir(), name)}}
	if a := c.p.archiveDir(); a != "" {
		places = append(places, struct{ where, path string }{InArchive, path.Join(a, name)})
	}
	places = append(places, struct{ where, path string }{Partial, path.Join(c.p.uploadDir(), name+partSuffix)})
	for _, pl := range places {
		fi, err := c.sftp.Stat(pl.path)
		switch {
		case err == nil:
			return pl.where, fi.Size(), nil
		case errors.Is(err, fs.ErrNotExist):
		default:
			// Not knowing is not "nowhere": the caller must not upload again.
			return "", 0, fmt.Errorf("stat %s: %w", pl.path, err)
		}
	}
	return Nowhere, 0, nil
}

// ErrGone: the file to remove was not there (any more). For a ".part" that Find saw a
// moment before, that means it was renamed meanwhile — a try still running elsewhere
// finished it — so the caller must look again, not assume it is gone.
var ErrGone = errors.New("the file is not there")

// RemovePartial removes name+".part" from UploadDir; ErrGone (wrapped) when it is not
// there.
func (c *Conn) RemovePartial(ctx context.Context, name string) error {
	part := path.Join(c.p.uploadDir(), name+partSuffix)
	if err := checkName(name); err != nil {
		return fmt.Errorf("remove %s at %s: %w", part, c.p, err)
	}
	end, err := c.begin(ctx)
	if err != nil {
		return fmt.Errorf("remove %s at %s: %w", part, c.p, err)
	}
	defer end()
	if err := c.sftp.Remove(part); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s at %s: %w", part, c.p, ErrGone)
		}
		return fmt.Errorf("remove %s at %s: %w", part, c.p, withCause(ctx, err))
	}
	return nil
}

// Report is one file the bank wrote to the download folder.
type Report struct {
	Name    string
	Content []byte
	ModTime time.Time
}

// Reports reads the files in DownloadDir (not directories, not ".part"
// files), oldest first, at most limit of them (limit <= 0: all). A file over
// MaxReportSize is an error naming it, and no reports are returned, so that
// an operator sees it rather than Koerier skipping it forever.
func (c *Conn) Reports(ctx context.Context, limit int) ([]Report, error) {
	dir := c.p.downloadDir()
	fail := func(err error) error {
		return fmt.Errorf("read reports in %s at %s: %w", dir, c.p, withCause(ctx, err))
	}
	end, err := c.begin(ctx)
	if err != nil {
		return nil, fail(err)
	}
	defer end()

	infos, err := c.sftp.ReadDirContext(ctx, dir)
	if err != nil {
		return nil, fail(err)
	}
	infos = slices.DeleteFunc(infos, func(fi os.FileInfo) bool {
		return !fi.Mode().IsRegular() || strings.HasSuffix(fi.Name(), partSuffix)
	})
	slices.SortFunc(infos, func(a, b os.FileInfo) int {
		if c := a.ModTime().Compare(b.ModTime()); c != 0 {
			return c
		}
		return strings.Compare(a.Name(), b.Name())
	})
	if limit > 0 && len(infos) > limit {
		infos = infos[:limit]
	}
	reports := make([]Report, 0, len(infos))
	for _, fi := range infos {
		p := path.Join(dir, fi.Name())
		if fi.Size() > MaxReportSize {
			return nil, fail(tooBig(p, fi.Size()))
		}
		content, err := c.read(p)
		if err != nil {
			return nil, fail(err)
		}
		reports = append(reports, Report{Name: fi.Name(), Content: content, ModTime: fi.ModTime()})
	}
	return reports, nil
}

func (c *Conn) read(p string) ([]byte, error) {
	f, err := c.sftp.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	// The listing's size may be stale: the bound applies to what is read.
	n, err := io.Copy(&buf, io.LimitReader(f, MaxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if n > MaxReportSize {
		return nil, tooBig(p, n)
	}
	return buf.Bytes(), nil
}

func tooBig(p string, size int64) error {
	return fmt.Errorf("%s is %d bytes, more than the %d Koerier reads as a status report; ask the bank what it is and move it out of the download folder",
		p, size, MaxReportSize)
}

// maxSuffix bounds the search for a free name in ProcessedDir.
const maxSuffix = 1000

// MoveProcessed moves a fetched report into ProcessedDir (creating it), so it
// is not read twice. When the name is taken there it gets a suffix
// ("report.2.xml"): a report is never overwritten.
func (c *Conn) MoveProcessed(ctx context.Context, name string) error {
	src := path.Join(c.p.downloadDir(), name)
	dir := c.p.processedDir()
	fail := func(err error) error {
		return fmt.Errorf("move %s to %s at %s: %w", src, dir, c.p, withCause(ctx, err))
	}
	if err := checkName(name); err != nil {
		return fail(err)
	}
	end, err := c.begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer end()

	if err := c.sftp.MkdirAll(dir); err != nil {
		return fail(fmt.Errorf("create %s: %w", dir, err))
	}
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 1; i <= maxSuffix; i++ {
		target := name
		if i > 1 {
			target = base + "." + strconv.Itoa(i) + ext
		}
		dst := path.Join(dir, target)
		if _, err := c.sftp.Stat(dst); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("stat %s: %w", dst, err))
		}
		// Plain rename, not posix-rename: it refuses an existing target, so
		// a name taken between the Stat and here is not overwritten.
		err := c.sftp.Rename(src, dst)
		if err == nil {
			return nil
		}
		if _, serr := c.sftp.Stat(dst); serr == nil {
			if _, serr := c.sftp.Stat(src); serr == nil {
				continue
			}
		}
		return fail(err)
	}
	return fail(fmt.Errorf("%d reports named like %s are in %s already; clean up the folder", maxSuffix, name, dir))
}

// checkName accepts a plain file name: the folders come from the profile.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q is not a file name", name)
	case strings.ContainsAny(name, "/\x00\r\n"):
		return fmt.Errorf("file name %q contains a slash, NUL or line break", name)
	case strings.HasSuffix(name, partSuffix):
		return fmt.Errorf("file name %q ends in %q, which marks an unfinished upload", name, partSuffix)
	case len(name) > 255:
		return fmt.Errorf("file name %.40q… is longer than 255 bytes", name)
	}
	return nil
}
