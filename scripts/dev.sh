#!/usr/bin/env bash
# make dev: run the bot locally.
#
#   1. Azurite (Table and Queue storage, npm, pinned) on 127.0.0.1:10002 / :10001, data in .dev/azurite
#   2. the handler (bin/onbehalf) on 127.0.0.1:${FUNCTIONS_CUSTOMHANDLER_PORT:-3978}, in local
#      anonymous mode unless local.settings.json gives it a bot identity
#   3. the Microsoft 365 Agents Playground pointed at it, on http://127.0.0.1:${PLAYGROUND_PORT:-56150}
#
# With SANDBOX=1 (make dev SANDBOX=1) it also runs the Atlassian stand-in (bin/atlassian-standin,
# built separately from internal/testenv: never part of the handler) on
# https://127.0.0.1:${SANDBOX_ATLASSIAN_PORT:-8443} and points the handler at it, so Jira and
# Confluence work with the test users Alice and Bob (README.md, "Local sandbox").
#
# Settings: the "Values" of local.settings.json (copy local.settings.json.template) are exported
# first, then the environment wins. Ctrl-C stops everything this script started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p .dev/azurite
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

# Values from local.settings.json, if present (never printed).
if [[ -f local.settings.json ]]; then
  while IFS= read -r -d '' kv; do
    k="${kv%%=*}"
    [[ -z "${!k:-}" ]] && export "$kv"
  done < <(node -e 'const v=(JSON.parse(require("fs").readFileSync("local.settings.json","utf8")).Values)||{};for(const[k,x]of Object.entries(v)){if(/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)&&x!=="")process.stdout.write(k+"="+x+"\0")}')
fi

port="${FUNCTIONS_CUSTOMHANDLER_PORT:-3978}"
export FUNCTIONS_CUSTOMHANDLER_PORT="$port"
if [[ -z "${BOT_APP_ID:-}" ]]; then
  export BOT_ALLOW_ANONYMOUS=true
fi
# The local token store: Azurite, with a development key kept in .dev (created once).
export TOKENSTORE_CONNECTION_STRING="${TOKENSTORE_CONNECTION_STRING:-DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;}"
if [[ -z "${TOKENSTORE_DEV_KEY:-}" && -z "${TOKENSTORE_KEYVAULT_URL:-}" ]]; then
  [[ -s .dev/tokenstore-dev-key ]] || (umask 077; head -c 32 /dev/urandom | base64 > .dev/tokenstore-dev-key)
  export TOKENSTORE_DEV_KEY="$(cat .dev/tokenstore-dev-key)"
fi

# SANDBOX=1: the Atlassian stand-in and the settings that point the handler at it.
sandbox_ports=()
if [[ -n "${SANDBOX:-}" && "${SANDBOX}" != 0 ]]; then
  atl_port="${SANDBOX_ATLASSIAN_PORT:-8443}"
  sandbox_ports=("$atl_port")
  export BOT_PUBLIC_URL="${BOT_PUBLIC_URL:-http://127.0.0.1:$port}"
  export ATLASSIAN_CLIENT_ID=sandbox-client ATLASSIAN_CLIENT_SECRET=sandbox-secret
  export ATLASSIAN_AUTH_URL="https://127.0.0.1:$atl_port" ATLASSIAN_API_URL="https://127.0.0.1:$atl_port"
  unset ATLASSIAN_DC_BASE_URL
  [[ -x bin/atlassian-standin ]] || go build -o bin/atlassian-standin ./internal/testenv/atlassian/cmd/atlassian-standin
fi

for p in 10001 10002 "$port" "${sandbox_ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "make dev: port $p is already in use (another make dev?)" >&2
    exit 1
  fi
done

echo "make dev: starting Azurite (tables :10002, queues :10001)"
"$bin/azurite" --silent --skipApiVersionCheck --location .dev/azurite --blobHost 127.0.0.1 --blobPort 0 \
  --tableHost 127.0.0.1 --tablePort 10002 --queueHost 127.0.0.1 --queuePort 10001 \
  > .dev/azurite.log 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/10002) 2>/dev/null && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "make dev: Azurite exited:" >&2; cat .dev/azurite.log >&2; exit 1
  fi
  sleep 0.1
done

if [[ ${#sandbox_ports[@]} -gt 0 ]]; then
  echo "make dev: starting the Atlassian stand-in on https://127.0.0.1:$atl_port (log: .dev/atlassian.log)"
  rm -f .dev/atlassian.pem
  ./bin/atlassian-standin -addr "127.0.0.1:$atl_port" -redirect "$BOT_PUBLIC_URL/api/oauth/callback" \
    -client-id "$ATLASSIAN_CLIENT_ID" -client-secret "$ATLASSIAN_CLIENT_SECRET" -cert .dev/atlassian.pem \
    > .dev/atlassian.log 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    [[ -s .dev/atlassian.pem ]] && (exec 3<>"/dev/tcp/127.0.0.1/$atl_port") 2>/dev/null && break
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "make dev: the Atlassian stand-in exited:" >&2; cat .dev/atlassian.log >&2; exit 1
    fi
    sleep 0.1
  done
  # The handler trusts the stand-in's self-signed certificate next to the system CAs. Go reads
  # SSL_CERT_FILE on Linux (and WSL); macOS uses its own verifier and ignores it.
  system_cas=""
  for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    [[ -s "$f" ]] && { system_cas="$f"; break; }
  done
  cat ${system_cas:+"$system_cas"} .dev/atlassian.pem > .dev/ca-bundle.pem
  export SSL_CERT_FILE="$root/.dev/ca-bundle.pem"
  echo "make dev: sandbox: say \"connect jira\" in the Playground and sign in as Alice or Bob (your browser warns about the stand-in's certificate: accept it for 127.0.0.1)"
fi

echo "make dev: starting the handler on 127.0.0.1:$port (log: .dev/handler.log)"
./bin/onbehalf serve > .dev/handler.log 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "make dev: the handler exited:" >&2; cat .dev/handler.log >&2; exit 1
  fi
  sleep 0.1
done

PLAYGROUND_LOG=.dev/playground.log ./scripts/playground.sh -p "${PLAYGROUND_PORT:-56150}" "http://127.0.0.1:$port/api/messages" &
pids+=($!)
echo "make dev: Ctrl-C stops Azurite, the handler, the Playground${sandbox_ports:+ and the Atlassian stand-in}"
wait -n "${pids[@]}" || true
# A signal to the whole process group can end a component a moment before this shell runs
# its trap: give the trap that moment, so a deliberate stop is not reported as a failure.
sleep 0.3
[[ "$stopping" == 1 ]] && exit 0
echo "make dev: a component exited; see .dev/*.log" >&2
exit 1
