#!/usr/bin/env bash
# Proves that graphiql/vendor/ (the GraphiQL assets build.rs embeds into orgql) holds exactly
# the files of the npm packages pinned in graphiql/package-lock.json.
#
#   bash graphiql/verify.sh            check (CI runs it from clients/ci.sh)
#   bash graphiql/verify.sh --refresh  copy the files from node_modules into vendor/ (after
#                                      changing the versions in package.json; see vendor/README.md)
#
# `npm ci` checks every downloaded tarball against the sha512 `integrity` in the lockfile, so
# node_modules/ is the lockfile's; a byte-for-byte comparison of each vendored file with its
# node_modules/ original then ties the committed files to the lockfile too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

# Every vendored file, as its path inside node_modules/ (vendor/ mirrors that layout).
# build.rs embeds the *.min.* files and reads the versions from the package.json copies.
files=(
  graphiql/package.json graphiql/LICENSE graphiql/graphiql.min.js graphiql/graphiql.min.css
  react/package.json react/LICENSE react/umd/react.production.min.js
  react-dom/package.json react-dom/LICENSE react-dom/umd/react-dom.production.min.js
)

echo "== graphiql: npm ci (verifies each tarball against package-lock.json)"
npm ci --no-audit --no-fund --no-progress --loglevel=error

if [ "${1:-}" = "--refresh" ]; then
  for f in "${files[@]}"; do
    mkdir -p "vendor/$(dirname "$f")"
    cp "node_modules/$f" "vendor/$f"
  done
  echo "graphiql: vendor/ refreshed from node_modules/; commit it (and update the versions in vendor/README.md)"
  exit 0
fi

problems=0
# Each expected file is vendored and identical to the lockfile's.
for f in "${files[@]}"; do
  if [ ! -f "vendor/$f" ]; then
    echo "MISSING  vendor/$f (run: bash graphiql/verify.sh --refresh)" >&2
    problems=$((problems + 1))
  elif ! cmp -s "vendor/$f" "node_modules/$f"; then
    echo "DIFFERS  vendor/$f is not node_modules/$f of the pinned package" >&2
    problems=$((problems + 1))
  fi
done
# Nothing else sneaks into vendor/ (its README.md is ours).
while IFS= read -r f; do
  f="${f#vendor/}"
  [ "$f" = README.md ] && continue
  if [[ " ${files[*]} " != *" $f "* ]]; then
    echo "UNKNOWN  vendor/$f is not in verify.sh's list of vendored files" >&2
    problems=$((problems + 1))
  fi
done < <(find vendor -type f 2>/dev/null | sort)

if [ "$problems" -ne 0 ]; then
  echo "graphiql: vendor/ does not match package-lock.json ($problems problem(s))" >&2
  exit 1
fi
echo "graphiql: vendor/ matches package-lock.json (${#files[@]} files identical)"
