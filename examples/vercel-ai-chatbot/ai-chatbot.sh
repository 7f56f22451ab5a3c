#!/usr/bin/env bash
# vercel/ai-chatbot at a pinned commit, made runnable against chat-harness.
#
#   ai-chatbot.sh prepare DIR   check out (if DIR is missing), apply local-changes.mjs,
#                               install (pnpm, from the npm registry only), next build
#   ai-chatbot.sh start DIR     migrate the database (drizzle), then next start -p $PORT
#
# prepare clones https://github.com/vercel/ai-chatbot, or $AI_CHATBOT_REPO (a path or
# URL of a clone) if set, and refuses any other commit than PINNED unless
# AI_CHATBOT_ANY_COMMIT=1. start reads the environment the profile
# (chat-harness.yaml) gives it: PORT, POSTGRES_URL, AUTH_SECRET,
# OPENAI_COMPATIBLE_BASE_URL, OPENAI_COMPATIBLE_API_KEY, AUTH_TRUST_HOST.
set -euo pipefail

PINNED=9d5d8a3ea7968522a37ab1cc145a6c0ef8a9dd2e  # "fix: title generation + ai sdk upgrade (#1392)", 2026-01-15
PNPM="npx --yes pnpm@9.12.3"                      # the packageManager of its package.json
OPENAI_COMPATIBLE=@ai-sdk/openai-compatible@2.0.12 # built on the same @ai-sdk/provider as its ai@6.0.37
here="$(cd "$(dirname "$0")" && pwd)"

usage() { echo "usage: $0 prepare|start DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

prepare() {
  if [ ! -d "$dir" ]; then
    git clone --quiet "${AI_CHATBOT_REPO:-https://github.com/vercel/ai-chatbot}" "$dir"
    git -C "$dir" checkout --quiet "$PINNED"
  fi
  cd "$dir"
  local head
  head=$(git rev-parse HEAD 2>/dev/null || cat .chat-harness-commit 2>/dev/null || echo unknown)
  if [ "$head" != "$PINNED" ] && [ "${AI_CHATBOT_ANY_COMMIT:-0}" != 1 ]; then
    echo "$dir is at $head, not the pinned $PINNED (AI_CHATBOT_ANY_COMMIT=1 to try anyway)" >&2
    exit 1
  fi
  echo "== local changes"
  node "$here/local-changes.mjs"
  echo "== install (pnpm)"
  export NEXT_TELEMETRY_DISABLED=1
  if ! grep -q '"@ai-sdk/openai-compatible"' package.json; then
    $PNPM add "$OPENAI_COMPATIBLE"
  else
    $PNPM install
  fi
  echo "== next build"
  # its "build" script also migrates a database; here the migration runs at start
  $PNPM exec next build
}

start() {
  cd "$dir"
  : "${PORT:?PORT is not set}" "${POSTGRES_URL:?POSTGRES_URL is not set}" "${AUTH_SECRET:?AUTH_SECRET is not set}"
  export NEXT_TELEMETRY_DISABLED=1 AUTH_TRUST_HOST="${AUTH_TRUST_HOST:-true}"
  node_modules/.bin/tsx lib/db/migrate.ts
  exec node_modules/.bin/next start -p "$PORT"
}

case "$cmd" in
  prepare) prepare ;;
  start) start ;;
  *) usage ;;
esac
