# Sourced by benches/compare.sh and benches/backends.sh: other work on the
# machine skews every number, so each round waits for the machine to be idle
# and notes how busy it was. Needs `say`, BUSY_MAX and WAIT_IDLE.

# Share of CPU time (all cores) not idle over 0.5 s, in percent.
busy() {
    local a b
    a=($(head -1 /proc/stat)); sleep 0.5; b=($(head -1 /proc/stat))
    awk -v u1="$((a[1] + a[2] + a[3] + a[6] + a[7] + a[8]))" -v i1="$((a[4] + a[5]))" \
        -v u2="$((b[1] + b[2] + b[3] + b[6] + b[7] + b[8]))" -v i2="$((b[4] + b[5]))" \
        'BEGIN {d = (u2 - u1) + (i2 - i1); printf "%.0f", d ? 100 * (u2 - u1) / d : 0}'
}

# Waits (up to WAIT_IDLE s) while more than BUSY_MAX % of the CPU is used,
# then prints the share last seen.
wait_idle() {
    local waited=0 b
    while b=$(busy); ((b > BUSY_MAX && waited < WAIT_IDLE)); do
        ((waited == 0)) && say "machine busy ($b% CPU used by others): waiting up to ${WAIT_IDLE}s"
        sleep 2; waited=$((waited + 3))
    done
    echo "$b"
}
