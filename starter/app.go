package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"koerier/internal/config"
	"koerier/internal/temporalclient"
	"koerier/store"
)

// app opens what a command needs, once, from the environment.
type app struct {
	cfg   config.Config
	store *store.Store
	tc    client.Client
}

func newApp(ctx context.Context, needTemporal bool) (*app, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	if _, err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Options{Migrate: true, Catalog: &cfg.Catalog, MaxConns: 8, AanleverkenmerkPrefix: cfg.AanleverkenmerkPrefix,
		Secrets: cfg.Secrets})
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, store: st}
	if needTemporal {
		if err := a.dial(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return a, nil
}

func (a *app) dial(ctx context.Context) error {
	if a.tc != nil {
		return nil
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	tc, err := temporalclient.Dial(ctx, a.cfg.TemporalAddress, a.cfg.Namespace, log)
	if err != nil {
		return err
	}
	a.tc = tc
	return nil
}

func (a *app) close() {
	if a.tc != nil {
		a.tc.Close()
	}
	a.store.Close()
}

// operator names who gave a command, for the log.
func operator() string {
	name := "operator"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return name + " (command line)"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func parseNumbers(args []string) ([]int64, error) {
	out := make([]int64, 0, len(args))
	for _, s := range args {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a message number", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// orDashPtr is orDash of an optional column.
func orDashPtr(s *string) string {
	if s == nil {
		return "-"
	}
	return orDash(*s)
}

var stderr io.Writer = os.Stderr

// withApp is the frame of every command that needs the store (and, if asked, Temporal):
// it opens them from the configuration, hands them over, and closes them.
func withApp(needTemporal bool, fn func(cmd *cobra.Command, a *app, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := newApp(cmd.Context(), needTemporal)
		if err != nil {
			return err
		}
		defer a.close()
		return fn(cmd, a, args)
	}
}

// withNumbers is withApp for commands whose arguments are message numbers; they are
// checked before anything is opened.
func withNumbers(needTemporal bool, fn func(cmd *cobra.Command, a *app, numbers []int64) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		numbers, err := parseNumbers(args)
		if err != nil {
			return err
		}
		return withApp(needTemporal, func(cmd *cobra.Command, a *app, _ []string) error { return fn(cmd, a, numbers) })(cmd, args)
	}
}
