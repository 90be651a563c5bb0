package simulator

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/sirupsen/logrus"
)

// userFS serves one SFTP session from the user's folder. os.Root keeps every
// path, ".." and symbolic links included, inside that folder, as a bank's
// chroot does.
type userFS struct {
	sim  *Sim
	user string
	root *os.Root
	conn net.Conn // the session's connection, closed by the fault scenarios
	// gone is closed when the connection has ended, which is what releases an
	// upload held by hold-next early.
	gone <-chan struct{}
	log  logrus.FieldLogger
}

var (
	errDropped  = errors.New("connection dropped by the bank simulator (drop scenario)")
	errHoldGone = errors.New("the connection ended while the bank simulator held this upload (hold scenario)")
)

func (s *Sim) newUserFS(user string, c net.Conn, gone <-chan struct{}, log logrus.FieldLogger) (*userFS, error) {
	root, err := os.OpenRoot(s.UserDir(user))
	if err != nil {
		return nil, err
	}
	return &userFS{sim: s, user: user, root: root, conn: c, gone: gone, log: log}, nil
}

func (u *userFS) close() { u.root.Close() }

// rel turns an SFTP path (absolute after the request server cleaned it) into a
// path relative to the user's folder.
func rel(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}

// inUpload says whether a relative path is a file directly in upload/.
func inUpload(p string) bool { return path.Dir(p) == "upload" }

func (u *userFS) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := u.root.Open(rel(r.Filepath))
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is a directory", r.Filepath)
		}
		return nil, err
	}
	return f, nil
}

func (u *userFS) Filewrite(r *sftp.Request) (io.WriterAt, error) { return u.open(r) }

func (u *userFS) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) { return u.open(r) }

func (u *userFS) open(r *sftp.Request) (*upload, error) {
	p := rel(r.Filepath)
	pf := r.Pflags()
	// No O_APPEND: the request server writes at offsets, which O_APPEND breaks.
	flag := os.O_WRONLY
	if pf.Read {
		flag = os.O_RDWR
	}
	if pf.Creat {
		flag |= os.O_CREATE
	}
	if pf.Trunc {
		flag |= os.O_TRUNC
	}
	if pf.Excl {
		flag |= os.O_EXCL
	}
	// Marked as being written before it exists, so the watcher never takes a
	// file just created and still empty.
	key := u.user + "/" + p
	u.sim.startWriting(key)
	f, err := u.root.OpenFile(p, flag, 0o644)
	if err != nil {
		u.sim.stopWriting(key)
		return nil, err
	}
	w := &upload{f: f, fs: u, key: key}
	if inUpload(p) {
		if after, ok := u.sim.claimDrop(); ok {
			w.drop, w.after = true, after
			u.log.WithFields(logrus.Fields{"file": p, "after_bytes": after}).Info("drop-next: this upload will be cut")
			if after == 0 {
				w.cut()
				w.Close()
				return nil, errDropped
			}
		} else if rule, ok := u.sim.claimHold(); ok {
			w.hold, w.holdAfter, w.holdFor = true, rule.afterBytes, rule.hold
			u.log.WithFields(logrus.Fields{"file": p, "after_bytes": rule.afterBytes, "hold": rule.hold.String()}).
				Info("hold-next: this upload will stall")
		}
	}
	return w, nil
}

// upload is a file open for writing. While it is open the watcher leaves it
// alone, and a pending drop-next cuts its connection.
type upload struct {
	f   *os.File
	fs  *userFS
	key string

	mu      sync.Mutex
	drop    bool  // a drop-next claimed this upload
	after   int64 // cut once this many bytes were written
	written int64
	dropped bool
	closed  bool

	hold      bool          // a hold-next claimed this upload
	holdAfter int64         // stall once this many bytes were written
	holdFor   time.Duration // for at most this long
	held      bool          // the stall happened (it happens once)
}

// cut closes the session's connection: the client sees a broken upload and
// gets no answer to what it sent last. Callers hold mu or own w alone.
func (w *upload) cut() {
	w.dropped = true
	w.fs.conn.Close()
}

func (w *upload) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped {
		return 0, errDropped
	}
	if w.drop && w.written+int64(len(p)) >= w.after {
		n, _ := w.f.WriteAt(p[:w.after-w.written], off)
		w.written += int64(n)
		w.cut()
		return n, errDropped
	}
	if w.hold && !w.held && w.written+int64(len(p)) >= w.holdAfter {
		k := int(w.holdAfter - w.written)
		n, err := w.f.WriteAt(p[:k], off)
		w.written += int64(n)
		if err != nil {
			return n, err
		}
		// mu stays locked: every other write and the close of this file wait
		// with it, as they would behind a stalled bank.
		if err := w.stall(); err != nil {
			return n, err
		}
		m, err := w.f.WriteAt(p[k:], off+int64(k))
		w.written += int64(m)
		return n + m, err
	}
	n, err := w.f.WriteAt(p, off)
	w.written += int64(n)
	return n, err
}

