#!/usr/bin/env bash
# kuvert vs age (Go) vs rage (Rust): CLI stream seal and open throughput,
# and kuvert's peak memory. Prints a markdown table on standard output;
# progress goes to standard error.
#
#   benches/compare.sh                      # default run, about 3-5 minutes
#   SIZE_MIB=512 ROUNDS=3 RSS_BIG_MIB=0 benches/compare.sh   # quick look
#
# What it does, from a clean checkout:
#   1. builds kuvert in release (`cargo build --release -p kuvert-cli`) with
#      its default features (ring chunks), exactly as a dependent would:
#      this repository sets no build flags;
#   2. installs age (`apt-get install -y age`) and rage (`cargo install rage
#      --locked`, several minutes, kept in ~/.cargo/bin) if they are missing;
#   3. writes a SIZE_MIB incompressible file (/dev/urandom) to a temporary
#      directory on disk (not tmpfs), generates a key for each tool, seals the
#      file once with each tool and checks that each container opens to it;
#   4. ROUNDS rounds, each timing every tool once per operation, in an order
#      that rotates from round to round (interleaved, so drift hits all
#      tools alike): seal = stdin from the file -> stdout to /dev/null; open =
#      the tool's container -> stdout to /dev/null. Wall time via
#      `date +%s.%N`; medians; MB/s = plaintext bytes / 10^6 / s;
#      in the same rounds, kuvert seals the file onto `--volume-size cd`
#      volume files with `--parity 20` and `--parity none` (parity needs a
#      file output; issue 12's target is >= 0.5x);
#   5. peak RSS (`/usr/bin/time -v`, "Maximum resident set size") of every
#      tool at SIZE_MIB, and of kuvert at RSS_BIG_MIB: /dev/urandom piped
#      straight into `kuvert seal ... -` (the input is never stored), its
#      container written to disk once and then opened to /dev/null.
#
# Environment knobs (defaults in brackets):
#   SIZE_MIB      [2048]  size of the timed input, MiB
#   ROUNDS        [5]     timed rounds (median of ROUNDS runs per cell)
#   RSS_BIG_MIB   [8192]  input size of the large RSS check; 0 skips it
#   THREADS       [nproc] kuvert's "all threads" count (-j)
#   FEATURES      []      the library's cargo features, e.g. "zeroize-chunk-key"
#                         (RustCrypto chunks; with CARGO_TARGET_DIR set,
#                         target/release stays as it is)
#   WORKDIR       []      parent directory for the scratch files (default:
#                         $TMPDIR or /tmp, unless tmpfs: then target/)
#   VERIFY        [1]     0 skips the open-equals-input check of step 3
#   KEEP          [0]     1 keeps the scratch directory
#   WAIT_IDLE     [120]   before each round, wait up to this many seconds
#                         while more than BUSY_MAX [10] % of the CPU is used
#                         by other processes (noted in the output either way)
#   AGE, RAGE, KUVERT     paths of the binaries, to skip install/build
#   VARIANTS      []      more kuvert builds to time in the same rounds, as
#                         "LABEL=PATH ...", e.g. "rustcrypto=/tmp/t/release/kuvert"
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
ROUNDS=${ROUNDS:-5}
RSS_BIG_MIB=${RSS_BIG_MIB:-8192}
NPROC=$(nproc)
THREADS=${THREADS:-$NPROC}
FEATURES=${FEATURES:-}
VERIFY=${VERIFY:-1}
VARIANTS=${VARIANTS:-}
KEEP=${KEEP:-0}
WAIT_IDLE=${WAIT_IDLE:-120}
BUSY_MAX=${BUSY_MAX:-10}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '%s\n' "compare.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s.%N; }
# busy, wait_idle
. "$REPO/benches/idle.sh"
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }

# --- tools -----------------------------------------------------------------

