#!/usr/bin/env bash
# The package as users install it: `npm pack`, `bun add ./tarball` in a
# fresh folder, then an example and the CLI from there on Bun and on Deno
# (through the same node_modules). The shim must be built into the
# per-user cache (never into the installed package), and a missing C
# compiler must be a clear error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME="$tmp/cache" NO_COLOR=1

(cd "$root" && npm pack --silent --pack-destination "$tmp" >/dev/null)
tarball=$(ls "$tmp"/*.tgz)
mkdir "$tmp/app"
cd "$tmp/app"
echo '{ "name": "app", "private": true, "type": "module" }' >package.json
bun add --silent "$tarball" >/dev/null
pkg=node_modules/@asyncpmem/asyncpmem
cp "$root/examples/map_persist.ts" .

echo "package: bun runs an example"
bun map_persist.ts | grep -q 'file holds "written by memcpy"'
echo "package: bun runs the CLI (the package's bin)"
bun node_modules/.bin/asyncpmem --help | grep -q '^usage: asyncpmem COMMAND'
echo "package: deno runs the example and the CLI from the unpacked tarball"
# Deno does not run TypeScript from node_modules (its users take the JSR
# package); a local path to the same files is the Deno way to vendor it
mkdir "$tmp/deno"
tar -xzf "$tarball" -C "$tmp/deno"
(cd "$tmp/deno" && deno eval '
  const pkg = JSON.parse(Deno.readTextFileSync("package/package.json"));
  const imports = Object.fromEntries(Object.entries(pkg.exports).map(
    ([k, v]) => [k === "." ? pkg.name : `${pkg.name}/${k.slice(2)}`,
      `./package/${v.slice(2)}`]));
  Deno.writeTextFileSync("deno.json", JSON.stringify({ imports }));
')
cp "$root/examples/map_persist.ts" "$tmp/deno/"
(cd "$tmp/deno" && deno run -A map_persist.ts) |
  grep -q 'file holds "written by memcpy"'
(cd "$tmp/deno" && deno run -A package/cli/main.ts create blk "$tmp/app/pool" \
  --block-size 512 --size 17M) | grep -q '^created '
bun node_modules/.bin/asyncpmem check pool | grep -q ': consistent$'

echo "package: the shim was built into the per-user cache, not the package"
ls "$XDG_CACHE_HOME"/asyncpmem/*/libasyncpmem.so >/dev/null
[ ! -e "$pkg/c/build" ]

echo "package: no C compiler is a clear error"
rm -rf "$XDG_CACHE_HOME"
if CC=/nonexistent/cc bun map_persist.ts >out.txt 2>&1; then
  echo "package: expected a failure without a compiler"; exit 1
fi
grep -q "Cannot build the asyncpmem native shim: '/nonexistent/cc' could not run" out.txt
grep -q "apt-get install -y gcc libpmem2-dev" out.txt
echo "package: ok"
