#!/usr/bin/env bash
# `make run`: Koerier on this machine — Postgres, the Temporal dev server with its Web
# UI and search attributes, the Digipoort simulator, the local mail server (SMTP, IMAP
# and a web page, for e-invoices), the bank simulator (SFTP, for payment orders), the
# worker, the schedules and the API the environments use.
# Installs the Temporal CLI if missing. Ctrl-C stops what this script started; a
# server it found already running is left alone, so running it twice is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

state=${KOERIER_STATE_DIR:-$root/.koerier}
temporal_port=${KOERIER_TEMPORAL_PORT:-7233}
ui_port=${KOERIER_UI_PORT:-8233}
sim_port=${KOERIER_SIM_PORT:-8443}
sim_control_port=${KOERIER_SIM_CONTROL_PORT:-8444}
api_port=${KOERIER_API_PORT:-8080}
metrics_port=${KOERIER_METRICS_PORT:-9464}
mail_smtp_port=${KOERIER_MAIL_SMTP_PORT:-2525}
mail_imap_port=${KOERIER_MAIL_IMAP_PORT:-1993}
mail_web_port=${KOERIER_MAIL_WEB_PORT:-8025}
bank_port=${KOERIER_BANK_PORT:-2222}
bank_control_port=${KOERIER_BANK_CONTROL_PORT:-2223}
# The environment make run gives a profile on the local mail server and one on the
# bank simulator: it sends the README's example e-invoice and payment order.
mail_env=verkoop
mkdir -p "$state/bin" "$state/logs"

say() { printf '\033[1mkoerier:\033[0m %s\n' "$*" >&2; }
die() { printf 'koerier: %s\n' "$*" >&2; exit 1; }

