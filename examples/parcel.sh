#!/usr/bin/env bash
# The main job through the CLI: a data office seals a health-register extract
# onto disc-sized volumes for a recipient, checks every disc alone, and the
# recipient verifies, lists, extracts one entry and opens everything. Both
# sides run here, in one work directory.
#
#   bash examples/parcel.sh                                  # 5,282,616 people, CD volumes
#   bash examples/parcel.sh --records 200000 --volume-size 16M
#   bash examples/parcel.sh --keep /tmp/parcel               # keep the files
#
# Needs bash, coreutils, diff and a Rust toolchain. Every command is printed
# (as run from the work directory, with target/release on PATH) and timed.
# Ends with a line `OK`; exits 1 on any failure or mismatch, 2 on bad
# options, 130 when interrupted.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bash examples/parcel.sh [--records N] [--volume-size SIZE] [--keep DIR]

  --records N         people in the synthetic extract (default 5282616: about
                      1.34 GB of CSV, two CDs)
  --volume-size SIZE  kuvert seal --volume-size: cd (default), dvd, bd, fat32, …,
                      or a size such as 16M
  --keep DIR          work in DIR (new or empty) and keep it; by default a
                      directory under target/ is made and removed at exit
EOF
}

records=5282616
volume_size=cd
keep=
while (($#)); do
    case $1 in
    --records | --volume-size | --keep)
        if (($# < 2)); then
            echo "error: $1 needs a value" >&2
            usage >&2
            exit 2
        fi
        case $1 in
        --records) records=$2 ;;
        --volume-size) volume_size=$2 ;;
        --keep) keep=$2 ;;
        esac
        shift 2
        ;;
    --records=* | --volume-size=* | --keep=*)
        value=${1#*=}
        case $1 in
        --records=*) records=$value ;;
        --volume-size=*) volume_size=$value ;;
        --keep=*) keep=$value ;;
        esac
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "error: unknown option $1" >&2
        usage >&2
        exit 2
        ;;
    esac
done
records=${records//[,_]/}
if ! [[ $records =~ ^[0-9]+$ ]]; then
    echo "error: --records $records is not a whole number" >&2
    exit 2
fi

if [[ -n $keep ]]; then
    # Relative to where the script was started.
    mkdir -p "$keep"
    if [[ -n $(ls -A "$keep") ]]; then
        echo "error: --keep $keep is not empty" >&2
        exit 2
    fi
    keep=$(cd "$keep" && pwd)
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

now() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        echo "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}
# seconds START END, to the millisecond
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# mbps BYTES SECONDS
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / 1e6 / (s > 0.001 ? s : 0.001) }'; }
# percent PART WHOLE [DECIMALS]
percent() { awk -v p="$1" -v w="$2" -v d="${3:-1}" 'BEGIN { printf "%.*f", d, 100 * p / (w > 0 ? w : 1) }'; }
# grouped 1234567 -> 1,234,567
grouped() { printf '%s' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }
# bytes FILE...: their total size
bytes() {
    local total=0 file
    for file in "$@"; do
        total=$((total + $(wc -c <"$file")))
    done
    echo "$total"
}

# run 'COMMAND': print it, run it in the work directory, and leave its wall
# time in $took. The commands are fixed strings of this script.
took=0
run() {
    printf '\n$ %s\n' "$1"
    local start
    start=$(now)
    local status=0
    eval "$1" || status=$?
    if ((status != 0)); then
        echo "error: exit status $status from: $1" >&2
        # kuvert's own status (1, 2 or 130) passes through; a mismatch or
        # trouble in cmp or diff is a failure of data: 1.
        if [[ $1 == kuvert* || $status == 130 ]]; then
            exit "$status"
        fi
        exit 1
    fi
    took=$(seconds "$start" "$(now)")
    printf '  (%s s)\n' "$took"
}

step() { printf '\n== %s\n' "$*"; }

