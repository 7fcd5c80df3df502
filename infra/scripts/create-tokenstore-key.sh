#!/bin/bash
# Runs inside the Azure deployment-script container (tokenstore-key.bicep) as the setup identity.
# Creates the first token-encryption key in Key Vault unless one exists. The key is 32 random
# bytes, base64-encoded; it is written to a private temporary file and handed to the CLI with
# --file, so it is never an argument, never printed, and never part of the script's output.
set -euo pipefail
umask 077

# The role assignment that lets this identity write secrets may take a minute to apply.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if version=$(az keyvault secret show --vault-name "$VAULT_NAME" --name "$SECRET_NAME" --query id -o tsv 2>/dev/null); then
    break
  fi
  err=$(az keyvault secret show --vault-name "$VAULT_NAME" --name "$SECRET_NAME" 2>&1 >/dev/null || true)
  case "$err" in
    *SecretNotFound*|*"was not found"*) version=""; break ;;
  esac
  sleep 15
done

if [ -z "${version:-}" ]; then
  keyfile=$(mktemp)
  trap 'rm -f "$keyfile"' EXIT
  head -c 32 /dev/urandom | base64 -w0 > "$keyfile"
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if version=$(az keyvault secret set --vault-name "$VAULT_NAME" --name "$SECRET_NAME" \
        --file "$keyfile" --encoding utf-8 --content-type "application/octet-stream;base64" \
        --query id -o tsv 2>/dev/null); then
      break
    fi
    version=""
    sleep 15
  done
  rm -f "$keyfile"
  if [ -z "$version" ]; then
    echo "could not create the token-encryption key in $VAULT_NAME" >&2
    exit 1
  fi
fi

# Output the secret version only (the last path segment of the secret id), never the value.
printf '{"version":"%s"}' "${version##*/}" > "$AZ_SCRIPTS_OUTPUT_PATH"