if [[ -z ${KUVERT:-} ]]; then
    say "building kuvert (release${FEATURES:+, features $FEATURES})"
    # The binary is package kuvert-cli; FEATURES are the library's, so each
    # is passed on as kuvert/FEATURE.
    lib_features=()
    for feature in ${FEATURES//,/ }; do lib_features+=("kuvert/$feature"); done
    (cd "$REPO" && cargo build --release --quiet -p kuvert-cli \
        ${FEATURES:+--features "$(IFS=,; echo "${lib_features[*]}")"})
    KUVERT=${CARGO_TARGET_DIR:-$REPO/target}/release/kuvert
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if [[ -z ${AGE:-} ]]; then
    if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
        say "installing age (apt-get)"
        as_root apt-get install -y age >&2 ||
            { as_root apt-get update >&2 && as_root apt-get install -y age >&2; }
    fi
    AGE=$(command -v age)
fi
AGE_KEYGEN=$(command -v age-keygen || true)
if [[ -z ${RAGE:-} ]]; then
    RAGE=$(command -v rage || true)
    [[ -z $RAGE && -x $HOME/.cargo/bin/rage ]] && RAGE=$HOME/.cargo/bin/rage
    if [[ -z $RAGE ]]; then
        say "installing rage (cargo install rage --locked; takes minutes, once)"
        cargo install rage --locked >&2
        RAGE=$HOME/.cargo/bin/rage
    fi
fi
RAGE_KEYGEN=$(dirname "$RAGE")/rage-keygen
[[ -x $RAGE_KEYGEN ]] || RAGE_KEYGEN=$AGE_KEYGEN
[[ -x /usr/bin/time ]] || die "/usr/bin/time is needed (apt-get install time)"

# --- scratch directory on disk -----------------------------------------------

base=${WORKDIR:-${TMPDIR:-/tmp}}
if [[ -z ${WORKDIR:-} && $(df --output=fstype "$base" | tail -1) == tmpfs ]]; then
    base=$REPO/target
    say "${TMPDIR:-/tmp} is tmpfs: using $base"
fi
mkdir -p "$base"
need_mib=$((SIZE_MIB * 5 + RSS_BIG_MIB + 256))
avail_mib=$(( $(df -k --output=avail "$base" | tail -1) / 1024 ))
((avail_mib >= need_mib)) || die "$base has $avail_mib MiB free; this run needs $need_mib"
DIR=$(mktemp -d "$base/kuvert-compare.XXXXXX")
cleanup() { if [[ $KEEP == 1 ]]; then say "kept $DIR"; else rm -rf "$DIR"; fi; }
trap cleanup EXIT

IN=$DIR/input.bin
BYTES=$((SIZE_MIB * 1048576))

# --- first line: machine and versions ----------------------------------------

cpu=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
dirty=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)
echo "machine: nproc=$NPROC, $cpu ($(uname -r)) | $("$KUVERT" --version) (git $rev$dirty${FEATURES:+, features $FEATURES}), age $("$AGE" --version), $("$RAGE" --version), $(rustc --version | cut -d' ' -f1-2) | input ${SIZE_MIB} MiB from /dev/urandom in $DIR ($(df --output=fstype "$DIR" | tail -1)), $ROUNDS rounds"
echo

# --- input and keys ------------------------------------------------------------

say "writing $SIZE_MIB MiB of /dev/urandom to $IN"
head -c "$BYTES" /dev/urandom >"$IN"
cat "$IN" >/dev/null # in the page cache for every tool alike

"$KUVERT" keygen -q -o "$DIR/kuvert.key" 2>/dev/null
K_REC=$("$KUVERT" keygen -y "$DIR/kuvert.key")
"$KUVERT" keygen -q --sign -o "$DIR/kuvert.sign" 2>/dev/null
K_SIGNER=$("$KUVERT" keygen -y "$DIR/kuvert.sign" | head -n 1)
"$AGE_KEYGEN" -o "$DIR/age.key" 2>/dev/null
A_REC=$("$AGE_KEYGEN" -y "$DIR/age.key")
"$RAGE_KEYGEN" -o "$DIR/rage.key" 2>/dev/null
R_REC=$("$AGE_KEYGEN" -y "$DIR/rage.key")