started=$(now)
# The binary is package kuvert-cli (cli/), the generator an example of the
# library, package kuvert.
step "build: cargo build --release -p kuvert-cli -p kuvert --bin kuvert --example parcel"
cargo build --release -p kuvert-cli -p kuvert --bin kuvert --example parcel
target_dir=${CARGO_TARGET_DIR:-$repo/target}
[[ $target_dir == /* ]] || target_dir=$repo/$target_dir
export PATH="$target_dir/release:$target_dir/release/examples:$PATH"
build_took=$(seconds "$started" "$(now)")

if [[ -n $keep ]]; then
    work=$keep
else
    # Under target/, on disk: the extract, the volumes and what is opened
    # take over three times the extract (about 4.4 GB by default), too much
    # for a /tmp in memory.
    mkdir -p "$target_dir"
    work=$(mktemp -d "$target_dir/parcel.XXXXXX")
fi
cleanup() {
    local status=$?
    if [[ -z $keep ]]; then
        rm -rf "$work"
    fi
    if ((status != 0)); then
        echo "FAILED (exit status $status)" >&2
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$work"
echo "work directory: $work$([[ -n $keep ]] || echo ' (removed at exit; --keep DIR keeps it)')"
echo "kuvert: $(command -v kuvert) ($(kuvert --version))"

step "recipient: make a key, send the public part"
run 'kuvert keygen -o recipient.key'
run 'kuvert keygen -y recipient.key > recipient.pub'
cat recipient.pub

# The office seals to itself as well, so that it can authenticate each disc
# after burning: it never holds the recipient's secret key.
step "data office: a key of its own, to check discs with"
run 'kuvert keygen -o office.key'
run 'kuvert keygen -y office.key > office.pub'

# A signing key, so that the recipient (or a courier, without any key) can
# tell who sealed the parcel; its public part goes to the recipient.
step "data office: a signing key, to prove who sealed the parcel"
run 'kuvert keygen --sign -o office.sign'
run 'kuvert keygen -y office.sign > office.sign.pub'

step "data office: the extract (synthetic, $(grouped "$records") people)"
run "parcel --extract-to extract --records $records"
extract_files=(extract/README.txt extract/register/*.csv)
extract_bytes=$(bytes "${extract_files[@]}")

step "data office: seal and sign onto $volume_size volumes"
mkdir parcel
run "kuvert seal -R recipient.pub -R office.pub --sign office.sign --volume-size $(printf %q "$volume_size") -o parcel/register.kuv extract/*"
seal_took=$took
volumes=(parcel/*.kuv)
volume_count=${#volumes[@]}
sealed_bytes=$(bytes "${volumes[@]}")
run 'kuvert info parcel/*.kuv'

step "data office: check each volume alone, as after burning it on its own disc"
verify_alone_took=0
for volume in "${volumes[@]}"; do
    run "kuvert verify --allow-incomplete -i office.key $volume"
    verify_alone_took=$(awk -v a="$verify_alone_took" -v b="$took" 'BEGIN { printf "%.3f", a + b }')
done

# The discs arrive in any order.
if command -v shuf >/dev/null; then
    shuffled=$(printf '%s\n' "${volumes[@]}" | shuf | tr '\n' ' ')
else
    shuffled=$(printf '%s\n' "${volumes[@]}" | sort -r | tr '\n' ' ')
fi
reversed=$(printf '%s\n' "${volumes[@]}" | sort -r | tr '\n' ' ')

step "recipient: verify the whole set (discs in shuffled order)"
run "kuvert verify -i recipient.key ${shuffled% }"
verify_took=$took

# Anyone with the office's public signing key can check this, with no
# decryption key: every signature and every chunk digest.
step "recipient: who sealed it, checked without any key"
run "kuvert verify --signer office.sign.pub ${shuffled% }"
signed_took=$took

step "recipient: list, extract one entry, open everything"
run "kuvert list --long -i recipient.key ${shuffled% }"
list_took=$took
run "kuvert open -i recipient.key --entry README.txt -o small/ ${shuffled% }"
small_took=$took
run 'cmp extract/README.txt small/README.txt'
run "kuvert open -i recipient.key --entry register/persons.csv -o one/ ${shuffled% }"
entry_took=$took
entry_bytes=$(bytes extract/register/persons.csv)
run 'cmp extract/register/persons.csv one/register/persons.csv'
run "kuvert open -i recipient.key --signer office.sign.pub -o received/ ${reversed% }"
open_took=$took
run 'diff -rq extract received'
# Without -o, an archive goes into a new directory named after the set.
run "kuvert open -i recipient.key ${shuffled% }"
run 'diff -rq extract register'

step "summary"
printf '%-30s %s bytes in %s files\n' "extract" "$(grouped "$extract_bytes")" "${#extract_files[@]}"
printf '%-30s %s bytes in %s volume(s) of at most %s (%s%% overhead)\n' "sealed" \
    "$(grouped "$sealed_bytes")" "$volume_count" "$volume_size" \
    "$(percent "$((sealed_bytes - extract_bytes))" "$extract_bytes" 2)"
for volume in "${volumes[@]}"; do
    printf '  %-28s %s bytes\n' "$volume" "$(grouped "$(bytes "$volume")")"
done
printf '%-30s %7s s  %5s MB/s of extract\n' "seal" "$seal_took" "$(mbps "$extract_bytes" "$seal_took")"
printf '%-30s %7s s  %5s MB/s of volumes\n' "verify each volume alone" "$verify_alone_took" \
    "$(mbps "$sealed_bytes" "$verify_alone_took")"
printf '%-30s %7s s  %5s MB/s of volumes\n' "verify the set" "$verify_took" \
    "$(mbps "$sealed_bytes" "$verify_took")"
printf '%-30s %7s s  %5s MB/s of volumes\n' "verify the signature, no key" "$signed_took" \
    "$(mbps "$sealed_bytes" "$signed_took")"
printf '%-30s %7s s  %5s MB/s of extract\n' "open everything (--signer)" "$open_took" "$(mbps "$extract_bytes" "$open_took")"
printf '%-30s %7s s  %5s%% of opening everything\n' "list --long" "$list_took" \
    "$(percent "$list_took" "$open_took")"
printf '%-30s %7s s  %5s%% of opening everything\n' "open --entry README.txt" "$small_took" \
    "$(percent "$small_took" "$open_took")"
printf '%-30s %7s s  %5s%% of opening everything (the entry is %s%% of the extract)\n' \
    "open --entry persons.csv" "$entry_took" "$(percent "$entry_took" "$open_took")" \
    "$(percent "$entry_bytes" "$extract_bytes")"
printf '%-30s %7s s  (build %s s)\n' "total" "$(seconds "$started" "$(now)")" "$build_took"
if ((volume_count < 2)); then
    echo "note: the set fits one volume; a smaller --volume-size makes several"
fi
echo "OK"
