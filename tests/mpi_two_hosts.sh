#!/bin/bash
# mpi_two_hosts.sh NP COMMAND [ARGS...]
#
# Runs "mpirun -np NP COMMAND ARGS" across two simulated hosts: two fresh
# network namespaces joined by a veth pair, NP/2 ranks on each, OpenMPI's
# TCP transport between them and tests/netns_rsh.sh as the "ssh" that
# starts the remote orted.  Exit status: mpirun's; 77 (skip) if network
# namespaces cannot be created or mpirun is missing; 2 on bad usage.
# stdout is the job's stdout only; everything of our own goes to stderr.
#
# Environment:
#   LL_MPI_FORWARD="VAR1 VAR2 ..."  extra variables forwarded to all ranks
#                                   (-x); OMP_NUM_THREADS always is, if set.
#   LL_MPI_ARGS="..."               extra mpirun options (word-split).
#
# The remote side (namespace B) gets an ssh-like clean environment (see
# netns_rsh.sh), so a variable the ranks need but nobody forwards breaks
# here as it would on a real cluster, instead of leaking through.
set -euo pipefail

die() { echo "mpi_two_hosts.sh: $*" >&2; exit "${rc:-2}"; }
[ $# -ge 2 ] || die "usage: mpi_two_hosts.sh NP COMMAND [ARGS...]"
np=$1; shift
if ! [[ $np =~ ^[0-9]+$ ]] || [ "$np" -lt 2 ] || [ $((np % 2)) -ne 0 ]; then
    die "NP must be an even number >= 2 (got '$np')"
fi
command -v mpirun >/dev/null || rc=77 die "mpirun not found; skipping"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nsA=llA-$$ nsB=llB-$$
# The addresses exist only inside this run's private namespaces, so fixed
# ones cannot collide with the host or with concurrent runs; likewise the
# veth ends are created directly inside the namespaces, never in the
# shared root namespace where names would clash.
ipA=10.213.0.1 ipB=10.213.0.2 net=10.213.0.0/24
mpirun_pid=
made=()                                  # only ever delete what we created
tmp=

# shellcheck disable=SC2317  # reached only through the traps
cleanup() {
    local status=$? ns pids
    trap - EXIT INT TERM HUP
    # mpirun tears the job down on SIGTERM; a watchdog bounds the wait
    # (polling with kill -0 would not do: it succeeds on the unreaped
    # zombie).  Then kill whatever is left in our namespaces (orted
    # daemonizes, and only our processes can be in there).
    if [ -n "$mpirun_pid" ]; then
        kill -TERM "$mpirun_pid" 2>/dev/null || true
        sleep 5 >/dev/null 2>&1 &
        wait -n "$mpirun_pid" "$!" 2>/dev/null || true   # whichever ends first
        kill -KILL "$mpirun_pid" "$!" 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    for ns in "${made[@]}"; do
        # SIGKILL is not instant for a multi-threaded mpirun/orted: repeat
        # until the namespace is empty (dead and zombie ones are not listed).
        for _ in $(seq 50); do
            pids=$(ip netns pids "$ns" 2>/dev/null) || break
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086  # one pid per word
            kill -KILL $pids 2>/dev/null || true
            sleep 0.1
        done
        ip netns delete "$ns" 2>/dev/null ||
            echo "mpi_two_hosts.sh: could not delete netns $ns" >&2
    done                                 # deleting a namespace drops its veth end
    [ -z "$tmp" ] || rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
# Exit through cleanup with the conventional 128+signal status.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

if ! err=$(ip netns add "$nsA" 2>&1); then
    rc=77 die "cannot create a network namespace (${err:-ip netns add failed}); need root/CAP_SYS_ADMIN; skipping"
fi
made+=("$nsA")
ip netns add "$nsB" >&2
made+=("$nsB")
{
    ip link add vA netns "$nsA" type veth peer name vB netns "$nsB"
    ip -n "$nsA" addr add "$ipA/24" dev vA
    ip -n "$nsB" addr add "$ipB/24" dev vB
    for ns in "$nsA" "$nsB"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$nsA" link set vA up
    ip -n "$nsB" link set vB up
} >&2

# A private ORTE/PMIx session-dir base: a killed job otherwise leaves
# /tmp/ompi.HOST.UID/pid.N behind, and concurrent runs share that tree.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ll-mpi2h.XXXXXX")

export LL_NETNS_MAP="$ipA=$nsA $ipB=$nsB"   # read by netns_rsh.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

fwd=()
for v in OMP_NUM_THREADS ${LL_MPI_FORWARD:-}; do
    # -x of an unset name makes mpirun fail, so forward only what is set.
    if [[ $v == *=* ]] || [ -n "${!v+x}" ]; then fwd+=(-x "$v"); fi
done
read -r -a extra <<<"${LL_MPI_ARGS:-}"

# Why each option:
#  --host A:n,B:n        IPs, not names: both namespaces share one hostname
#                        and /etc/hosts, so names cannot tell them apart.
#                        mpirun (in A) sees ipA on its own interface and
#                        runs those ranks itself; ipB goes through the agent.
#  plm_rsh_agent         our netns-entering "ssh".
#  plm_rsh_no_tree_spawn the remote orted must not try to spawn further.
#  pml ob1               otherwise pml ucx (built in) can win and ignore btl.
#  btl tcp,self          vader excluded on purpose: even same-host ranks
#                        talk TCP, so the run exercises one transport only.
#  *_if_include          keep OOB (orted -> mpirun wire-up) and BTL traffic
#                        on the veth subnet; lo is not routable across hosts.
#  orte_tmpdir_base      see $tmp above; orted gets it on its command line.
#  --bind-to none        2 cores, 2+ ranks per "host": binding only hurts.
#  --oversubscribe       NP/2 slots per host may exceed the real cores.
hosts="$ipA:$((np / 2)),$ipB:$((np / 2))"
cmd=(mpirun --allow-run-as-root -np "$np" --host "$hosts"
     --oversubscribe --bind-to none
     --mca plm_rsh_agent "$here/netns_rsh.sh"
     --mca plm_rsh_no_tree_spawn 1 --mca orte_tmpdir_base "$tmp"
     --mca pml ob1 --mca btl "tcp,self"
     --mca btl_tcp_if_include "$net" --mca oob_tcp_if_include "$net"
     "${fwd[@]}" "${extra[@]}" "$@")

# Background + wait so a signal to this script runs the trap at once
# instead of after mpirun exits; "<&0" keeps stdin (a background job would
# otherwise get /dev/null).
ip netns exec "$nsA" "${cmd[@]}" <&0 &
mpirun_pid=$!
status=0
wait "$mpirun_pid" || status=$?
mpirun_pid=
exit "$status"