# Tools: kuvert at all threads and at -j 1; kuvert signed (seal --sign,
# open --signer) and without digests or padding (--no-digests --pad none),
# so that what the keyless digests and the signature cost is measured in
# the same rounds; then any VARIANTS (other kuvert builds, each also at
# both thread counts), then age and rage.
declare -A BIN=([kuvert]=$KUVERT [kuvert-j1]=$KUVERT [kuvert-signed]=$KUVERT [kuvert-bare]=$KUVERT)
declare -A NAME=([kuvert]="kuvert -j $THREADS" [kuvert-j1]="kuvert -j 1" [age]=age [rage]=rage
    [kuvert-signed]="kuvert -j $THREADS, signed" [kuvert-bare]="kuvert -j $THREADS, --no-digests --pad none")
TOOLS=(kuvert kuvert-j1 kuvert-signed kuvert-bare)
for variant in $VARIANTS; do
    v=${variant%%=*} path=${variant#*=}
    [[ -x $path ]] || die "VARIANTS: $path is not an executable"
    BIN[v-$v]=$path BIN[v-$v-j1]=$path
    NAME[v-$v]="kuvert $v -j $THREADS" NAME[v-$v-j1]="kuvert $v -j 1"
    TOOLS+=("v-$v" "v-$v-j1")
done
TOOLS+=(age rage)
label() { echo "${NAME[$1]}"; }
threads_of() { [[ $1 == *-j1 ]] && echo 1 || echo "$THREADS"; }
# The command line of each tool: seal reads standard input and writes
# standard output; open reads the tool's container and writes standard output.
seal_cmd() {
    case $1 in
        age) CMD=("$AGE" -e -r "$A_REC") ;;
        rage) CMD=("$RAGE" -e -r "$R_REC") ;;
        kuvert-signed) CMD=("$KUVERT" seal -q -j "$THREADS" -r "$K_REC" --sign "$DIR/kuvert.sign" -o - -) ;;
        kuvert-bare) CMD=("$KUVERT" seal -q -j "$THREADS" -r "$K_REC" --no-digests --pad none -o - -) ;;
        *) CMD=("${BIN[$1]}" seal -q -j "$(threads_of "$1")" -r "$K_REC" -o - -) ;;
    esac
}
open_cmd() {
    case $1 in
        age) CMD=("$AGE" -d -i "$DIR/age.key" "$DIR/c.age") ;;
        rage) CMD=("$RAGE" -d -i "$DIR/rage.key" "$DIR/c.rage") ;;
        kuvert-signed) CMD=("$KUVERT" open -q -j "$THREADS" -i "$DIR/kuvert.key" --signer "$K_SIGNER" -o - "$DIR/c.signed.kuv") ;;
        kuvert-bare) CMD=("$KUVERT" open -q -j "$THREADS" -i "$DIR/kuvert.key" -o - "$DIR/c.bare.kuv") ;;
        *) CMD=("${BIN[$1]}" open -q -j "$(threads_of "$1")" -i "$DIR/kuvert.key" -o - "$DIR/c.kuv") ;;
    esac
}
# The keyless check of the signed container: signatures and every chunk
# digest, no decryption key (timed in the same rounds; MB/s of container).
verify_cmd() { CMD=("$KUVERT" verify -q --signer "$K_SIGNER" "$DIR/c.signed.kuv"); }
# Sealing onto cd volumes (files, as parity needs), with the default parity
# of the disc presets and without it (issue 12: parity >= 0.5x none); the
# volumes go to $DIR/cd, emptied before each run.
cd_cmd() { CMD=("$KUVERT" seal -q -j "$THREADS" -r "$K_REC" --volume-size cd --parity "$1" -o "$DIR/cd/s.kuv" -); }
CD_PARITIES=(none 20)

