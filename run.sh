#!/usr/bin/env bash
# Wangge's two commands. Each installs whatever is missing first:
#   ./run.sh demo   PostgreSQL+PostGIS+pgRouting, the Python environment; then the demo city
#                   is loaded (once) and the API and maps are served.
#   ./run.sh test   the same installs (plus a headless browser); then the lint (ruff check,
#                   ruff format --check, mypy) and the test suite; any finding fails the run.
# Extra arguments go to `wangge up` or to pytest. WANGGE_SKIP_LINT=1 skips the lint (local
# iterations only; CI never sets it).
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-}"; shift || true
case "$mode" in demo|test) ;; *) echo "usage: ./run.sh demo|test [args]" >&2; exit 2;; esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "error: missing $*; install them with your system's package manager" >&2; exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- system packages: PostgreSQL with PostGIS and pgRouting ------------------------------
pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }
if [ -z "$(pg_major)" ]; then
  echo "installing PostgreSQL ..."
  apt_install postgresql postgresql-contrib
fi
V="$(pg_major)"
if [ ! -f "/usr/share/postgresql/$V/extension/postgis.control" ] \
   || [ ! -f "/usr/share/postgresql/$V/extension/pgrouting.control" ]; then
  echo "installing PostGIS and pgRouting for PostgreSQL $V ..."
  apt_install "postgresql-$V-postgis-3" "postgresql-$V-pgrouting"
fi
if ! python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "installing Python 3.11+ with venv ..."
  apt_install python3 python3-venv python3-pip
fi
if [ "$mode" = test ]; then
  # the browser tests: Chromium and its matched driver, CJK fonts for the screenshots
  browser_pkgs=()
  command -v chromium >/dev/null || browser_pkgs+=(chromium)
  command -v chromedriver >/dev/null || browser_pkgs+=(chromium-driver)
  [ -d /usr/share/fonts/truetype/wqy ] || browser_pkgs+=(fonts-wqy-microhei)
  [ -d /usr/share/fonts/opentype/noto ] || browser_pkgs+=(fonts-noto-cjk)
  if [ "${#browser_pkgs[@]}" -gt 0 ]; then
    echo "installing ${browser_pkgs[*]} for the browser tests ..."
    apt_install "${browser_pkgs[@]}"
  fi
fi

# --- the Python environment (re-installed when pyproject.toml changes) --------------------
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
stamp=".venv/.wangge-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import api, gis, maps' 2>/dev/null; then
  echo "installing the Python environment ..."
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

if [ "$mode" = demo ]; then
  exec .venv/bin/wangge up "$@"
else
  if [ "${WANGGE_SKIP_LINT:-0}" != 1 ]; then
    echo "lint: ruff check, ruff format --check, mypy ..."
    .venv/bin/ruff check api gis maps migrations tests bench
    .venv/bin/ruff format --check api gis maps migrations tests bench
    .venv/bin/mypy api gis maps
  fi
  exec .venv/bin/python -m pytest "$@"
fi
