#!/usr/bin/env bash
# Build and install Citus from the vendored source tarball into the installed PostgreSQL,
# only when the installed citus.so is not already the one built from that tarball.
#
#   tools/build_citus.sh [TARBALL]    (default: ../shared/vendor/citus-13.2.2.tar.gz,
#                                      relative to the repository root)
#
# The stamp file `citus.so.govern-stamp` beside citus.so records the tarball's sha256, the
# PostgreSQL version it was built against and the sha256 of the citus.so it installed; when
# all three still match, nothing is done. Needs root (or sudo) for apt-get and make install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARBALL="${1:-$ROOT/../shared/vendor/citus-13.2.2.tar.gz}"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
BUILD_DIR="$ROOT/var/build/citus"
JOBS="${CITUS_BUILD_JOBS:-2}"
DEPS=(postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev
      libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev autoconf flex bison)

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

[ -f "$TARBALL" ] || { echo "build_citus: no tarball at $TARBALL" >&2; exit 1; }
[ -x "$PG_CONFIG" ] || { echo "build_citus: no pg_config at $PG_CONFIG (install postgresql-15)" >&2; exit 1; }

tar_sha="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
pg_version="$("$PG_CONFIG" --version)"
libdir="$("$PG_CONFIG" --pkglibdir)"
stamp="$libdir/citus.so.govern-stamp"

if [ -f "$libdir/citus.so" ] && [ -f "$stamp" ]; then
  so_sha="$(sha256sum "$libdir/citus.so" | cut -d' ' -f1)"
  if [ "$(cat "$stamp")" = "$(printf '%s\n%s\n%s' "$tar_sha" "$pg_version" "$so_sha")" ]; then
    echo "build_citus: citus.so in $libdir already built from $(basename "$TARBALL") for $pg_version"
    exit 0
  fi
fi

# Debian build dependencies, only the missing ones.
missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build_citus: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

start=$(date +%s)
rm -rf "$BUILD_DIR"
mkdir -p "$BUILD_DIR"
tar -xzf "$TARBALL" -C "$BUILD_DIR" --strip-components=1
cd "$BUILD_DIR"

# Newer PostgreSQL 15 minor releases (15.20 here) export have_createdb_privilege() from
# commands/dbcommands.h, which makes Citus's static copy in pg_version_compat.h a
# "static declaration follows non-static declaration" error. Drop the copy only when the
# installed server headers declare the function.
server_inc="$("$PG_CONFIG" --includedir-server)"
compat=src/include/pg_version_compat.h
if grep -q 'have_createdb_privilege' "$server_inc/commands/dbcommands.h" 2>/dev/null \
   && grep -q '^have_createdb_privilege(void)' "$compat"; then
  echo "build_citus: $pg_version declares have_createdb_privilege; removing Citus's static copy"
  perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n//s' "$compat"
  if grep -q '^have_createdb_privilege(void)' "$compat"; then
    echo "build_citus: could not remove have_createdb_privilege from $compat" >&2; exit 1
  fi
fi

./configure PG_CONFIG="$PG_CONFIG" --quiet
make -s -j"$JOBS"
$SUDO make -s install
so_sha="$(sha256sum "$libdir/citus.so" | cut -d' ' -f1)"
printf '%s\n%s\n%s' "$tar_sha" "$pg_version" "$so_sha" | $SUDO tee "$stamp" >/dev/null
echo "build_citus: built and installed Citus in $(( $(date +%s) - start ))s"
