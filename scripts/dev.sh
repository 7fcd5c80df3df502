#!/usr/bin/env bash
# make dev: run the whole product locally, as two sandbox users, in the Agents Playground.
#
#   1. Azurite (Table and Queue storage, npm, pinned) on 127.0.0.1:10002 / :10001
#   2. the Atlassian stand-in (bin/atlassian-standin) on https://127.0.0.1:${SANDBOX_ATLASSIAN_PORT:-8443}
#   3. the Microsoft stand-ins and the channel bridge (bin/sandbox-standin): Entra, the Bot
#      Framework channel, the Bot Service token service, Graph and the assistant's sandbox model
#      (deployment "sandbox-model", rule-based), with the users Alice and Bob; the bridge on
#      http://127.0.0.1:${SANDBOX_CHANNEL_PORT:-3980}
#   4. the handler (bin/onbehalf) on 127.0.0.1:${FUNCTIONS_CUSTOMHANDLER_PORT:-3978} with the sandbox
#      bot identity: channel tokens checked, replies with the bot's own token, Microsoft 365
#      through single sign-on and On-Behalf-Of, Jira and Confluence through OAuth
#   5. two Agents Playgrounds, through the bridge: Alice on http://127.0.0.1:${PLAYGROUND_PORT:-56150},
#      Bob on http://127.0.0.1:${PLAYGROUND_BOB_PORT:-56151}
#
# The stand-ins are built from internal/testenv and are never part of the handler. Their state
# (and the sandbox's Azurite data) starts afresh each run.
#
# ANONYMOUS=1 (make dev ANONYMOUS=1) runs the bare edge instead: Azurite, the handler in local
# anonymous mode (no bot identity, no token checks; unless local.settings.json gives it one) and
# one Playground talking to it directly.
#
# Ctrl-C, or SIGTERM/SIGINT without a terminal, stops everything this script started (exit 0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .dev
bin="$root/node_modules/.bin"
pids=()

alive() { local n=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n+1)); done; echo "$n"; }
wait_all() { # seconds
  for _ in $(seq 1 $(($1 * 10))); do [[ "$(alive)" == 0 ]] && return 0; sleep 0.1; done
  return 1
}
stopping=0
cleanup() {
  trap - INT TERM EXIT
  # A terminal's Ctrl-C may already have signalled every process; give them a moment, then
  # ask each one that is left with SIGTERM (background children of a script ignore SIGINT),
  # and only then force it.
  wait_all 2 || {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait_all 5 || for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  }
  echo "make dev: stopped"
}
trap cleanup EXIT
# Stopped on purpose (Ctrl-C, or SIGTERM from an IDE or a supervisor without a terminal):
# a clean stop, exit status 0.
trap 'stopping=1; cleanup; exit 0' INT TERM

# wait_port PORT NAME LOG: until PORT answers, or the last started process has exited.
wait_port() {
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "make dev: $2 exited:" >&2; cat "$3" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "make dev: $2 did not start; see $3" >&2; exit 1
}

anonymous=0
[[ -n "${ANONYMOUS:-}" && "${ANONYMOUS}" != 0 ]] && anonymous=1

port="${FUNCTIONS_CUSTOMHANDLER_PORT:-3978}"
export FUNCTIONS_CUSTOMHANDLER_PORT="$port"
pg_port="${PLAYGROUND_PORT:-56150}"
azurite_dir=.dev/azurite
ports=(10001 10002 "$port" "$pg_port")

if [[ "$anonymous" == 1 ]]; then
  # Values from local.settings.json, if present (never printed).
  if [[ -f local.settings.json ]]; then
    while IFS= read -r -d '' kv; do
      k="${kv%%=*}"
      [[ -z "${!k:-}" ]] && export "$kv"
    done < <(node -e 'const v=(JSON.parse(require("fs").readFileSync("local.settings.json","utf8")).Values)||{};for(const[k,x]of Object.entries(v)){if(/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)&&x!=="")process.stdout.write(k+"="+x+"\0")}')
  fi
  [[ -z "${BOT_APP_ID:-}" ]] && export BOT_ALLOW_ANONYMOUS=true