for tool in kuvert age rage; do
    say "sealing the $tool container once"
    seal_cmd "$tool"
    "${CMD[@]}" <"$IN" >"$DIR/c.${tool/kuvert/kuv}"
done
seal_cmd kuvert-signed; "${CMD[@]}" <"$IN" >"$DIR/c.signed.kuv"
seal_cmd kuvert-bare; "${CMD[@]}" <"$IN" >"$DIR/c.bare.kuv"
verify_cmd; "${CMD[@]}" >/dev/null || die "kuvert verify --signer refused its own signed container"
if [[ $VERIFY == 1 ]]; then
    for tool in "${TOOLS[@]}"; do
        say "checking that $(label "$tool") opens its container to the input"
        open_cmd "$tool"
        "${CMD[@]}" | cmp -s - "$IN" || die "$(label "$tool"): the opened container differs from the input"
    done
fi
cat "$DIR"/c.* >/dev/null

# --- timed, interleaved rounds ---------------------------------------------------

declare -A SEAL_T OPEN_T SEAL_C OPEN_C CD_T CD_C
VERIFY_T=""
# CPU seconds (user + system) of each timed run, for reading a busy machine.
CPU_TIME="/usr/bin/time -f %U+%S -o $DIR/cpu.txt"
cpu_used() { awk -F+ '{printf "%.2f", $1 + $2}' "$DIR/cpu.txt"; }
n=${#TOOLS[@]}
BUSY_SEEN=()
for ((round = 0; round < ROUNDS; round++)); do
    BUSY_SEEN+=("$(wait_idle)")
    say "round $((round + 1))/$ROUNDS (others used ${BUSY_SEEN[-1]}% CPU just before)"
    for op in seal open; do
        for ((k = 0; k < n; k++)); do
            tool=${TOOLS[(k + round) % n]}
            if [[ $op == seal ]]; then
                seal_cmd "$tool"
                t0=$(now); $CPU_TIME "${CMD[@]}" <"$IN" >/dev/null; t1=$(now)
                SEAL_T[$tool]+="$(elapsed "$t0" "$t1") "
                SEAL_C[$tool]+="$(cpu_used) "
            else
                open_cmd "$tool"
                t0=$(now); $CPU_TIME "${CMD[@]}" >/dev/null; t1=$(now)
                OPEN_T[$tool]+="$(elapsed "$t0" "$t1") "
                OPEN_C[$tool]+="$(cpu_used) "
            fi
        done
    done
    verify_cmd
    t0=$(now); "${CMD[@]}" >/dev/null; t1=$(now)
    VERIFY_T+="$(elapsed "$t0" "$t1") "
    for ((k = 0; k < ${#CD_PARITIES[@]}; k++)); do
        parity=${CD_PARITIES[(k + round) % ${#CD_PARITIES[@]}]}
        rm -rf "$DIR/cd"; mkdir "$DIR/cd"
        cd_cmd "$parity"
        t0=$(now); $CPU_TIME "${CMD[@]}" <"$IN"; t1=$(now)
        CD_T[$parity]+="$(elapsed "$t0" "$t1") "
        CD_C[$parity]+="$(cpu_used) "
    done
    rm -rf "$DIR/cd"
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
declare -A SEAL_R OPEN_R
for tool in "${TOOLS[@]}"; do
    SEAL_R[$tool]=$(median <<<"${SEAL_T[$tool]}" | awk -v b="$BYTES" '{printf "%.0f", b/1e6/$1}')
    OPEN_R[$tool]=$(median <<<"${OPEN_T[$tool]}" | awk -v b="$BYTES" '{printf "%.0f", b/1e6/$1}')
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a/b}'; }

echo "Stream seal and open of $SIZE_MIB MiB, stdout to /dev/null, median of $ROUNDS interleaved runs (MB/s = 10^6 B/s of plaintext, from wall time; CPU s = user + system):"
echo
echo "| tool | seal MB/s | open MB/s | seal / open vs age | seal / open vs rage | seal / open CPU s |"
echo "|---|---:|---:|---:|---:|---:|"
for tool in "${TOOLS[@]}"; do
    printf '| %s | %s | %s | %s / %s | %s / %s | %s / %s |\n' "$(label "$tool")" \
        "${SEAL_R[$tool]}" "${OPEN_R[$tool]}" \
        "$(ratio "${SEAL_R[$tool]}" "${SEAL_R[age]}")" "$(ratio "${OPEN_R[$tool]}" "${OPEN_R[age]}")" \
        "$(ratio "${SEAL_R[$tool]}" "${SEAL_R[rage]}")" "$(ratio "${OPEN_R[$tool]}" "${OPEN_R[rage]}")" \
        "$(median <<<"${SEAL_C[$tool]}")" "$(median <<<"${OPEN_C[$tool]}")"
done
echo
VERIFY_BYTES=$(stat -c %s "$DIR/c.signed.kuv")
VERIFY_R=$(median <<<"$VERIFY_T" | awk -v b="$VERIFY_BYTES" '{printf "%.0f", b/1e6/$1}')
echo "Keyless \`kuvert verify --signer\` of the signed container (signatures and every chunk digest, no decryption key): $VERIFY_R MB/s of container, median of $ROUNDS."
echo
declare -A CD_R
for parity in "${CD_PARITIES[@]}"; do
    CD_R[$parity]=$(median <<<"${CD_T[$parity]}" | awk -v b="$BYTES" '{printf "%.0f", b/1e6/$1}')
done
echo "Seal onto \`--volume-size cd\` volume files (\`-o DIR/cd/s.kuv\`), same input, median of $ROUNDS interleaved runs:"
echo
echo "| parity | seal MB/s | vs --parity none | CPU s |"
echo "|---|---:|---:|---:|"
for parity in "${CD_PARITIES[@]}"; do
    printf '| --parity %s | %s | %s | %s |\n' "$parity" "${CD_R[$parity]}" \
        "$(ratio "${CD_R[$parity]}" "${CD_R[none]}")" "$(median <<<"${CD_C[$parity]}")"
done
echo
echo "Raw seconds per run (round order); CPU used by other processes just before each round: ${BUSY_SEEN[*]/%/%}"
echo
for tool in "${TOOLS[@]}"; do
    printf -- '- %s: seal %s; open %s\n' "$(label "$tool")" \
        "$(printf '%.3f ' ${SEAL_T[$tool]})" "$(printf '%.3f ' ${OPEN_T[$tool]})"
done
for parity in "${CD_PARITIES[@]}"; do
    printf -- '- kuvert --volume-size cd --parity %s: seal %s\n' "$parity" "$(printf '%.3f ' ${CD_T[$parity]})"
done
echo

# --- targets -------------------------------------------------------------------

check() { # name value limit
    if awk -v v="$2" -v l="$3" 'BEGIN {exit !(v >= l)}'; then echo "- PASS $1"; else echo "- MISS $1"; fi
}
echo "Targets (against age and rage as measured in this run):"
echo
for op in seal open; do
    if [[ $op == seal ]]; then k=${SEAL_R[kuvert]} k1=${SEAL_R[kuvert-j1]} a=${SEAL_R[age]} r=${SEAL_R[rage]}
    else k=${OPEN_R[kuvert]} k1=${OPEN_R[kuvert-j1]} a=${OPEN_R[age]} r=${OPEN_R[rage]}; fi
    check "$op -j $THREADS >= 1.8× age: $k vs $(awk -v a="$a" 'BEGIN {printf "%.0f", 1.8*a}') MB/s" "$k" "$(awk -v a="$a" 'BEGIN {print 1.8*a}')"
    check "$op -j $THREADS >= 3× rage: $k vs $(awk -v r="$r" 'BEGIN {printf "%.0f", 3*r}') MB/s" "$k" "$(awk -v r="$r" 'BEGIN {print 3*r}')"
    check "$op -j 1 >= age: $k1 vs $a MB/s" "$k1" "$a"
done
signed=${SEAL_R[kuvert-signed]} plain=${SEAL_R[kuvert]}
check "signed seal >= 0.85× unsigned: $signed vs $(awk -v p="$plain" 'BEGIN {printf "%.0f", 0.85*p}') MB/s" "$signed" "$(awk -v p="$plain" 'BEGIN {print 0.85*p}')"
check "keyless verify --signer >= 1500 MB/s: $VERIFY_R MB/s" "$VERIFY_R" 1500
with=${CD_R[20]} without=${CD_R[none]}
check "cd seal --parity 20 >= 0.5× --parity none: $with vs $(awk -v p="$without" 'BEGIN {printf "%.0f", 0.5*p}') MB/s" "$with" "$(awk -v p="$without" 'BEGIN {print 0.5*p}')"
echo

# --- peak RSS --------------------------------------------------------------------

rss() { # output of /usr/bin/time -v -> MiB
    awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"
}
declare -A RSS_SEAL RSS_OPEN
for tool in "${TOOLS[@]}"; do
    say "peak RSS of $(label "$tool") at $SIZE_MIB MiB"
    seal_cmd "$tool"
    /usr/bin/time -v -o "$DIR/time.txt" "${CMD[@]}" <"$IN" >/dev/null
    RSS_SEAL[$tool]=$(rss "$DIR/time.txt")
    open_cmd "$tool"
    /usr/bin/time -v -o "$DIR/time.txt" "${CMD[@]}" >/dev/null
    RSS_OPEN[$tool]=$(rss "$DIR/time.txt")
done
BIG_SEAL=- BIG_OPEN=-
if ((RSS_BIG_MIB > 0)); then
    rm -f "$DIR"/c.age "$DIR"/c.rage
    say "peak RSS of kuvert seal at $RSS_BIG_MIB MiB (/dev/urandom piped in; about $((RSS_BIG_MIB / 450)) s)"
    head -c $((RSS_BIG_MIB * 1048576)) /dev/urandom |
        /usr/bin/time -v -o "$DIR/time.txt" "$KUVERT" seal -q -j "$THREADS" -r "$K_REC" -o - - >"$DIR/big.kuv"
    BIG_SEAL=$(rss "$DIR/time.txt")
    say "peak RSS of kuvert open at $RSS_BIG_MIB MiB"
    /usr/bin/time -v -o "$DIR/time.txt" "$KUVERT" open -q -j "$THREADS" -i "$DIR/kuvert.key" -o - "$DIR/big.kuv" >/dev/null
    BIG_OPEN=$(rss "$DIR/time.txt")
    rm -f "$DIR/big.kuv"
fi

echo "Peak RSS (MiB, /usr/bin/time -v \"Maximum resident set size\"), stdout to /dev/null (large input: /dev/urandom piped in, container on disk):"
echo
echo "| tool | seal $SIZE_MIB MiB | open $SIZE_MIB MiB | seal $RSS_BIG_MIB MiB | open $RSS_BIG_MIB MiB |"
echo "|---|---:|---:|---:|---:|"
for tool in "${TOOLS[@]}"; do
    big_s=- big_o=-
    [[ $tool == kuvert ]] && big_s=$BIG_SEAL big_o=$BIG_OPEN
    echo "| $(label "$tool") | ${RSS_SEAL[$tool]} | ${RSS_OPEN[$tool]} | $big_s | $big_o |"
done
echo
for v in "${RSS_SEAL[kuvert]}" "${RSS_OPEN[kuvert]}" "${RSS_SEAL[kuvert-j1]}" "${RSS_OPEN[kuvert-j1]}" $BIG_SEAL $BIG_OPEN; do
    [[ $v == - ]] && continue
    awk -v v="$v" 'BEGIN {exit !(v > 64)}' && { echo "- MISS kuvert peak RSS <= 64 MiB ($v MiB)"; exit 0; }
done
echo "- PASS kuvert peak RSS <= 64 MiB (every row above)"