started=()
answers() { curl -fsS "$1" >/dev/null 2>&1; }
# start_server LOG URL TRIES COMMAND...: starts COMMAND in the background, its output in
# LOG, and waits until URL answers (TRIES quarter-seconds at most, less if it exits).
# Variables set before the call reach COMMAND's environment, not its flags (ps shows flags).
start_server() {
  local log=$1 url=$2 tries=$3 pid
  shift 3
  "$@" >"$log" 2>&1 &
  pid=$!
  started+=("$pid")
  for _ in $(seq 1 "$tries"); do
    answers "$url" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  answers "$url"
}
cleanup() {
  trap - INT TERM EXIT
  if [ ${#started[@]} -gt 0 ]; then
    say "stopping what this run started"
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Postgres: the local cluster, unless KOERIER_DATABASE_URL points elsewhere.
if [ -z "${KOERIER_DATABASE_URL:-}" ]; then
  KOERIER_SKIP_POSTGRES_START= ./scripts/ensure-postgres.sh
  export KOERIER_DATABASE_URL="postgres://postgres@127.0.0.1:5432/koerier?sslmode=disable"
fi

# The Temporal CLI.
export PATH="$(go env GOPATH)/bin:$PATH"
if ! command -v temporal >/dev/null 2>&1; then
  say "installing the Temporal CLI v1.5.1 from the Go module proxy (a few minutes, once)"
  go install github.com/temporalio/cli/cmd/temporal@v1.5.1
fi

say "building the worker, the API, the command line, the simulators and the mail server"
go build -o "$state/bin/worker" ./worker
go build -o "$state/bin/koerier-api" ./api/cmd/koerier-api
go build -o "$state/bin/starter" ./starter
go build -o "$state/bin/digipoort-simulator" ./digipoort/cmd/digipoort-simulator
go build -o "$state/bin/koerier-mail" ./mail/cmd/koerier-mail
go build -o "$state/bin/bank-simulator" ./bank/cmd/bank-simulator

# Secrets made once and kept in the state folder, readable only by you: the key that
# seals the e-mail profiles' passwords in the database (KOERIER_SECRET_KEY: lose it and
# the stored passwords must be set again), and the local mail server's one password.
new_secret() {
  if command -v openssl >/dev/null 2>&1; then openssl rand -base64 32; else "$state/bin/starter" internal new-key; fi
}
for f in secret.key mail-password; do
  if [ ! -s "$state/$f" ]; then
    (umask 077 && new_secret >"$state/$f.tmp" && mv "$state/$f.tmp" "$state/$f")
  fi
done
secret_key=$(cat "$state/secret.key")
mail_password=$(cat "$state/mail-password")

export KOERIER_TEMPORAL_ADDRESS="127.0.0.1:$temporal_port"
healthy() { temporal operator cluster health --address "$KOERIER_TEMPORAL_ADDRESS" >/dev/null 2>&1; }
if healthy; then
  say "Temporal already answers on $KOERIER_TEMPORAL_ADDRESS: using it"
else
  say "starting the Temporal dev server (data in $state/temporal.db)"
  sa_args=()
  while read -r sa; do sa_args+=(--search-attribute "$sa"); done < <("$state/bin/starter" internal search-attributes)
  # One partition per task queue (the dev server's default is four): on one node they
  # gain nothing, and a task waiting in a partition that no poll happens to be on waited
  # 10-23 s with every core idle when the load fell (`starter bench`, 1,000 and 10,000).
  temporal server start-dev --ip 127.0.0.1 --port "$temporal_port" --ui-port "$ui_port" \
    --db-filename "$state/temporal.db" --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    --dynamic-config-value matching.numTaskqueueReadPartitions=1 --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
    --log-level warn "${sa_args[@]}" >"$state/logs/temporal.log" 2>&1 &
  started+=($!)
  for _ in $(seq 1 60); do healthy && break; sleep 0.5; done
  healthy || die "the Temporal dev server did not come up; see $state/logs/temporal.log"
fi

sim_ctl="http://127.0.0.1:$sim_control_port"
if answers "$sim_ctl/sim/health"; then
  say "the Digipoort simulator already answers on $sim_ctl: using it"
else
  say "starting the Digipoort simulator (certificates in $state/simulator)"
  # The first start makes its RSA keys: that can take a while on a busy machine.
  start_server "$state/logs/simulator.log" "$sim_ctl/sim/health" 160 \
    "$state/bin/digipoort-simulator" -dir "$state/simulator" -addr "127.0.0.1:$sim_port" -control-addr "127.0.0.1:$sim_control_port" ||
    die "the simulator did not come up; see $state/logs/simulator.log"
fi

# The local mail server: every NAME@koerier.test is a mailbox (SMTP with STARTTLS, IMAP
# with implicit TLS, certificates of its own CA in $state/mail), and a web page.
mail_web="http://127.0.0.1:$mail_web_port"
if answers "$mail_web/healthz"; then
  [ -s "$state/mail/ca.pem" ] ||
    die "a mail server answers on $mail_web, but $state/mail holds no certificates of it: it is another make run's; stop it or set KOERIER_MAIL_SMTP_PORT, KOERIER_MAIL_IMAP_PORT and KOERIER_MAIL_WEB_PORT"
  say "the local mail server already answers on $mail_web: using it"
else
  say "starting the local mail server (SMTP 127.0.0.1:$mail_smtp_port, IMAP 127.0.0.1:$mail_imap_port, certificates in $state/mail)"
  # The password goes by the environment, not as a flag: ps shows flags.
  KOERIER_DEV_MAIL_PASSWORD="$mail_password" start_server "$state/logs/mail.log" "$mail_web/healthz" 40 \
    "$state/bin/koerier-mail" -smtp "127.0.0.1:$mail_smtp_port" -imap "127.0.0.1:$mail_imap_port" \
    -web "127.0.0.1:$mail_web_port" -dir "$state/mail" ||
    die "the mail server did not come up (a port in use? set KOERIER_MAIL_SMTP_PORT, _IMAP_PORT, _WEB_PORT); see $state/logs/mail.log"
fi

# The bank simulator: SFTP with public-key login, each environment's user rooted in
# $state/bank/users/<name>/ (upload/, download/, archive/), its host key, users and
# MsgIds seen kept in $state/bank; a control API on plain HTTP.
bank_ctl="http://127.0.0.1:$bank_control_port"
if answers "$bank_ctl/healthz"; then
  say "the bank simulator already answers on $bank_ctl: using it"
else
  say "starting the bank simulator (SFTP 127.0.0.1:$bank_port, state in $state/bank)"
  start_server "$state/logs/bank.log" "$bank_ctl/healthz" 40 \
    "$state/bin/bank-simulator" -dir "$state/bank" -addr "127.0.0.1:$bank_port" -control-addr "127.0.0.1:$bank_control_port" ||
    die "the bank simulator did not come up (a port in use? set KOERIER_BANK_PORT, KOERIER_BANK_CONTROL_PORT); see $state/logs/bank.log"
fi

# env.sh holds the secret key and the mail password: only you may read it.
(umask 077 && : >"$state/env.sh")
chmod 600 "$state/env.sh"
cat >"$state/env.sh" <<ENV
# Koerier against the local simulator: source this file in another shell.
export KOERIER_DATABASE_URL="$KOERIER_DATABASE_URL"
export KOERIER_TEMPORAL_ADDRESS="$KOERIER_TEMPORAL_ADDRESS"
export KOERIER_DIGIPOORT_URL="https://127.0.0.1:$sim_port"
export KOERIER_DIGIPOORT_CLIENT_CERT="$state/simulator/client.pem"
export KOERIER_DIGIPOORT_CLIENT_KEY="$state/simulator/client-key.pem"
export KOERIER_DIGIPOORT_CA="$state/simulator/ca.pem"
export KOERIER_DIGIPOORT_SIGNING_CERT="$state/simulator/signing.pem"
# Names the simulator accepts; with the real Digipoort use the names Logius gives you.
export KOERIER_BERICHTSOORTEN="\${KOERIER_BERICHTSOORTEN:-ib=IB,vpb=VPB,kvk=KVK}"
# The environments' API (curl examples in the README).
export KOERIER_API_URL="http://127.0.0.1:$api_port"
# Seals the e-mail profiles' passwords in the database ($state/secret.key).
export KOERIER_SECRET_KEY="$secret_key"
# The local mail server, for \`starter environments add NAME --local-mail\`.
export KOERIER_MAIL_CA_FILE="$state/mail/ca.pem"
export KOERIER_DEV_SMTP="127.0.0.1:$mail_smtp_port"
export KOERIER_DEV_IMAP="127.0.0.1:$mail_imap_port"
export KOERIER_DEV_MAIL_PASSWORD="$mail_password"
export KOERIER_DEV_MAIL_WEB="$mail_web"
# The bank simulator, for \`starter environments add NAME --local-bank\`.
export KOERIER_DEV_BANK="127.0.0.1:$bank_port"
export KOERIER_DEV_BANK_CONTROL="$bank_ctl"
ENV
# shellcheck disable=SC1091
. "$state/env.sh"

"$state/bin/starter" migrate >/dev/null
# The worker's /metrics: on KOERIER_METRICS_PORT, unless another worker (an earlier
# make run's) serves it there already; then on a free port, which the log names.
worker_metrics="127.0.0.1:$metrics_port"
if answers "http://$worker_metrics/metrics"; then
  worker_metrics="127.0.0.1:0"
  say "another worker serves /metrics on 127.0.0.1:$metrics_port: this one serves it on a free port (see its log)"
fi
say "starting the worker (log in $state/logs/worker.log, metrics on http://$worker_metrics/metrics)"
KOERIER_METRICS_ADDR="$worker_metrics" "$state/bin/worker" >"$state/logs/worker.log" 2>&1 &
worker_pid=$!
started+=($worker_pid)
echo "$worker_pid" >"$state/worker.pid"   # for the benchmark's peak-RSS figure
sleep 1
kill -0 "$worker_pid" 2>/dev/null || die "the worker stopped at once; see $state/logs/worker.log"
"$state/bin/starter" schedules apply >&2

# The environment that sends the README's example e-invoice and payment order, with a
# mailbox on the local mail server and a user at the bank simulator; made once (it may
# have been changed since: its e-mail profile and a bank profile on a real bank are left
# as they are). One without a bank profile gets one on the simulator; one on the
# simulator has it set again, which keeps its key and registers it again, in case the
# simulator's state in $state/bank was removed. The list prints each environment's bank
# profile before anything else with a closing brace, so a regular expression that stops
# at the first one reads it.
envs=$("$state/bin/starter" environments list --json)
no_bank="\"name\": \"$mail_env\",[^}]*\"has_bank\": false"
local_bank="\"name\": \"$mail_env\",[^}]*\"bank\": \\{[^}]*\"local\": true"
if ! grep -q "\"name\": \"$mail_env\"" <<<"$envs"; then
  "$state/bin/starter" environments add "$mail_env" --auto-send --local-mail --local-bank >&2 ||
    say "environment $mail_env could not be added (see above); e-invoices need an environment with --local-mail, payment orders one with --local-bank"
elif [[ $envs =~ $no_bank || $envs =~ $local_bank ]]; then
  "$state/bin/starter" environments set "$mail_env" --local-bank >&2 ||
    say "environment $mail_env got no profile on the bank simulator (see above); payment orders need one: starter environments set $mail_env --local-bank"
fi

# The environments' API. Several can run behind a load balancer; one on loopback is
# what a single machine needs.
api_url="http://127.0.0.1:$api_port"
if answers "$api_url/healthz"; then
  say "the API already answers on $api_url: using it"
else
  say "starting the API on $api_url (log in $state/logs/api.log)"
  KOERIER_API_ADDR="127.0.0.1:$api_port" start_server "$state/logs/api.log" "$api_url/healthz" 40 "$state/bin/koerier-api" ||
    die "the API did not answer on $api_url/healthz (another program on port $api_port? set KOERIER_API_PORT); see $state/logs/api.log"
fi

# Three days ahead, as GNU date or BSD date (macOS) writes it.
pay_date=$(date -d '+3 days' +%F 2>/dev/null || date -v+3d +%F)
vat=../shared/digipoort/fixtures/omzetbelasting-2021.xbrl
[ -f "$vat" ] || vat=internal/demo/omzetbelasting-demo.xbrl
cat <<MSG

Koerier is running.
  Temporal Web UI:     http://127.0.0.1:$ui_port   (workflows, search attributes, Schedules tab)
  API:                 $api_url   (the environments' front door: README, "An environment's front door")
  Digipoort simulator: https://127.0.0.1:$sim_port  (control API $sim_ctl/sim/deliveries)
  Mail server:         $mail_web   (SMTP 127.0.0.1:$mail_smtp_port, IMAP 127.0.0.1:$mail_imap_port; every NAME@koerier.test is a mailbox)
  Bank simulator:      sftp://127.0.0.1:$bank_port  (control API $bank_ctl/control/files?user=$mail_env)
  logs:                $state/logs/

Try it in another shell, in $(pwd):
  source $state/env.sh                   # the settings of this local setup
  go run ./starter environments add demo
  go run ./starter queue --env demo --type btw --subject 001000044B37 --period 2021-10 --file $vat
  go run ./starter send-receive          # delivers it; run it again after a few seconds for the replies
  go run ./starter process               # the environment now sees the outcome
  go run ./starter status --env demo
  go run ./starter log
Then open the Web UI and query: KoerierEnvironment="demo" AND KoerierStatus="accepted"

E-invoices by e-mail ($mail_env sends from $mail_env@koerier.test; README, "E-invoices by e-mail"):
  go run ./starter environments add inkoop --local-mail
  go run ./starter queue --env $mail_env --type einvoice --file internal/demo/example-invoice.xml --to inkoop@koerier.test
  go run ./mail/cmd/koerier-mail list    # it arrived in inkoop@koerier.test's INBOX; or open $mail_web
  go run ./starter mail send-receive --env inkoop
  go run ./starter einvoices list --env inkoop

Payment orders to the bank ($mail_env has a user at the bank simulator; README, "Payment orders to the bank"):
  sed "s/2026-12-01/$pay_date/" internal/demo/example-pain001.xml >/tmp/pain001.xml   # an execution date not past
  go run ./starter queue --env $mail_env --type payment --file /tmp/pain001.xml
  go run ./starter bank send-receive --env $mail_env   # uploads it; again after a second or two for the bank's reports
  go run ./starter show <number>                  # its transactions: ACSC (settled) once the bank executed them

Ctrl-C stops everything this run started.
MSG
wait "$worker_pid"