else
  atl_port="${SANDBOX_ATLASSIAN_PORT:-8443}"
  bridge_port="${SANDBOX_CHANNEL_PORT:-3980}"
  bob_port="${PLAYGROUND_BOB_PORT:-56151}"
  ports+=("$atl_port" "$bridge_port" "$bob_port")
  azurite_dir=.dev/azurite-sandbox
  for b in atlassian-standin sandbox-standin ldap-standin; do
    [[ -x "bin/$b" ]] || { echo "make dev: bin/$b is missing (make dev builds it)" >&2; exit 1; }
  done
fi

for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "make dev: port $p is already in use (another make dev?)" >&2
    exit 1
  fi
done

# The local token store: Azurite, with a development key kept in .dev (created once).
export TOKENSTORE_CONNECTION_STRING="${TOKENSTORE_CONNECTION_STRING:-DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;}"
if [[ -z "${TOKENSTORE_DEV_KEY:-}" && -z "${TOKENSTORE_KEYVAULT_URL:-}" ]]; then
  [[ -s .dev/tokenstore-dev-key ]] || (umask 077; head -c 32 /dev/urandom | base64 > .dev/tokenstore-dev-key)
  export TOKENSTORE_DEV_KEY="$(cat .dev/tokenstore-dev-key)"
fi

# The sandbox's stand-ins forget everything when they stop, so its stored tokens would be
# useless next time: its Azurite data starts empty.
[[ "$anonymous" == 0 ]] && rm -rf "$azurite_dir"
mkdir -p "$azurite_dir"
echo "make dev: starting Azurite (tables :10002, queues :10001)"
"$bin/azurite" --silent --skipApiVersionCheck --location "$azurite_dir" --blobHost 127.0.0.1 --blobPort 0 \
  --tableHost 127.0.0.1 --tablePort 10002 --queueHost 127.0.0.1 --queuePort 10001 \
  > .dev/azurite.log 2>&1 &
pids+=($!)
wait_port 10002 Azurite .dev/azurite.log

if [[ "$anonymous" == 0 ]]; then
  export BOT_PUBLIC_URL="${BOT_PUBLIC_URL:-http://127.0.0.1:$port}"
  export ATLASSIAN_CLIENT_ID=sandbox-client ATLASSIAN_CLIENT_SECRET=sandbox-secret
  export ATLASSIAN_AUTH_URL="https://127.0.0.1:$atl_port" ATLASSIAN_API_URL="https://127.0.0.1:$atl_port"
  unset ATLASSIAN_DC_BASE_URL BOT_ALLOW_ANONYMOUS

  echo "make dev: starting the Atlassian stand-in on https://127.0.0.1:$atl_port (log: .dev/atlassian.log)"
  rm -f .dev/atlassian.pem
  ./bin/atlassian-standin -addr "127.0.0.1:$atl_port" -redirect "$BOT_PUBLIC_URL/api/oauth/callback" \
    -client-id "$ATLASSIAN_CLIENT_ID" -client-secret "$ATLASSIAN_CLIENT_SECRET" -cert .dev/atlassian.pem \
    > .dev/atlassian.log 2>&1 &
  pids+=($!)
  wait_port "$atl_port" "the Atlassian stand-in" .dev/atlassian.log

  echo "make dev: starting the Microsoft stand-ins and the channel bridge on http://127.0.0.1:$bridge_port (log: .dev/sandbox.log)"
  rm -rf .dev/sandbox
  ./bin/sandbox-standin -addr "127.0.0.1:$bridge_port" -bot "http://127.0.0.1:$port/api/messages" -dir .dev/sandbox \
    > .dev/sandbox.log 2>&1 &
  pids+=($!)
  wait_port "$bridge_port" "the sandbox stand-in" .dev/sandbox.log
  for _ in $(seq 1 50); do [[ -s .dev/sandbox/env ]] && break; sleep 0.1; done
  # The bot identity and the stand-ins' URLs (never printed).
  # shellcheck disable=SC1091
  source .dev/sandbox/env

  # The legacy directory: a real slapd with Alice, Bob and HR records (internal/testenv/slapd),
  # on free loopback ports; the handler's LDAP_* settings come from the file it writes.
  echo "make dev: starting the LDAP directory (slapd; log: .dev/ldap.log)"
  rm -f .dev/ldap.env
  ./bin/ldap-standin -env .dev/ldap.env > .dev/ldap.log 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [[ -s .dev/ldap.env ]] && break; sleep 0.1; done
  [[ -s .dev/ldap.env ]] || { echo "make dev: the LDAP directory did not start; see .dev/ldap.log" >&2; exit 1; }
  set -a
  # shellcheck disable=SC1091
  source .dev/ldap.env
  set +a

  # The handler trusts the stand-ins' certificates next to the system CAs. Go reads
  # SSL_CERT_FILE on Linux (and WSL); macOS uses its own verifier and ignores it.
  system_cas=""
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    [[ -s "$f" ]] && { system_cas="$f"; break; }
  done
  cat ${system_cas:+"$system_cas"} .dev/atlassian.pem .dev/sandbox/ca.pem > .dev/ca-bundle.pem
  export SSL_CERT_FILE="$root/.dev/ca-bundle.pem"
