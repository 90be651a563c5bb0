# Koerier — the two commands a newcomer needs are `make run` and `make test`.
GOBIN := $(shell go env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
CHAOS_REPORT := $(CURDIR)/.koerier/chaos-report.txt

.PHONY: test run vet fmt-check lint

## test: starts/installs what the tests need (Postgres, xmllint, Temporal CLI, linters), then vets, lints and tests everything.
test:
	./scripts/ensure-postgres.sh
	./scripts/ensure-tools.sh
	@$(MAKE) --no-print-directory fmt-check vet lint
	@mkdir -p $(dir $(CHAOS_REPORT)) && rm -f $(CHAOS_REPORT)
	KOERIER_CHAOS_REPORT=$(CHAOS_REPORT) go test -count=1 -timeout 25m ./...
	@cat $(CHAOS_REPORT) 2>/dev/null || true

vet:
	go vet ./...

## lint: go.mod/go.sum are tidy, staticcheck, and Temporal's workflowcheck (workflow code is deterministic).
## The linters come from ./scripts/ensure-tools.sh.
lint:
	go mod tidy -diff
	staticcheck ./...
	workflowcheck ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi

## run: starts Koerier locally (Postgres, Temporal dev server + Web UI on 8233, Digipoort simulator, mail server (web page on 8025),
## bank simulator (SFTP on 2222), worker (/metrics on 9464), schedules, API on 8080).
run:
	./scripts/run.sh
