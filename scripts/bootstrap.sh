# Sourced by the other scripts: a project virtualenv with the given requirements file installed, and
# the Inbox page's bundle. Re-running is cheap: pip is only called when a requirements file changed
# since the last install, npm only when the page's package files did.
set -euo pipefail

PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$PROJECT_ROOT/.venv}"

bootstrap_venv() {
  local requirements="$PROJECT_ROOT/$1"
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed (found: $("$python" --version 2>&1)). Set PYTHON=/path/to/python3.11+." >&2
    exit 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    "$python" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(basename "$requirements")"
  local stale=0 file
  for file in "$PROJECT_ROOT"/requirements*.txt; do  # a requirements file may include the others
    if [ "$file" -nt "$stamp" ]; then stale=1; fi
  done
  if [ ! -f "$stamp" ] || [ "$stale" = 1 ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$stamp"
  fi
}

# The project installed in place (pip install -e .), so the segment-novu command runs from any folder.
bootstrap_project() {
  local stamp="$VENV/.installed-project"
  if [ ! -x "$VENV/bin/segment-novu" ] || [ ! -f "$stamp" ] || [ "$PROJECT_ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e "$PROJECT_ROOT"
    touch "$stamp"
  fi
}

# examples/inbox/dist/novu-inbox.js: Novu's Inbox (@novu/js, pinned by package-lock.json) bundled by
# esbuild. Needs Node.js and npm; output goes to stderr, so a script's stdout stays its own.
bootstrap_inbox_bundle() {
  local page="$PROJECT_ROOT/examples/inbox"
  if ! command -v npm >/dev/null 2>&1; then
    echo "Node.js and npm are needed to build the Inbox page (examples/inbox): apt-get install nodejs npm, or see nodejs.org" >&2
    exit 1
  fi
  if [ ! -f "$page/node_modules/.package-lock.json" ] || [ "$page/package-lock.json" -nt "$page/node_modules/.package-lock.json" ]; then
    (cd "$page" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  local bundle="$page/dist/novu-inbox.js"
  if [ ! -f "$bundle" ] || [ "$page/entry.js" -nt "$bundle" ] || [ "$page/package-lock.json" -nt "$bundle" ]; then
    (cd "$page" && npm run --silent build) >&2
  fi
}
