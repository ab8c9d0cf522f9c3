#!/usr/bin/env bash
# Opens report.html pages in headless Chromium (Debian's `chromium` package) and fails when a page logs anything
# to the console (no page of ours runs scripts, so any console message is an error), when it fetches anything
# over the network, or when the browser's DOM holds fewer <svg> charts than the file. Optionally screenshots.
# Not part of CI (.ci/run does not install Chromium); run it by hand:
#   scripts/check_report_render.sh [--screenshot OUT.png] [--window-size 1400,3000] REPORT.html...
set -euo pipefail

CHROMIUM="${CHROMIUM:-chromium}"
screenshot="" window="1400,3000" pages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --screenshot) screenshot="$2"; shift 2 ;;
    --window-size) window="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) pages+=("$1"); shift ;;
  esac
done
[ ${#pages[@]} -gt 0 ] || { echo "usage: $0 [--screenshot OUT.png] [--window-size W,H] REPORT.html..." >&2; exit 2; }
command -v "$CHROMIUM" >/dev/null || { echo "$0: $CHROMIUM not found (apt-get install -y chromium)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Every way the browser itself phones home is switched off or, failing that, cannot resolve a host.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
       --disable-component-update --disable-sync --disable-extensions --host-resolver-rules="MAP * ~NOTFOUND")

status=0
for page in "${pages[@]}"; do
  [ -f "$page" ] || { echo "FAIL $page: no such file" >&2; status=1; continue; }
  url="file://$(realpath "$page")"
  "$CHROMIUM" "${flags[@]}" --user-data-dir="$work/profile-dom" --enable-logging=stderr --v=0 \
      --log-net-log="$work/net.json" --dump-dom "$url" > "$work/dom.html" 2> "$work/log.txt" || true
  problems=()
  if grep -q "CONSOLE" "$work/log.txt"; then
    problems+=("console messages:")
    while IFS= read -r line; do problems+=("  $line"); done < <(grep "CONSOLE" "$work/log.txt")
  fi
  # Requests the page made: any URL but the page itself and data: URLs. Chromium's own background
  # services (Google update, time and account endpoints) are not the page's and are left out.
  if [ -f "$work/net.json" ]; then
    while IFS= read -r u; do problems+=("network request: $u"); done < <(
      grep -o '"url":"[^"]*"' "$work/net.json" | sed 's/^"url":"//; s/"$//' | sort -u |
        grep -v -E '^(file:|data:|chrome:|about:)' |
        grep -v -E '^https?://([a-z0-9-]+\.)*(google\.com|googleapis\.com|gstatic\.com|gvt1\.com)/' || true)
  fi
  want=$( (grep -o '<svg ' "$page" || true) | wc -l)
  got=$( (grep -o '<svg ' "$work/dom.html" || true) | wc -l)
  [ "$got" -ge "$want" ] && [ "$want" -gt 0 ] || problems+=("DOM has $got <svg> charts, the file $want")
  if [ ${#problems[@]} -gt 0 ]; then
    echo "FAIL $page"
    printf '  %s\n' "${problems[@]}"
    status=1
  else
    echo "ok   $page: no console messages, no network requests, $got charts in the DOM"
  fi
  if [ -n "$screenshot" ]; then
    "$CHROMIUM" "${flags[@]}" --user-data-dir="$work/profile-shot" --hide-scrollbars --window-size="$window" \
        --screenshot="$screenshot" "$url" > /dev/null 2>&1 || { echo "FAIL $page: screenshot" >&2; status=1; }
    [ -s "$screenshot" ] && echo "     screenshot: $screenshot ($window)"
    screenshot=""  # one screenshot: of the first page
  fi
  rm -f "$work/net.json"
done
exit $status
