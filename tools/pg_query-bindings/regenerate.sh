#!/usr/bin/env bash
# Regenerates src/pg_query_bindings.rs and src/headers.txt from the pg_query crate
# that Cargo.lock pins, with the real bindgen 0.66.1. Run it after upgrading
# pg_query (the build says so when the headers changed). Needs libclang
# (Debian/Ubuntu: apt-get install libclang-dev); building pgwarden does not.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
version="$(awk '/^name = "pg_query"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
[ -n "$version" ] || { echo "regenerate.sh: pg_query not found in Cargo.lock" >&2; exit 1; }
cargo fetch --manifest-path "$root/Cargo.toml" --target "$(rustc -vV | sed -n 's/^host: //p')" >/dev/null
src="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name "pg_query-$version" | head -n 1)"
[ -d "$src/libpg_query" ] || { echo "regenerate.sh: pg_query $version sources not found" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
cp "$here/regenerate.rs" "$work/src/main.rs"
cat > "$work/Cargo.toml" <<TOML
[package]
name = "regenerate-pg-query-bindings"
version = "0.0.0"
edition = "2021"
[dependencies]
bindgen = "=0.66.1"
TOML
cargo run --quiet --manifest-path "$work/Cargo.toml" -- "$src/libpg_query" "$here/src"
echo "regenerated bindings for pg_query $version in $here/src"
