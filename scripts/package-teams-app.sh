#!/usr/bin/env sh
# Writes the Teams app package (appPackage/build/onbehalf-<env>.zip) with the deployed ids.
#
# Run by azd after `provision` and `deploy` (azure.yaml hooks), where azd exports the
# environment's outputs (TEAMS_APP_ID, BOT_APP_ID, FUNCTION_APP_HOSTNAME, …). Run by hand
# (`make teams-package`), it reads them with `azd env get-values`.
set -eu
cd "$(dirname "$0")/.."

if [ -z "${BOT_APP_ID:-}" ] && command -v azd >/dev/null 2>&1; then
  # Values are plain ids and host names (the template has no secrets to export).
  eval "$(azd env get-values)"
  export TEAMS_APP_ID BOT_APP_ID FUNCTION_APP_HOSTNAME AZURE_ENV_NAME 2>/dev/null || true
fi

out="appPackage/build/onbehalf-${AZURE_ENV_NAME:-local}.zip"
go run ./tools/teamsapp package -dir appPackage -out "$out"
echo "Upload it in Teams: Apps > Manage your apps > Upload an app > Upload a custom app."
