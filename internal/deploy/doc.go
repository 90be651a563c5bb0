// Package deploy has no code of its own: its tests check the deployment files at the
// repository's root (docker-compose.yml and the Dockerfile it builds from) with
// compose-go, the loader docker compose itself uses, because the tests run where no
// Docker engine does.
package deploy