fi

# Slow work goes through the work queue on the same Azurite.
export WORK_QUEUE_CONNECTION_STRING="${WORK_QUEUE_CONNECTION_STRING:-DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;}"

echo "make dev: starting the handler on 127.0.0.1:$port (log: .dev/handler.log)"
./bin/onbehalf serve > .dev/handler.log 2>&1 &
pids+=($!)
wait_port "$port" "the handler" .dev/handler.log

# The Functions host's part for the queue and timer functions, which Functions Core Tools
# would play (it cannot be installed here): polls the work queue, runs the purge timer.
echo "make dev: starting the Functions host stand-in for functions/work and functions/purge (log: .dev/funchost.log)"
./bin/funchost -handler "http://127.0.0.1:$port" -queue-connection "$WORK_QUEUE_CONNECTION_STRING" \
  -host-json host.json -functions functions > .dev/funchost.log 2>&1 &
pids+=($!)

if [[ "$anonymous" == 1 ]]; then
  PLAYGROUND_LOG=.dev/playground.log ./scripts/playground.sh -p "$pg_port" "http://127.0.0.1:$port/api/messages" &
  pids+=($!)
  echo "make dev: anonymous mode (no bot identity, no token checks). Ctrl-C stops Azurite, the handler and the Playground"
else
  # The Playground takes its user from .m365agentsplayground.yml in its working directory.
  (cd .dev/sandbox/alice && PLAYGROUND_LOG="$root/.dev/playground-alice.log" exec "$root/scripts/playground.sh" -p "$pg_port" "http://127.0.0.1:$bridge_port/api/messages") &
  pids+=($!)
  (cd .dev/sandbox/bob && PLAYGROUND_LOG="$root/.dev/playground-bob.log" exec "$root/scripts/playground.sh" -p "$bob_port" "http://127.0.0.1:$bridge_port/api/messages") &
  pids+=($!)
  wait_port "$bob_port" "Bob's Playground" .dev/playground-bob.log
  cat <<MSG
make dev: the sandbox is running.
  Alice's chat:  http://127.0.0.1:$pg_port
  Bob's chat:    http://127.0.0.1:$bob_port
  Type help, or ask in plain words ("what's the status of PROJ-1?"): the assistant answers
  with the sandbox model (rule-based, no real model). Sign-in cards open a sandbox consent page; Atlassian's consent page is on
  https://127.0.0.1:$atl_port (your browser warns about its certificate: accept it for 127.0.0.1).
  Logs in .dev/. Ctrl-C stops everything.
MSG
fi
wait -n "${pids[@]}" || true
# A signal to the whole process group can end a component a moment before this shell runs
# its trap: give the trap that moment, so a deliberate stop is not reported as a failure.
sleep 0.3
[[ "$stopping" == 1 ]] && exit 0
echo "make dev: a component exited; see .dev/*.log" >&2
exit 1
