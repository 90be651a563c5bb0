package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"koerier/bank/simulator"
	"koerier/store"
)

// bankControl is the bank simulator's control API (koerier/bank/simulator) at base, as
// --bank-control gives it.
type bankControl struct{ base string }

// bankErr adds to a failed call of the control API what to do about it here.
func bankErr(err error) error {
	var ce *simulator.ControlError
	if errors.As(err, &ce) {
		switch ce.Problem {
		case simulator.NoAnswer:
			return fmt.Errorf("%w: start it with `make run`, or set --bank-control", err)
		case simulator.NotSimulator:
			return fmt.Errorf("%w: is --bank-control the bank simulator?", err)
		}
	}
	return err
}

// files lists what user uploaded and the simulator consumed, each with how many times
// its MsgId arrived.
func (b bankControl) files(ctx context.Context, user string) ([]simulator.FileRecord, error) {
	a, err := simulator.FilesOf(ctx, b.base, user)
	if err != nil {
		return nil, bankErr(err)
	}
	return a.Files, nil
}

// localBank gives the benchmark's environments bank profiles on the simulator, as
// `starter environments add NAME --local-bank` does: each its own new ed25519 key,
// registered as SFTP user NAME, and the simulator's host key pinned. addr is where
// the workers reach the simulator's SFTP; empty takes the address the simulator names.
func localBank(ctx context.Context, st *store.Store, ctl bankControl, addr string, envs []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	hk, err := simulator.HostKeyOf(ctx, ctl.base)
	if err != nil {
		return bankErr(err)
	}
	if addr == "" {
		addr = hk.Addr
	}
	if hk.Addr != "" && hk.Addr != addr {
		// The pinned host key would be that server's, the profile another's.
		return fmt.Errorf("the bank simulator at %s serves SFTP on %s, but --bank-addr is %s: give the one it serves (or `source .koerier/env.sh`)",
			ctl.base, hk.Addr, addr)
	}
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil || host == "" {
		return fmt.Errorf("--bank-addr %q is not host:port: give the bank simulator's SFTP address (KOERIER_DEV_BANK)", addr)
	}
	for _, env := range envs {
		key, signer, err := simulator.NewKey("koerier " + env)
		if err != nil {
			return fmt.Errorf("make a bank key for environment %s: %w", env, err)
		}
		if err := simulator.Register(ctx, ctl.base, env, signer.PublicKey()); err != nil {
			return bankErr(err)
		}
		if err := st.SetBankProfile(ctx, env, store.BankProfile{Host: host, Port: port, User: env, PrivateKey: key, HostKey: hk.AuthorizedKey,
			UploadDir: store.DefaultBankUploadDir, DownloadDir: store.DefaultBankDownloadDir, ProcessedDir: store.DefaultBankProcessedDir,
			ArchiveDir: "archive", Local: true}, "the benchmark"); err != nil {
			return err
		}
	}
	return nil
}
