package simulator

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"koerier/domain"
)

const testStep = 30 * time.Millisecond

func startSim(t *testing.T, dir string) *Sim {
	t.Helper()
	sim, err := Start(context.Background(), Options{Dir: dir, Poll: 10 * time.Millisecond, Step: testStep})
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	return sim
}

func newKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err)
	return signer
}

// dialSFTP connects as user with key over a real socket, pinning the
// simulator's host key as Koerier does.
func dialSFTP(sim *Sim, user string, key ssh.Signer) (*sftp.Client, error) {
	pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sim.HostKey()))
	if err != nil {
		return nil, err
	}
	conn, err := ssh.Dial("tcp", sim.Addr(), &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(pinned),
		Timeout:         5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func mustDial(t *testing.T, sim *Sim, user string, key ssh.Signer) *sftp.Client {
	t.Helper()
	c, err := dialSFTP(sim, user, key)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// putFile writes name.part in upload/ and renames it, as Koerier's client does.
func putFile(c *sftp.Client, name string, content []byte) error {
	f, err := c.Create("upload/" + name + ".part")
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return c.PosixRename("upload/"+name+".part", "upload/"+name)
}

// pain001 is a pain.001.001.09 with one transfer per creditor name; padding
// grows the file (for the drop tests) with a longer remittance text spread over
// an XML comment.
func pain001(msgID string, padding int, creditors ...string) []byte {
	var txs strings.Builder
	for i, name := range creditors {
		fmt.Fprintf(&txs, `
      <CdtTrfTxInf>
        <PmtId><EndToEndId>E2E-%d</EndToEndId></PmtId>
        <Amt><InstdAmt Ccy="EUR">10.00</InstdAmt></Amt>
        <Cdtr><Nm>%s</Nm></Cdtr>
        <CdtrAcct><Id><IBAN>NL39RABO0300065264</IBAN></Id></CdtrAcct>
      </CdtTrfTxInf>`, i+1, name)
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">
  <!-- %s -->
  <CstmrCdtTrfInitn>
    <GrpHdr>
      <MsgId>%s</MsgId>
      <CreDtTm>2026-11-24T10:15:00</CreDtTm>
      <NbOfTxs>%d</NbOfTxs>
      <CtrlSum>%d.00</CtrlSum>
      <InitgPty><Nm>Drukkerij Voorbeeld B.V.</Nm></InitgPty>
    </GrpHdr>
    <PmtInf>
      <PmtInfId>%s-1</PmtInfId>
      <PmtMtd>TRF</PmtMtd>
      <NbOfTxs>%d</NbOfTxs>
      <ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>
      <Dbtr><Nm>Drukkerij Voorbeeld B.V.</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>NL91ABNA0417164300</IBAN></Id></DbtrAcct>
      <DbtrAgt><FinInstnId><BICFI>ABNANL2A</BICFI></FinInstnId></DbtrAgt>%s
    </PmtInf>
  </CstmrCdtTrfInitn>
</Document>
`, strings.Repeat("x", padding), msgID, len(creditors), 10*len(creditors), msgID, len(creditors), txs.String())
}

// pain001v03 is the same in the older generation, which Dutch banks still take.
func pain001v03(msgID string, creditors ...string) []byte {
	b := pain001(msgID, 0, creditors...)
	b = bytes.Replace(b, []byte("pain.001.001.09"), []byte("pain.001.001.03"), 1)
	b = bytes.Replace(b, []byte("<ReqdExctnDt><Dt>2026-12-01</Dt></ReqdExctnDt>"), []byte("<ReqdExctnDt>2026-12-01</ReqdExctnDt>"), 1)
	return bytes.Replace(b, []byte("BICFI"), []byte("BIC"), 2)
}

type report struct {
	name string
	domain.StatusReport
}

// waitReports reads download/ over SFTP until it holds want reports named
// after stem, and returns them in order of their number.
func waitReports(t *testing.T, c *sftp.Client, stem string, want int) []report {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var names []string
		entries, err := c.ReadDir("download")
		require.NoError(t, err)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), stem+"-") && strings.HasSuffix(e.Name(), ".xml") {
				names = append(names, e.Name())
			}
		}
		if len(names) >= want || time.Now().After(deadline) {
			require.Len(t, names, want, "reports for %s: %v", stem, names)
			num := func(n string) int {
				v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n, stem+"-"), ".xml"))
				return v
			}
			sort.Slice(names, func(i, j int) bool { return num(names[i]) < num(names[j]) })
			out := make([]report, 0, len(names))
			for _, n := range names {
				f, err := c.Open("download/" + n)
				require.NoError(t, err)
				b, err := io.ReadAll(f)
				f.Close()
				require.NoError(t, err)
				rep, err := domain.ReadStatusReport(b)
				require.NoError(t, err, "report %s", n)
				out = append(out, report{n, rep})
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func groups(rs []report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.GroupStatus)
	}
	return out
}

func exists(c *sftp.Client, p string) bool {
	_, err := c.Stat(p)
	return err == nil
}

func TestAcceptedFileIsSettled(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	require.NoError(t, putFile(c, "MSG-OK-1.xml", pain001("MSG-OK-1", 0, "Papiergroothandel Noord B.V.", "Inktservice Oost V.O.F.")))
	reps := waitReports(t, c, "MSG-OK-1", 3)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(reps))
	for i, r := range reps {
		assert.Equal(t, fmt.Sprintf("MSG-OK-1-%d.xml", i+1), r.name)
		assert.Equal(t, "MSG-OK-1", r.OrgnlMsgID)
		assert.Equal(t, domain.Pain002V10, r.Version)
		assert.Empty(t, r.Transactions)
		if i > 0 {
			assert.False(t, r.Created.Before(reps[i-1].Created), "reports come in order")
			assert.NotEqual(t, reps[i-1].MsgID, r.MsgID, "each report has its own MsgId")
		}
	}
	// The bank consumed the file: it is in archive/, not in upload/, and no
	// half-written report is left.
	assert.True(t, exists(c, "archive/MSG-OK-1.xml"))
	assert.False(t, exists(c, "upload/MSG-OK-1.xml"))
	entries, err := c.ReadDir("download")
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasSuffix(e.Name(), ".part"), e.Name())
	}
	assert.Equal(t, 1, sim.Received("demo", "MSG-OK-1"))

	// The control API says the same.
	resp, err := http.Get(sim.ControlURL() + "/control/files?user=demo")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var act Activity
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&act))
	require.Len(t, act.Files, 1)
	assert.Equal(t, "MSG-OK-1", act.Files[0].MsgID)
	assert.Equal(t, "MSG-OK-1.xml", act.Files[0].Name)
	assert.Equal(t, 1, act.Files[0].TimesSeen)
	assert.Equal(t, OutcomeAccepted, act.Files[0].Outcome)
	require.Len(t, act.Reports, 3)
	for _, r := range act.Reports {
		assert.True(t, r.Written)
		assert.Empty(t, r.Content, "the listing carries no report content")
	}
}

func TestWholeFileRejected(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	require.NoError(t, putFile(c, "f.xml", pain001("SIM-RJCT-7", 0, "Papiergroothandel Noord B.V.")))
	reps := waitReports(t, c, "SIM-RJCT-7", 1)
	assert.Equal(t, "RJCT", reps[0].GroupStatus)
	assert.Equal(t, "SIM-RJCT-7", reps[0].OrgnlMsgID)
	require.Len(t, reps[0].GroupReasons, 1)
	assert.Equal(t, "FF01", reps[0].GroupReasons[0].Code)

	// A rejected file gets no further reports.
	time.Sleep(5 * testStep)
	waitReports(t, c, "SIM-RJCT-7", 1)
	assert.Equal(t, OutcomeRejected, sim.Files("demo").Files[0].Outcome)
}

func TestTransactionRejectedByCreditorName(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	// The older generation is answered in its own generation.
	require.NoError(t, putFile(c, "part.xml", pain001v03("MSG-PART-1", "Papiergroothandel Noord B.V.", "SIM AC01")))
	reps := waitReports(t, c, "MSG-PART-1", 2)
	assert.Equal(t, []string{"PART", "ACSC"}, groups(reps))
	assert.Equal(t, domain.Pain002V03, reps[0].Version)

	byID := map[string]domain.TxStatus{}
	for _, tx := range reps[0].Transactions {
		byID[tx.OrgnlEndToEndID] = tx
	}
	require.Len(t, byID, 2)
	assert.Equal(t, "ACCP", byID["E2E-1"].Status)
	assert.Equal(t, "RJCT", byID["E2E-2"].Status)
	require.Len(t, byID["E2E-2"].Reasons, 1)
	assert.Equal(t, "AC01", byID["E2E-2"].Reasons[0].Code)
	assert.NotEmpty(t, byID["E2E-2"].Reasons[0].Info)

	// The settlement names only the transfer that was paid.
	require.Len(t, reps[1].Transactions, 1)
	assert.Equal(t, "E2E-1", reps[1].Transactions[0].OrgnlEndToEndID)
	assert.Equal(t, "ACSC", reps[1].Transactions[0].Status)

	// Every transfer rejected: the file is rejected, with each reason.
	require.NoError(t, putFile(c, "all.xml", pain001("MSG-PART-2", 0, "SIM AM04", "sim ac04")))
	reps = waitReports(t, c, "MSG-PART-2", 1)
	assert.Equal(t, "RJCT", reps[0].GroupStatus)
	require.Len(t, reps[0].Transactions, 2)
	assert.Equal(t, "AM04", reps[0].Transactions[0].Reasons[0].Code)
	assert.Equal(t, "AC04", reps[0].Transactions[1].Reasons[0].Code)
}

func TestDuplicateMsgIDRejected(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	file := pain001("MSG-DUP-1", 0, "Papiergroothandel Noord B.V.")
	require.NoError(t, putFile(c, "MSG-DUP-1.xml", file))
	first := waitReports(t, c, "MSG-DUP-1", 3)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(first))

	// The same name again: the first stays in archive/, the second is kept
	// beside it.
	require.NoError(t, putFile(c, "MSG-DUP-1.xml", file))
	all := waitReports(t, c, "MSG-DUP-1", 4)
	dup := all[3]
	assert.Equal(t, "MSG-DUP-1-4.xml", dup.name)
	assert.Equal(t, "RJCT", dup.GroupStatus)
	assert.Equal(t, "MSG-DUP-1", dup.OrgnlMsgID)
	require.Len(t, dup.GroupReasons, 1)
	assert.Equal(t, "DUPL", dup.GroupReasons[0].Code)
	assert.Equal(t, 2, sim.Received("demo", "MSG-DUP-1"))
	assert.True(t, exists(c, "archive/MSG-DUP-1.xml"))
	assert.True(t, exists(c, "archive/MSG-DUP-1.xml.2"))

	files := sim.Files("demo").Files
	require.Len(t, files, 2)
	assert.Equal(t, OutcomeAccepted, files[0].Outcome)
	assert.Equal(t, OutcomeDuplicate, files[1].Outcome)
	assert.Equal(t, 2, files[1].Arrival)
	assert.Equal(t, 2, files[0].TimesSeen)

	// MsgIds are per user: another user's file with the same MsgId is new.
	other := newKey(t)
	require.NoError(t, sim.AddUser("other", other.PublicKey()))
	c2 := mustDial(t, sim, "other", other)
	require.NoError(t, putFile(c2, "x.xml", file))
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c2, "MSG-DUP-1", 3)))
	assert.Equal(t, 2, sim.Received("demo", "MSG-DUP-1"))
}

func TestUnreadableFileRejected(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	require.NoError(t, putFile(c, "garbage.xml", []byte("this is not a payment file")))
	reps := waitReports(t, c, "garbage", 1)
	assert.Equal(t, "RJCT", reps[0].GroupStatus)
	assert.Equal(t, UnknownMsgID, reps[0].OrgnlMsgID)
	require.Len(t, reps[0].GroupReasons, 1)
	assert.Equal(t, "FF01", reps[0].GroupReasons[0].Code)
	files := sim.Files("demo").Files
	require.Len(t, files, 1)
	assert.Equal(t, OutcomeUnreadable, files[0].Outcome)
	assert.Empty(t, files[0].MsgID)
}

func TestOnlyRegisteredKeysLogIn(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))

	_, err := dialSFTP(sim, "demo", newKey(t))
	require.Error(t, err, "an unregistered key")
	assert.Contains(t, err.Error(), "unable to authenticate")
	_, err = dialSFTP(sim, "nobody", key)
	require.Error(t, err, "a registered key under another user name")
	assert.Contains(t, err.Error(), "unable to authenticate")

	// Password authentication is not offered at all.
	_, err = ssh.Dial("tcp", sim.Addr(), &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.Password("x")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	require.Error(t, err)

	// Registering is idempotent, and a second key works beside the first.
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	second := newKey(t)
	require.NoError(t, sim.AddUser("demo", second.PublicKey()))
	users := sim.Users()
	require.Len(t, users, 1)
	assert.Equal(t, []string{ssh.FingerprintSHA256(key.PublicKey()), ssh.FingerprintSHA256(second.PublicKey())}, users[0].Fingerprints)
	c := mustDial(t, sim, "demo", second)
	_, err = c.ReadDir("upload")
	require.NoError(t, err)

	assert.Error(t, sim.AddUser("../etc", key.PublicKey()), "a user name must be a plain folder name")
}

func TestHostKeyIsPinnable(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))

	var seen ssh.PublicKey
	conn, err := ssh.Dial("tcp", sim.Addr(), &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error { seen = k; return nil }, Timeout: 5 * time.Second})
	require.NoError(t, err)
	conn.Close()
	assert.Equal(t, sim.Fingerprint(), ssh.FingerprintSHA256(seen))
	assert.Equal(t, sim.HostKey(), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(seen))))
	assert.True(t, strings.HasPrefix(sim.HostKey(), "ssh-ed25519 AAAA"))

	// A client pinning another key refuses the server.
	other := newKey(t)
	_, err = ssh.Dial("tcp", sim.Addr(), &ssh.ClientConfig{User: "demo", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(other.PublicKey()), Timeout: 5 * time.Second})
	require.Error(t, err)
}

func TestSessionStaysInTheUserFolder(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	f, err := c.Create("../../escape.txt")
	require.NoError(t, err)
	f.Close()
	assert.FileExists(t, filepath.Join(sim.UserDir("demo"), "escape.txt"), ".. stops at the user's folder")
	assert.NoFileExists(t, filepath.Join(sim.Dir(), "escape.txt"))
	_, err = c.Open("/../" + StateFile)
	assert.Error(t, err, "the state is outside the session")
	assert.Error(t, c.Symlink("/upload", "link"), "links are refused")

	// A plain Rename does not replace a file; PosixRename does.
	for _, n := range []string{"upload/a", "upload/b"} {
		f, err := c.Create(n)
		require.NoError(t, err)
		f.Close()
	}
	assert.Error(t, c.Rename("upload/a", "upload/b"))
	assert.NoError(t, c.PosixRename("upload/a", "upload/b"))
}

func TestDropNextLeavesPartialUpload(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c, err := dialSFTP(sim, "demo", key)
	require.NoError(t, err)
	defer c.Close()

	sim.DropNext(1, 40000)
	content := pain001("MSG-DROP-1", 100000, "Papiergroothandel Noord B.V.")
	err = putFile(c, "MSG-DROP-1.xml", content)
	require.Error(t, err, "the connection is cut mid-upload")

	c2 := mustDial(t, sim, "demo", key)
	fi, err := c2.Stat("upload/MSG-DROP-1.xml.part")
	require.NoError(t, err, "the partial file stays")
	assert.Equal(t, int64(40000), fi.Size())
	assert.False(t, exists(c2, "upload/MSG-DROP-1.xml"))
	time.Sleep(10 * testStep)
	assert.False(t, exists(c2, "upload/MSG-DROP-1.xml"))
	assert.Equal(t, 0, sim.Received("demo", "MSG-DROP-1"), "a .part is never consumed")
	entries, err := c2.ReadDir("archive")
	require.NoError(t, err)
	assert.Empty(t, entries)

	// Only the next upload was dropped: the retry goes through.
	require.NoError(t, putFile(c2, "MSG-DROP-1.xml", content))
	waitReports(t, c2, "MSG-DROP-1", 3)
	assert.Equal(t, 1, sim.Received("demo", "MSG-DROP-1"))

	// A file shorter than after_bytes is cut when it is closed.
	sim.DropNext(1, 1<<20)
	c3, err := dialSFTP(sim, "demo", key)
	require.NoError(t, err)
	defer c3.Close()
	require.Error(t, putFile(c3, "MSG-DROP-2.xml", pain001("MSG-DROP-2", 0, "Papiergroothandel Noord B.V.")))
	assert.True(t, exists(c2, "upload/MSG-DROP-2.xml.part"))
	assert.False(t, exists(c2, "upload/MSG-DROP-2.xml"))
}

func TestDropAfterRenameStillProcesses(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c, err := dialSFTP(sim, "demo", key)
	require.NoError(t, err)
	defer c.Close()

	sim.DropAfterRename(1)
	err = putFile(c, "MSG-REN-1.xml", pain001("MSG-REN-1", 0, "Papiergroothandel Noord B.V."))
	require.Error(t, err, "the rename gets no answer")

	// The rename happened: the bank has the file and answers it, once.
	c2 := mustDial(t, sim, "demo", key)
	assert.False(t, exists(c2, "upload/MSG-REN-1.xml.part"))
	reps := waitReports(t, c2, "MSG-REN-1", 3)
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(reps))
	assert.True(t, exists(c2, "archive/MSG-REN-1.xml"))
	assert.Equal(t, 1, sim.Received("demo", "MSG-REN-1"))

	// Moving fetched reports does not count as an upload's rename.
	sim.DropAfterRename(1)
	require.NoError(t, c2.Mkdir("download/processed"))
	require.NoError(t, c2.PosixRename("download/"+reps[0].name, "download/processed/"+reps[0].name))
	assert.True(t, exists(c2, "download/processed/"+reps[0].name))
	sim.mu.Lock()
	assert.Equal(t, 1, sim.dropAfter, "still pending for the next upload")
	sim.mu.Unlock()
}

func TestSlowDelaysReports(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	resp, err := http.Post(sim.ControlURL()+"/control/slow", "application/json", strings.NewReader(`{"delay":"400ms"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	require.NoError(t, putFile(c, "s.xml", pain001("MSG-SLOW-1", 0, "Papiergroothandel Noord B.V.")))
	require.Eventually(t, func() bool { return sim.Received("demo", "MSG-SLOW-1") == 1 }, 5*time.Second, 5*time.Millisecond)
	act := sim.Files("demo")
	require.Len(t, act.Reports, 3)
	consumed := act.Files[0].Time
	for i, r := range act.Reports {
		assert.Equal(t, 400*time.Millisecond+time.Duration(i+1)*testStep, r.Due.Sub(consumed).Round(time.Millisecond), "report %d", i+1)
	}
	entries, err := c.ReadDir("download")
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing before the delay")
	waitReports(t, c, "MSG-SLOW-1", 3)
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sim, err := Start(context.Background(), Options{Dir: dir, Poll: 10 * time.Millisecond, Step: testStep})
	require.NoError(t, err)
	hostKey := sim.HostKey()
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c, err := dialSFTP(sim, "demo", key)
	require.NoError(t, err)
	file := pain001("MSG-KEEP-1", 0, "Papiergroothandel Noord B.V.")
	require.NoError(t, putFile(c, "k.xml", file))
	waitReports(t, c, "MSG-KEEP-1", 3)

	// A file consumed just before the restart: its reports are still due.
	sim.SetSlow(time.Second)
	require.NoError(t, putFile(c, "p.xml", pain001("MSG-KEEP-2", 0, "Papiergroothandel Noord B.V.")))
	require.Eventually(t, func() bool { return sim.Received("demo", "MSG-KEEP-2") == 1 }, 5*time.Second, 5*time.Millisecond)
	c.Close()
	require.NoError(t, sim.Close())

	again := startSim(t, dir)
	assert.Equal(t, hostKey, again.HostKey(), "the host key is reused")
	c2 := mustDial(t, again, "demo", key) // the key is still registered
	require.NoError(t, putFile(c2, "k2.xml", file))
	reps := waitReports(t, c2, "MSG-KEEP-1", 4)
	assert.Equal(t, "RJCT", reps[3].GroupStatus, "the MsgId seen before the restart is a duplicate")
	assert.Equal(t, "DUPL", reps[3].GroupReasons[0].Code)
	assert.Equal(t, 2, again.Received("demo", "MSG-KEEP-1"))
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c2, "MSG-KEEP-2", 3)))
}

func TestControlAPI(t *testing.T) {
	sim := startSim(t, t.TempDir())
	post := func(path, body string) (int, string) {
		resp, err := http.Post(sim.ControlURL()+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(path string, v any) {
		resp, err := http.Get(sim.ControlURL() + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}

	key := newKey(t)
	line := string(ssh.MarshalAuthorizedKey(key.PublicKey()))
	body, _ := json.Marshal(UserRequest{User: "demo", PublicKey: strings.TrimSpace(line) + " koerier@test"})
	for range 2 {
		code, msg := post("/control/users", string(body))
		require.Equal(t, http.StatusOK, code, msg)
	}
	var users []UserInfo
	get("/control/users", &users)
	require.Len(t, users, 1, "registering twice keeps one key")
	assert.Equal(t, []string{ssh.FingerprintSHA256(key.PublicKey())}, users[0].Fingerprints)
	c := mustDial(t, sim, "demo", key)
	_, err := c.ReadDir("/")
	require.NoError(t, err)

	code, msg := post("/control/users", `{"user":"demo","public_key":"not a key"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, msg, "authorized_keys line")
	code, _ = post("/control/users", `{"user":"a/b","public_key":`+strconv.Quote(strings.TrimSpace(line))+`}`)
	assert.Equal(t, http.StatusBadRequest, code)

	var hk HostKeyInfo
	get("/control/host-key", &hk)
	assert.Equal(t, sim.HostKey(), hk.AuthorizedKey)
	assert.Equal(t, sim.Fingerprint(), hk.Fingerprint)

	code, _ = post("/control/drop-next", `{"n":2,"after_bytes":512}`)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, dropRule{n: 2, afterBytes: 512}, sim.dropNext)
	code, _ = post("/control/drop-next", `{"n":-1}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = post("/control/drop-after-rename", `{"n":1}`)
	assert.Equal(t, http.StatusOK, code)
	code, _ = post("/control/slow", `{"delay":"soon"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = post("/control/slow", `{"delay":"3s"}`)
	assert.Equal(t, http.StatusOK, code)
	sim.mu.Lock()
	assert.Equal(t, 1, sim.dropAfter)
	assert.Equal(t, 3*time.Second, sim.slow)
	sim.mu.Unlock()

	resp, err := http.Get(sim.ControlURL() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(sim.ControlURL() + "/control/files")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "files needs a user")
}

func TestCorruptStateIsAnError(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, StateFile), []byte("{"), 0o600))
	_, err := Start(context.Background(), Options{Dir: dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "move the file away")
}

func TestFileOpenForWritingIsNotTaken(t *testing.T) {
	sim := startSim(t, t.TempDir())
	key := newKey(t)
	require.NoError(t, sim.AddUser("demo", key.PublicKey()))
	c := mustDial(t, sim, "demo", key)

	// Written straight under its final name, without a .part: the bank waits
	// until the file is closed.
	content := pain001("MSG-OPEN-1", 0, "Papiergroothandel Noord B.V.")
	f, err := c.Create("upload/direct.xml")
	require.NoError(t, err)
	_, err = f.Write(content[:100])
	require.NoError(t, err)
	time.Sleep(10 * 10 * time.Millisecond) // ten polls
	assert.True(t, exists(c, "upload/direct.xml"), "not taken while open")
	assert.Empty(t, sim.Files("demo").Files)
	_, err = f.Write(content[100:])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Equal(t, []string{"ACTC", "ACCP", "ACSC"}, groups(waitReports(t, c, "MSG-OPEN-1", 3)))
}
