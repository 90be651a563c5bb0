// Package e2e proves Koerier end to end against real parts: a Temporal dev server,
// Postgres, the Digipoort simulator over mutual TLS, the worker, and the command line
// as a user runs it (the starter binary, with its exact output forms).
package e2e
