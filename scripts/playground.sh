#!/usr/bin/env bash
# Run the Microsoft 365 Agents Playground (npm @microsoft/m365agentsplayground) against
# the bot's messaging endpoint, in the foreground, headless-safe.
#
# Usage: scripts/playground.sh [options] [ENDPOINT] [-- AGENTSPLAYGROUND-ARGS...]
#
#   ENDPOINT, -e, --endpoint URL  the bot's messaging endpoint
#                                 (default: $BOT_ENDPOINT, else http://127.0.0.1:3978/api/messages)
#   -p, --port N                  port of the Playground's web UI and mock connector
#                                 (default: $PLAYGROUND_PORT, else 56150; 0 = any free port).
#                                 A busy port is an error here (the Playground itself would
#                                 silently move to a random one).
#   -c, --channel ID              channelId it plays: msteams (default), emulator, webchat, directline
#   --conversation-id ID          fixed id for the personal chat (default: a random UUID)
#   --log FILE                    its console log (default: $PLAYGROUND_LOG, else .dev/playground.log)
#   --open                        let it open a browser (default: never; a no-op xdg-open is put
#                                 first on PATH, because headless it exits when it cannot open one)
#   -h, --help                    this text
#   -- ARGS...                    passed to agentsplayground as is, e.g.
#                                 -- --client-id ID --client-secret S --tenant-id T
#                                 (then it sends Entra client-credential tokens; needs internet)
#
# Environment: AGENTSPLAYGROUND (path of the executable; default node_modules/.bin/agentsplayground
# at the repository root), BOT_ENDPOINT, PLAYGROUND_PORT, PLAYGROUND_LOG.
#
# It prints the URL to open, then execs the Playground: the caller's PID is the Playground's,
# so Ctrl-C or `kill PID` stops it. It is ready when GET <URL>/_debug/ping answers "pong".
# A .m365agentsplayground.yml in the current directory replaces its built-in tenant, users
# and bot id (see https://aka.ms/teams-app-test-tool-config-guide).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
endpoint="${BOT_ENDPOINT:-http://127.0.0.1:3978/api/messages}"
port="${PLAYGROUND_PORT:-56150}"
channel="msteams"
conversation=""
log="${PLAYGROUND_LOG:-.dev/playground.log}"
open_browser=0
extra=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "playground.sh: $*" >&2; exit 2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -e|--endpoint) need "$@"; endpoint="$2"; shift 2 ;;
    -p|--port) need "$@"; port="$2"; shift 2 ;;
    -c|--channel) need "$@"; channel="$2"; shift 2 ;;
    --conversation-id) need "$@"; conversation="$2"; shift 2 ;;
    --log) need "$@"; log="$2"; shift 2 ;;
    --open) open_browser=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) endpoint="$1"; shift ;;
  esac
done

[[ "$endpoint" =~ ^https?://[^/]+/ ]] || die "endpoint must be an http(s) URL with a path, got '$endpoint'"
[[ "$port" =~ ^[0-9]+$ && "$port" -le 65535 ]] || die "port must be 0-65535, got '$port'"
case "$channel" in msteams|emulator|webchat|directline) ;; *) die "unknown channel '$channel'" ;; esac

bin="${AGENTSPLAYGROUND:-$root/node_modules/.bin/agentsplayground}"
[[ -x "$bin" ]] || die "$bin not found; run 'make npm-deps' (npm ci) first"
command -v node >/dev/null || die "node is not on PATH"

if [[ "$port" != 0 ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "port $port is already in use (is another Playground running?); pick one with --port"
fi

mkdir -p "$(dirname "$log")"
log="$(cd "$(dirname "$log")" && pwd)/$(basename "$log")"
export M365_AGENTS_PLAYGROUND_LOGFILE="$log"
export M365_AGENTS_PLAYGROUND_RECORDING_FILE="$(dirname "$log")/playground-events.log"
# Loopback calls to the bot must not go through a proxy the environment names.
export NO_PROXY="localhost,127.0.0.1,::1${NO_PROXY:+,$NO_PROXY}"
if [[ "$open_browser" == 0 ]]; then
  shim="$(dirname "$log")/bin"
  mkdir -p "$shim"
  printf '#!/bin/sh\nexit 0\n' >"$shim/xdg-open"
  chmod +x "$shim/xdg-open"
  export PATH="$shim:$PATH" TEAMSAPPTESTER_BROWSER=none
fi

args=(-e "$endpoint" -c "$channel" --dt -p "$port")
[[ -n "$conversation" ]] && args+=(--conversation-id "$conversation")

if [[ "$port" == 0 ]]; then
  echo "Agents Playground: starting on a free port (see 'Listening on' below) -> bot at $endpoint"
else
  echo "Agents Playground: open http://localhost:$port  (bot: $endpoint; log: $log)"
fi
exec "$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
