// Package simulator is a local bank host-to-host endpoint for development and
// tests: a real SFTP server (golang.org/x/crypto/ssh with github.com/pkg/sftp's
// request server) on 127.0.0.1 that consumes SEPA payment files (pain.001) and
// answers with status reports (pain.002). Run it as a binary
// (go run ./bank/cmd/bank-simulator) or in-process:
//
//	sim, err := simulator.Start(ctx, simulator.Options{Dir: t.TempDir(), Step: 20 * time.Millisecond})
//	if err != nil { t.Fatal(err) }
//	defer sim.Close()
//	sim.AddUser("demo", clientSigner.PublicKey())
//	// connect to sim.Addr() as "demo", pinning sim.HostKey() or sim.Fingerprint()
//	sim.Received("demo", "MSG-1") // exactly-once assertions
//
// # Folders
//
// Options.Dir holds the ed25519 host key (HostKeyFile, made once and reused,
// since clients pin it), the state (StateFile) and users/<user>/, the folder a
// user's session is rooted in: upload/ (Koerier writes here), download/ (the
// bank's reports) and archive/ (files the bank consumed). Paths cannot leave
// that folder; links cannot be made; shell, exec and forwarding are refused.
//
// # Users
//
// Users log in with a public key only, registered with AddUser or POST
// /control/users {"user":"demo","public_key":"ssh-ed25519 AAAA…"} (idempotent;
// a user may have several keys). Any other key, and any unknown user, is
// refused.
//
// # What the bank does with a file
//
// Every Options.Poll the simulator takes each complete file from every user's
// upload/: not a ".part" and not held open for writing by a session. It moves
// the file to archive/ (under name.2, name.3, … when the name is taken), which
// is how a client that lost the answer to its upload sees that the bank has
// it, reads it with domain.ReadPayment and writes its reports into download/
// as <MsgId>-<n>.xml, each first as a ".part" renamed when complete, the first
// a Step after the file was consumed and each next one a Step later:
//
//   - not a readable pain.001 (or no MsgId): RJCT with reason FF01 and
//     OrgnlMsgId NOTPROVIDED (UnknownMsgID), named after the uploaded file;
//   - a MsgId this user sent before: RJCT with reason DUPL for the duplicate
//     (the first is unaffected). Received counts every arrival;
//   - a MsgId starting with SIM-RJCT: RJCT with reason FF01;
//   - a creditor named "SIM XXXX" (XXXX a reason code: SIM AC01, SIM AM04, …):
//     that transaction RJCT with that reason and the others ACCP, group PART;
//     a Step later ACSC naming only the settled transactions. When every
//     transaction is rejected this way, one RJCT report with their reasons;
//   - otherwise ACTC, then ACCP, then ACSC (settled).
//
// Reports follow the file's generation: pain.001.001.03 is answered with
// pain.002.001.03, pain.001.001.09 with pain.002.001.10.
//
// # Faults
//
// Through methods and the control API (plain HTTP on Options.ControlAddr):
//
//   - SetSlow, POST /control/slow {"delay":"3s"}: reports of files consumed
//     from now on come that much later;
//   - DropNext, POST /control/drop-next {"n":1,"after_bytes":512}: the next n
//     uploads (files opened for writing in upload/) have their connection
//     closed once that many bytes were written, or when the file is closed if
//     it is shorter: the client sees a broken upload and the partial file
//     stays;
//   - DropAfterRename, POST /control/drop-after-rename {"n":1}: the next n
//     renames of a file in upload/ are performed, then the connection is
//     closed without an answer;
//   - HoldNext, POST /control/hold-next {"n":1,"after_bytes":512,"hold":"2m"}:
//     the next n uploads stall once that many bytes were written (or when
//     the file is closed if it is shorter), with the connection held open,
//     for up to hold or until the connection ends; then they go on, or, when
//     the client went away, the partial file stays. A test kills the
//     uploading process while Holding (or "holding" in /control/files) shows
//     the stall. An upload a drop-next claims is not held.
//
// GET /control/files?user=U lists what arrived (name, msg_id, time, arrival,
// times_seen, outcome), the reports, written and pending, and the uploads
// held now; GET
// /control/users the users and their keys' fingerprints; GET
// /control/host-key the host key line and fingerprint; GET /healthz answers ok.
//
// Another process sets up users with the client side of that API: HostKeyOf,
// Register and FilesOf, whose *ControlError tells no answer, not the simulator
// and refused apart; NewKey makes a user's login key.
//
// # Kept across restarts
//
// Users, their keys, the MsgIds seen, the files and reports (pending ones with
// their content, written by the next run when due) are kept in StateFile, so a
// file sent again after a restart is still a duplicate. Fault scenarios are
// not kept.
package simulator
