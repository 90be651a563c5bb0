package bank

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// setup starts a server that accepts a fresh client key and returns both.
func setup(t *testing.T) (*testServer, []byte) {
	t.Helper()
	signer, key := newKey(t)
	return startServer(t, signer.PublicKey()), key
}

func dial(t *testing.T, p Profile) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, p)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func content(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// noKey fails when any piece of the private key shows in a text.
func noKey(t *testing.T, key []byte, texts ...string) {
	t.Helper()
	for _, chunk := range keyChunks(key) {
		for _, s := range texts {
			if strings.Contains(s, chunk) {
				t.Fatalf("the private key appears in %q", s)
			}
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func find(t *testing.T, c *Conn, name string) (string, int64) {
	t.Helper()
	where, size, err := c.Find(ctx(t), name)
	if err != nil {
		t.Fatalf("Find: %v", err)
	}
	return where, size
}

func TestUploadLandsUnderFinalName(t *testing.T) {
	s, key := setup(t)
	c := dial(t, s.profile(key))
	if !c.posix {
		t.Fatal("the test server offers posix-rename; the client did not see it")
	}
	// A .part of an earlier try, longer than the new file, is replaced whole.
	if err := os.WriteFile(s.path("upload", "pay1.xml.part"), bytes.Repeat([]byte("x"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	want := content(t, 200_000) // several SFTP write packets
	if err := c.Upload(ctx(t), "pay1.xml", want); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := readFile(t, s.path("upload", "pay1.xml")); !bytes.Equal(got, want) {
		t.Fatalf("uploaded %d bytes, the server holds %d different ones", len(want), len(got))
	}
	if exists(s.path("upload", "pay1.xml.part")) {
		t.Fatal("the .part file remained")
	}
	if where, size := find(t, c, "pay1.xml"); where != InUpload || size != int64(len(want)) {
		t.Fatalf("Find = %q, %d; want upload, %d", where, size, len(want))
	}
	if where, _ := find(t, c, "other.xml"); where != Nowhere {
		t.Fatalf("Find(other.xml) = %q, want nowhere", where)
	}

	// The same name again is refused and leaves the bank's file alone.
	err := c.Upload(ctx(t), "pay1.xml", []byte("different"))
	if !errors.Is(err, ErrExists) || !errors.Is(err, ErrNotUploaded) {
		t.Fatalf("second upload: %v; want ErrExists and ErrNotUploaded", err)
	}
	if got := readFile(t, s.path("upload", "pay1.xml")); !bytes.Equal(got, want) {
		t.Fatal("the second upload changed the bank's file")
	}
}

func TestUploadWithoutPosixRename(t *testing.T) {
	// The extension list is global in pkg/sftp; this test does not run in parallel.
	if err := sftp.SetSFTPExtensions("statvfs@openssh.com"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sftp.SetSFTPExtensions("hardlink@openssh.com", "posix-rename@openssh.com", "statvfs@openssh.com")
	})
	s, key := setup(t)
	c := dial(t, s.profile(key))
	if c.posix {
		t.Fatal("the server does not offer posix-rename, but the client thinks so")
	}
	if err := c.Upload(ctx(t), "pay.xml", []byte("<Document/>")); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := string(readFile(t, s.path("upload", "pay.xml"))); got != "<Document/>" || exists(s.path("upload", "pay.xml.part")) {
		t.Fatalf("after upload: %q, .part there: %v", got, exists(s.path("upload", "pay.xml.part")))
	}
}

func TestUploadRefusesWhatTheBankArchived(t *testing.T) {
	s, key := setup(t)
	p := s.profile(key)
	p.ArchiveDir = "archive"
	if err := os.Mkdir(s.path("archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path("archive", "pay.xml"), []byte("consumed"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	if where, size := find(t, c, "pay.xml"); where != InArchive || size != 8 {
		t.Fatalf("Find = %q, %d; want archive, 8", where, size)
	}
	if err := c.Upload(ctx(t), "pay.xml", []byte("again")); !errors.Is(err, ErrExists) {
		t.Fatalf("Upload: %v; want ErrExists", err)
	}
	if exists(s.path("upload", "pay.xml")) || exists(s.path("upload", "pay.xml.part")) {
		t.Fatal("the refused upload wrote to the upload folder")
	}
}

func TestUploadCutMidWriteIsNotUploaded(t *testing.T) {
	s, key := setup(t)
	s.cutAfter = 40_000
	c := dial(t, s.profile(key))
	err := c.Upload(ctx(t), "pay.xml", content(t, 200_000))
	if !errors.Is(err, ErrNotUploaded) || errors.Is(err, ErrUncertain) {
		t.Fatalf("Upload: %v; want ErrNotUploaded", err)
	}
	if exists(s.path("upload", "pay.xml")) {
		t.Fatal("the file is under its final name")
	}
	if fi, err := os.Stat(s.path("upload", "pay.xml.part")); err != nil || fi.Size() != 40_000 {
		t.Fatalf("the .part: %v, %v; want 40000 bytes", fi, err)
	}

	s.mu.Lock()
	s.cutAfter = 0
	s.mu.Unlock()
	c2 := dial(t, s.profile(key))
	if where, size := find(t, c2, "pay.xml"); where != Partial || size != 40_000 {
		t.Fatalf("Find = %q, %d; want partial, 40000", where, size)
	}
	if err := c2.RemovePartial(ctx(t), "pay.xml"); err != nil {
		t.Fatalf("RemovePartial: %v", err)
	}
	if where, _ := find(t, c2, "pay.xml"); where != Nowhere {
		t.Fatalf("after RemovePartial Find = %q, want nowhere", where)
	}
	if err := c2.RemovePartial(ctx(t), "pay.xml"); !errors.Is(err, ErrGone) {
		t.Fatalf("RemovePartial of nothing must say it was not there: %v", err)
	}
	want := content(t, 200_000)
	if err := c2.Upload(ctx(t), "pay.xml", want); err != nil {
		t.Fatalf("upload after the cut: %v", err)
	}
	if !bytes.Equal(readFile(t, s.path("upload", "pay.xml")), want) {
		t.Fatal("the second upload is not the file")
	}
}

func TestUploadLostRenameAnswerIsUncertain(t *testing.T) {
	s, key := setup(t)
	s.dropAfterRename = true
	c := dial(t, s.profile(key))
	want := content(t, 50_000)
	err := c.Upload(ctx(t), "pay.xml", want)
	if !errors.Is(err, ErrUncertain) || errors.Is(err, ErrNotUploaded) {
		t.Fatalf("Upload: %v; want ErrUncertain only", err)
	}
	s.mu.Lock()
	s.dropAfterRename = false
	s.mu.Unlock()
	c2 := dial(t, s.profile(key))
	if where, size := find(t, c2, "pay.xml"); where != InUpload || size != int64(len(want)) {
		t.Fatalf("Find = %q, %d; want upload, %d", where, size, len(want))
	}
}

func TestUploadTimeoutDuringRenameIsUncertain(t *testing.T) {
	s, key := setup(t)
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	s.hangOnRename = hang
	c := dial(t, s.profile(key))
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := c.Upload(short, "pay.xml", []byte("<Document/>"))
	if !errors.Is(err, ErrUncertain) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Upload: %v; want ErrUncertain naming the deadline", err)
	}
	// The ended context closed the connection: the next call fails and
	// says nothing was uploaded.
	if err := c.Upload(ctx(t), "other.xml", []byte("x")); !errors.Is(err, ErrNotUploaded) {
		t.Fatalf("Upload on the closed connection: %v; want ErrNotUploaded", err)
	}
}

func TestUploadOnEndedContextIsNotUploaded(t *testing.T) {
	s, key := setup(t)
	c := dial(t, s.profile(key))
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Upload(done, "pay.xml", []byte("x")); !errors.Is(err, ErrNotUploaded) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Upload: %v; want ErrNotUploaded naming the cancellation", err)
	}
	if exists(s.path("upload", "pay.xml.part")) {
		t.Fatal("an upload on an ended context wrote")
	}
}

func TestHostKeyMismatch(t *testing.T) {
	s, key := setup(t)
	other, _ := newKey(t)
	p := s.profile(key)
	p.HostKey = string(ssh.MarshalAuthorizedKey(other.PublicKey()))
	_, err := Dial(ctx(t), p)
	if !errors.Is(err, ErrHostKey) || errors.Is(err, ErrAuth) {
		t.Fatalf("Dial: %v; want ErrHostKey", err)
	}
	for _, fp := range []string{Fingerprint(s.hostKey.PublicKey()), Fingerprint(other.PublicKey())} {
		if !strings.Contains(err.Error(), fp) {
			t.Errorf("the error does not name fingerprint %s: %v", fp, err)
		}
	}
	if !strings.Contains(err.Error(), "Ask the bank") {
		t.Errorf("the error does not say to check with the bank: %v", err)
	}
	if n := s.authSeen.Load(); n != 0 {
		t.Fatalf("the client offered its key %d times to a server it does not trust", n)
	}
	noKey(t, key, err.Error())

	// A fingerprint pin of another key is refused the same way.
	p.HostKey = Fingerprint(other.PublicKey())
	if _, err := Dial(ctx(t), p); !errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial with a wrong fingerprint: %v; want ErrHostKey", err)
	}
}

func TestHostKeyPinForms(t *testing.T) {
	s, key := setup(t)
	pub := s.hostKey.PublicKey()
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	for name, pin := range map[string]string{
		"fingerprint":     Fingerprint(pub),
		"authorized_keys": line + " bank-host-key",
		"known_hosts":     "[127.0.0.1]:2222 " + line,
	} {
		t.Run(name, func(t *testing.T) {
			p := s.profile(key)
			p.HostKey = pin
			c, err := Dial(ctx(t), p)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			c.Close()
		})
	}
	if fp := Fingerprint(pub); !strings.HasPrefix(fp, "SHA256:") || len(fp) != len("SHA256:")+43 {
		t.Fatalf("Fingerprint = %q, want SHA256: and 43 base64 characters", fp)
	}
}

func TestWrongClientKeyIsErrAuth(t *testing.T) {
	s, _ := setup(t)
	_, wrong := newKey(t)
	_, err := Dial(ctx(t), s.profile(wrong))
	if !errors.Is(err, ErrAuth) || errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial: %v; want ErrAuth", err)
	}
	noKey(t, wrong, err.Error())
}

func TestDialNothingListening(t *testing.T) {
	s, key := setup(t)
	p := s.profile(key)
	ln, err := listenAndClose()
	if err != nil {
		t.Fatal(err)
	}
	p.Port = ln
	_, err = Dial(ctx(t), p)
	if err == nil || errors.Is(err, ErrAuth) || errors.Is(err, ErrHostKey) {
		t.Fatalf("Dial to a closed port: %v", err)
	}
	if !strings.Contains(err.Error(), p.String()) {
		t.Fatalf("the error does not name the server: %v", err)
	}
}

func TestReportsOldestFirstAndMoveProcessed(t *testing.T) {
	s, key := setup(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	write := func(name, body string, age time.Duration) {
		t.Helper()
		p := s.path("download", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, base.Add(age), base.Add(age)); err != nil {
			t.Fatal(err)
		}
	}
	write("b.xml", "second", 2*time.Minute)
	write("c.xml", "first", time.Minute)
	write("a.xml", "third", 3*time.Minute)
	write("d.xml.part", "being written", 0)
	if err := os.Mkdir(s.path("download", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.profile(key))

	names := func(rs []Report) string {
		var n []string
		for _, r := range rs {
			n = append(n, r.Name)
		}
		return strings.Join(n, ",")
	}
	rs, err := c.Reports(ctx(t), 0)
	if err != nil {
		t.Fatalf("Reports: %v", err)
	}
	if got := names(rs); got != "c.xml,b.xml,a.xml" {
		t.Fatalf("Reports = %s, want c.xml,b.xml,a.xml", got)
	}
	if string(rs[0].Content) != "first" || !rs[0].ModTime.Equal(base.Add(time.Minute)) {
		t.Fatalf("first report: %q at %v", rs[0].Content, rs[0].ModTime)
	}
	if rs, err = c.Reports(ctx(t), 2); err != nil || names(rs) != "c.xml,b.xml" {
		t.Fatalf("Reports(2) = %s, %v", names(rs), err)
	}

	// Moving creates the folder; a second report of the same name gets a
	// suffix and the first stays as it was.
	if err := c.MoveProcessed(ctx(t), "c.xml"); err != nil {
		t.Fatalf("MoveProcessed: %v", err)
	}
	write("c.xml", "another first", 4*time.Minute)
	if err := c.MoveProcessed(ctx(t), "c.xml"); err != nil {
		t.Fatalf("MoveProcessed again: %v", err)
	}
	if got := string(readFile(t, s.path("download", "processed", "c.xml"))); got != "first" {
		t.Fatalf("processed/c.xml = %q, was overwritten", got)
	}
	if got := string(readFile(t, s.path("download", "processed", "c.2.xml"))); got != "another first" {
		t.Fatalf("processed/c.2.xml = %q", got)
	}
	if rs, err = c.Reports(ctx(t), 0); err != nil || names(rs) != "b.xml,a.xml" {
		t.Fatalf("Reports after moving = %s, %v", names(rs), err)
	}
	if err := c.MoveProcessed(ctx(t), "gone.xml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("MoveProcessed of a missing report: %v", err)
	}
}

func TestReportsRefuseOversizedFile(t *testing.T) {
	s, key := setup(t)
	f, err := os.Create(s.path("download", "huge.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxReportSize + 1); err != nil { // sparse: no 16 MiB written
		t.Fatal(err)
	}
	f.Close()
	c := dial(t, s.profile(key))
	_, err = c.Reports(ctx(t), 0)
	if err == nil || !strings.Contains(err.Error(), "download/huge.xml") {
		t.Fatalf("Reports: %v; want an error naming huge.xml", err)
	}
}

func TestFileNamesAreChecked(t *testing.T) {
	s, key := setup(t)
	c := dial(t, s.profile(key))
	for _, name := range []string{"", "..", "../etc/passwd", "a/b.xml", "pay.xml.part"} {
		if err := c.Upload(ctx(t), name, []byte("x")); !errors.Is(err, ErrNotUploaded) {
			t.Errorf("Upload(%q): %v; want ErrNotUploaded", name, err)
		}
		if _, _, err := c.Find(ctx(t), name); err == nil {
			t.Errorf("Find(%q) accepted the name", name)
		}
		if err := c.MoveProcessed(ctx(t), name); err == nil {
			t.Errorf("MoveProcessed(%q) accepted the name", name)
		}
	}
}

func TestWatchedWriterTellsSentFromNeverLeft(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	w := &watchedWriter{WriteCloser: a}
	if _, err := w.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}
	w.mark()
	if w.sentAfterMark() {
		t.Fatal("nothing written after mark, yet sent")
	}
	if _, err := w.Write([]byte("rename")); err != nil {
		t.Fatal(err)
	}
	if !w.sentAfterMark() {
		t.Fatal("a good write after mark is not sent")
	}
	w.mark()
	a.Close()
	if _, err := w.Write([]byte("rename")); err == nil {
		t.Fatal("write on a closed pipe succeeded")
	}
	if w.sentAfterMark() {
		t.Fatal("a failed write after mark counts as sent")
	}
}
