# Sourced by the one-call A/B scripts (ring_ab.sh, fuse_rope_ab.sh, h200_lease.sh) after they set CALL_DL (the
# seconds the whole script may take unless DL says otherwise): the repository root as the working folder, the
# clock of the call (left: seconds of DL still to go; elapsed), the assets, build and output folders
# (LLM_SHARED_DIR, default <repo>/../shared; BUILD -> B, default build/gpu; OUT -> O, default /tmp/o), and
# call_build TARGETS DEADLINE [LINES]: lease.sh's build stage for those targets, its last LINES (3) lines.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
left() { echo $(( ${DL:-$CALL_DL} - $(elapsed) )); }
export LLM_SHARED_DIR=${LLM_SHARED_DIR:-$PWD/../shared}
B=${BUILD:-$PWD/build/gpu}; O=${OUT:-/tmp/o}; mkdir -p "$O"
call_build() {
  BUILD_TARGETS="$1" STAGES=build DEADLINE=$2 bash bench/gpu/lease.sh 2>&1 | tail -"${3:-3}"
  echo "[$(elapsed)s] built"
}
