package simulator

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"koerier/domain"
)

// maxFileBytes bounds what the bank reads of one uploaded file; a bigger file
// is answered as unreadable (FF01), as a bank refuses an oversized file.
const maxFileBytes = 32 << 20

// Outcomes of a consumed file, as FileRecord.Outcome and the control API show
// them.
const (
	OutcomeAccepted   = "accepted"
	OutcomePartial    = "partially-accepted"
	OutcomeRejected   = "rejected"
	OutcomeDuplicate  = "duplicate"
	OutcomeUnreadable = "unreadable"
)

// UnknownMsgID is the OrgnlMsgId of the report on a file whose MsgId could
// not be read.
const UnknownMsgID = "NOTPROVIDED"

// RejectPrefix starts the MsgId of a file the simulator rejects whole (RJCT,
// FF01).
const RejectPrefix = "SIM-RJCT"

// creditorScenario matches a creditor name "SIM AC01": that transaction is
// rejected with reason AC01.
var creditorScenario = regexp.MustCompile(`^SIM ([A-Z0-9]{4})$`)

// processLoop consumes uploaded files and writes the reports that are due,
// every Poll, until the simulator closes.
func (s *Sim) processLoop() {
	t := time.NewTicker(s.opts.Poll)
	defer t.Stop()
	for {
		s.tick()
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}

func (s *Sim) tick() {
	s.mu.Lock()
	users := make([]string, 0, len(s.st.Users))
	for u := range s.st.Users {
		users = append(users, u)
	}
	s.mu.Unlock()
	sort.Strings(users)
	for _, user := range users {
		s.consume(user)
		s.writeDue(user, time.Now())
	}
}

// consume takes every complete file from user's upload/, oldest first. A file
// is complete when it is not a ".part" and no session holds it open for
// writing.
func (s *Sim) consume(user string) {
	dir := filepath.Join(s.UserDir(user), "upload")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.WithError(err).WithField("user", user).Warn("cannot list the upload folder")
		}
		return
	}
	type candidate struct {
		name string
		mod  time.Time
	}
	var files []candidate
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".part") || s.beingWritten(user, "upload/"+e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, candidate{e.Name(), fi.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].name < files[j].name
	})
	for _, f := range files {
		if err := s.consumeFile(user, f.name); err != nil {
			s.log.WithError(err).WithFields(logrus.Fields{"user": user, "file": f.name}).Error("cannot consume an uploaded file")
		}
	}
}

// consumeFile moves one file to archive/ (what "the bank took it" looks like to
// a client), reads it and schedules its reports.
func (s *Sim) consumeFile(user, name string) error {
	base := s.UserDir(user)
	archived, err := archive(base, name)
	if err != nil {
		return err
	}
	content, size, readErr := readBounded(filepath.Join(base, "archive", archived))
	now := time.Now()

	var pf domain.PaymentFile
	if readErr == nil {
		pf, readErr = domain.ReadPayment(content)
		if readErr == nil && pf.MsgID == "" {
			readErr = errors.New("the file has no GrpHdr/MsgId")
		}
	}

	s.mu.Lock()
	u := s.st.Users[user]
	if u == nil { // cannot happen: users are never removed
		s.mu.Unlock()
		return fmt.Errorf("user %s is not registered", user)
	}
	rec := FileRecord{Name: name, ArchivedAs: archived, Time: now.UTC(), Size: size}
	if readErr == nil {
		rec.MsgID = pf.MsgID
	}
	u.Seen[rec.MsgID]++
	rec.Arrival = u.Seen[rec.MsgID]
	var plan []plannedReport
	rec.Outcome, plan = decide(pf, readErr, rec.Arrival)
	start := now.Add(s.slow)
	stem := reportStem(rec.MsgID, name)
	for i, p := range plan {
		s.st.Seq++
		u.Next[stem]++
		r := ReportRecord{
			Name:        fmt.Sprintf("%s-%d.xml", stem, u.Next[stem]),
			MsgID:       fmt.Sprintf("SIMBANK%s%08d", now.UTC().Format("20060102"), s.st.Seq),
			OrgnlMsgID:  rec.MsgID,
			GroupStatus: p.group,
			Due:         start.Add(time.Duration(i+1) * s.opts.Step).UTC(),
		}
		orig := pf
		if readErr != nil {
			// OrgnlMsgId is mandatory in pain.002; ISO 20022's NOTPROVIDED
			// stands in for a MsgId the bank could not read, so the report
			// links to no payment order. It answers in the generation of the
			// newest version the bank takes, as it cannot tell which was meant.
			orig = domain.PaymentFile{Version: domain.Pain001V09, MsgID: UnknownMsgID}
			r.OrgnlMsgID = UnknownMsgID
		}
		r.Content, err = domain.ComposeStatusReport(orig, r.MsgID, r.Due, p.group, p.reason, p.txs)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("compose the %s report for %s: %w", p.group, name, err)
		}
		u.Reports = append(u.Reports, r)
	}
	u.Files = append(u.Files, rec)
	s.mu.Unlock()

	fields := logrus.Fields{"user": user, "file": name, "msg_id": rec.MsgID, "outcome": rec.Outcome, "reports": len(plan)}
	if readErr != nil {
		fields["problem"] = readErr.Error()
	}
	s.log.WithFields(fields).Info("file consumed")
	return s.save()
}