// stall holds the upload for holdFor, or until its connection ends or the
// simulator stops; an error for the last two. Holding counts it meanwhile.
// Callers hold mu.
func (w *upload) stall() error {
	w.held = true
	s, key := w.fs.sim, w.key
	s.mu.Lock()
	s.held[key]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.held[key]--; s.held[key] <= 0 {
			delete(s.held, key)
		}
		s.mu.Unlock()
	}()
	log := w.fs.log.WithFields(logrus.Fields{"file": strings.TrimPrefix(key, w.fs.user+"/"), "written": w.written})
	log.WithField("hold", w.holdFor.String()).Info("hold-next: upload stalled")
	timer := time.NewTimer(w.holdFor)
	defer timer.Stop()
	select {
	case <-timer.C:
		log.Info("hold-next: hold over, the upload goes on")
		return nil
	case <-w.fs.gone:
		log.Info("hold-next: the connection ended during the hold; the partial file stays")
		return errHoldGone
	case <-s.closing:
		return errHoldGone
	}
}

func (w *upload) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

func (w *upload) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	// An upload shorter than the drop threshold is cut when it closes the file:
	// drop-next promises a broken upload either way.
	if w.drop && !w.dropped {
		w.cut()
	}
	// Likewise an upload shorter than the hold threshold stalls before its
	// file is closed: complete but still open, so the bank does not take it.
	var holdErr error
	if w.hold && !w.held && !w.dropped {
		holdErr = w.stall()
	}
	err := w.f.Close()
	w.fs.sim.stopWriting(w.key)
	return errors.Join(holdErr, err)
}

func (s *Sim) startWriting(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing[key]++
}

func (s *Sim) stopWriting(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing[key]--; s.writing[key] <= 0 {
		delete(s.writing, key)
	}
}

// beingWritten says whether an SFTP session holds user's file p open for
// writing.
func (s *Sim) beingWritten(user, p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writing[user+"/"+p] > 0
}

func (u *userFS) Filecmd(r *sftp.Request) error {
	p := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return u.setstat(p, r)
	case "Rename":
		// SFTP v3 rename does not replace an existing file (OpenSSH's neither).
		if _, err := u.root.Lstat(rel(r.Target)); err == nil {
			return fmt.Errorf("rename %s: %s exists: %w", r.Filepath, r.Target, fs.ErrExist)
		}
		return u.rename(p, rel(r.Target))
	case "Rmdir":
		fi, err := u.root.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("rmdir %s: not a directory", r.Filepath)
		}
		return u.root.Remove(p)
	case "Mkdir":
		return u.root.Mkdir(p, 0o755)
	case "Remove":
		fi, err := u.root.Lstat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("remove %s: a directory (use rmdir)", r.Filepath)
		}
		return u.root.Remove(p)
	}
	// Link, Symlink: links could point a later watcher run outside the folder.
	return sftp.ErrSSHFxOpUnsupported
}

// PosixRename replaces the target, as the posix-rename@openssh.com extension
// promises.
func (u *userFS) PosixRename(r *sftp.Request) error {
	return u.rename(rel(r.Filepath), rel(r.Target))
}

func (u *userFS) rename(from, to string) error {
	if err := u.root.Rename(from, to); err != nil {
		return err
	}
	if inUpload(from) && u.sim.claimDropAfterRename() {
		u.log.WithFields(logrus.Fields{"from": from, "to": to}).Info("drop-after-rename: renamed, closing the connection without an answer")
		// Closed before the handler returns, so the status reply can never be
		// written.
		u.conn.Close()
		return errDropped
	}
	return nil
}

func (u *userFS) setstat(p string, r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	if flags.UidGid {
		return fmt.Errorf("setstat %s: changing the owner is not allowed: %w", r.Filepath, sftp.ErrSSHFxPermissionDenied)
	}
	if flags.Size {
		f, err := u.root.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		err = f.Truncate(int64(attrs.Size))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if flags.Permissions {
		if err := u.root.Chmod(p, attrs.FileMode().Perm()); err != nil {
			return err
		}
	}
	if flags.Acmodtime {
		if err := u.root.Chtimes(p, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return err
		}
	}
	return nil
}

func (u *userFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := rel(r.Filepath)
	switch r.Method {
	case "List":
		d, err := u.root.Open(p)
		if err != nil {
			return nil, err
		}
		defer d.Close()
		entries, err := d.ReadDir(-1)
		if err != nil {
			return nil, err
		}
		out := make(listerAt, 0, len(entries))
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				continue // removed meanwhile
			}
			out = append(out, fi)
		}
		return out, nil
	case "Stat":
		fi, err := u.root.Stat(p)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	}
	// Readlink: no links can be made here.
	return nil, sftp.ErrSSHFxOpUnsupported
}

type listerAt []os.FileInfo

func (l listerAt) ListAt(ls []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(ls, l[offset:])
	if n < len(ls) {
		return n, io.EOF
	}
	return n, nil
}
