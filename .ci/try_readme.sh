#!/usr/bin/env bash
# Runs the README's "Try it" as a new user would, so the two cannot drift: the sh blocks after
# <!-- try-it: server ... --> and <!-- try-it: client --> are taken from README.md and run as
# written, in a copy of this working tree (what a fresh clone holds, plus uncommitted edits)
# with a fresh virtualenv and database. The server block runs in the background; once the
# example answers, the client block runs, and the lines of its output that are JSON or a status
# code must be exactly the block's expected-output comments (lines "# {..." or "# <digits>").
# Only 127.0.0.1:8000 is replaced, by a free port. Any failure exits non-zero with the
# server's log.
set -euo pipefail
cd "$(dirname "$0")/.."
began=$(date +%s)

block() {  # the first ```sh block after the marker line <!-- try-it: $1 ...-->
  awk -v marker="<!-- try-it: $1" '
    index($0, marker) == 1 { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' README.md
}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_block=$(block server | sed "s/127\.0\.0\.1:8000/127.0.0.1:$port/g")
client_block=$(block client | sed "s/127\.0\.0\.1:8000/127.0.0.1:$port/g")
expected=$(printf '%s\n' "$client_block" | sed -n 's/^# \([{0-9].*\)$/\1/p')
if [ -z "$server_block" ] || [ -z "$client_block" ] || [ -z "$expected" ]; then
  echo "README.md: the try-it server and client blocks (with expected output) were not found"
  exit 1
fi

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill -- "-$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "try_readme: $1 ($(( $(date +%s) - began ))s); the server's log:"
  tail -n 40 "$work/server.log" || true
  exit 1
}

git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$work/"
rm -f "$work/example_project/.env" "$work/example_project/db.sqlite3"
# A new user's fresh virtualenv, used by both blocks (never the caller's: the editable install
# would point it at this temporary copy).
python3 -m venv "$work/.venv"
export VIRTUAL_ENV="$work/.venv" PATH="$work/.venv/bin:$PATH"

echo "== server block (background, port $port) =="
printf '%s\n' "$server_block"
# Its own session, so the whole process group (runserver and its reloader) can be stopped.
(cd "$work" && exec setsid bash -e -o pipefail -c "$server_block") >"$work/server.log" 2>&1 &
server=$!

deadline=$(( $(date +%s) + 300 ))  # installing from PyPI, then migrating and starting
until curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; do
  kill -0 "$server" 2>/dev/null || fail "the server block exited"
  [ "$(date +%s)" -lt "$deadline" ] || fail "the example did not answer within 300 s"
  sleep 1
done
echo "== the example answers at http://127.0.0.1:$port/ ($(( $(date +%s) - began ))s) =="

echo "== client block =="
printf '%s\n' "$client_block"
output=$(cd "$work" && bash -e -o pipefail -c "$client_block") || fail "the client block failed"
actual=$(printf '%s\n' "$output" | sed -n '/^[{0-9]/p')
if [ "$actual" != "$expected" ]; then
  printf 'expected:\n%s\nactual:\n%s\n' "$expected" "$actual"
  fail "the client block's output is not what the README shows"
fi
printf '%s\n' "$output"
echo "== README \"Try it\" works as written ($(( $(date +%s) - began ))s) =="