// plannedReport is one status report to write, a Step after the one before.
type plannedReport struct {
	group, reason string
	txs           []domain.TxStatus
}

// decide is the bank's answer to a file: its outcome and reports. arrival is
// 1 for the first file with this MsgId.
func decide(pf domain.PaymentFile, readErr error, arrival int) (string, []plannedReport) {
	switch {
	case readErr != nil:
		return OutcomeUnreadable, []plannedReport{{group: "RJCT", reason: "FF01"}}
	case arrival > 1:
		return OutcomeDuplicate, []plannedReport{{group: "RJCT", reason: "DUPL"}}
	case strings.HasPrefix(pf.MsgID, RejectPrefix):
		return OutcomeRejected, []plannedReport{{group: "RJCT", reason: "FF01"}}
	}
	var rejected, accepted, settled []domain.TxStatus
	for _, tx := range pf.Transactions() {
		if m := creditorScenario.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(tx.CreditorName))); m != nil {
			rejected = append(rejected, domain.TxStatus{OrgnlEndToEndID: tx.EndToEndID, Status: "RJCT",
				Reasons: []domain.StatusReason{{Code: m[1], Info: domain.ReasonText(m[1])}}})
			continue
		}
		accepted = append(accepted, domain.TxStatus{OrgnlEndToEndID: tx.EndToEndID, Status: "ACCP"})
		settled = append(settled, domain.TxStatus{OrgnlEndToEndID: tx.EndToEndID, Status: "ACSC"})
	}
	switch {
	case len(rejected) == 0:
		return OutcomeAccepted, []plannedReport{{group: "ACTC"}, {group: "ACCP"}, {group: "ACSC"}}
	case len(accepted) == 0:
		// Nothing left to pay: ISO 20022 reports that as a rejected file, with
		// the reasons per transaction.
		return OutcomeRejected, []plannedReport{{group: "RJCT", txs: rejected}}
	}
	// The settlement report names only what was paid, so that it never seems
	// to settle a rejected transfer.
	return OutcomePartial, []plannedReport{{group: "PART", txs: append(rejected, accepted...)}, {group: "ACSC", txs: settled}}
}

// reportStem names a file's reports: its MsgId, or the uploaded file's name
// when the MsgId could not be read, made safe as a file name.
func reportStem(msgID, fileName string) string {
	s := msgID
	if s == "" {
		s = strings.TrimSuffix(fileName, filepath.Ext(fileName))
	}
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	s = strings.TrimLeft(string(b), ".")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "unknown"
	}
	return s
}

// archive moves upload/name into archive/, under name or, when that is taken
// by an earlier file, name.2, name.3, …; it returns the name in archive/. A
// hard link never replaces an existing file, so no archived file is lost.
func archive(base, name string) (string, error) {
	src := filepath.Join(base, "upload", name)
	if err := os.MkdirAll(filepath.Join(base, "archive"), 0o755); err != nil {
		return "", fmt.Errorf("create the archive folder: %w", err)
	}
	for i := 1; i < 10000; i++ {
		as := name
		if i > 1 {
			as = fmt.Sprintf("%s.%d", name, i)
		}
		err := os.Link(src, filepath.Join(base, "archive", as))
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("move %s to the archive: %w", name, err)
		}
		if err := os.Remove(src); err != nil {
			return "", fmt.Errorf("move %s to the archive: %w", name, err)
		}
		return as, nil
	}
	return "", fmt.Errorf("move %s to the archive: too many files of that name there", name)
}

func readBounded(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, int64(len(b)), fmt.Errorf("read the file: %w", err)
	}
	if len(b) > maxFileBytes {
		fi, _ := f.Stat()
		size := int64(len(b))
		if fi != nil {
			size = fi.Size()
		}
		return nil, size, fmt.Errorf("the file is larger than %d MiB", maxFileBytes>>20)
	}
	return b, int64(len(b)), nil
}

// writeDue writes user's reports that are due, each as a ".part" renamed when
// complete, as a bank does, so that a client never reads half a report.
func (s *Sim) writeDue(user string, now time.Time) {
	type due struct {
		i       int
		name    string
		content []byte
	}
	var todo []due
	s.mu.Lock()
	if u := s.st.Users[user]; u != nil {
		for i, r := range u.Reports {
			if !r.Written && !r.Due.After(now) {
				todo = append(todo, due{i, r.Name, r.Content})
			}
		}
	}
	s.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	dir := filepath.Join(s.UserDir(user), "download")
	written := 0
	for _, d := range todo {
		if err := writeReport(dir, d.name, d.content); err != nil {
			s.log.WithError(err).WithFields(logrus.Fields{"user": user, "report": d.name}).Error("cannot write a status report; trying again")
			continue
		}
		// Only this goroutine changes Reports, so the index still holds.
		s.mu.Lock()
		r := &s.st.Users[user].Reports[d.i]
		r.Written, r.Content = true, nil
		s.mu.Unlock()
		s.log.WithFields(logrus.Fields{"user": user, "report": d.name}).Info("status report written")
		written++
	}
	if written > 0 {
		if err := s.save(); err != nil {
			s.log.WithError(err).Error("cannot keep the state; a restart may write reports again")
		}
	}
}

func writeReport(dir, name string, content []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	part := filepath.Join(dir, name+".part")
	if err := os.WriteFile(part, content, 0o644); err != nil {
		os.Remove(part)
		return err
	}
	return os.Rename(part, filepath.Join(dir, name))
}
