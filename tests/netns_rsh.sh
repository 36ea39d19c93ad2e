#!/bin/bash
# rsh/ssh stand-in for OpenMPI's plm_rsh: "netns_rsh.sh [opts] HOST CMD..."
# runs CMD inside the network namespace that owns HOST.  HOST -> namespace
# comes from LL_NETNS_MAP="IP=NS IP=NS ..." (exported by mpi_two_hosts.sh;
# mpirun passes its own environment to the agent).
set -euo pipefail

# OpenMPI 4.1 passes no options to a non-ssh agent (only plm_rsh_args if
# set), but accept ssh-style ones so "ssh -x"-like invocations still work.
while [ $# -gt 0 ]; do
    case $1 in
        -[oplieFJ]) shift 2 ;;           # ssh options that take a value
        -*) shift ;;                     # -x -T -n -q ...: meaningless here
        *) break ;;
    esac
done
[ $# -ge 2 ] || { echo "netns_rsh.sh: usage: netns_rsh.sh [opts] HOST CMD..." >&2; exit 255; }
host=${1#*@}                             # drop a "user@" as ssh would
shift

ns=
for pair in ${LL_NETNS_MAP:-}; do
    [ "${pair%%=*}" = "$host" ] && ns=${pair#*=}
done
[ -n "$ns" ] || { echo "netns_rsh.sh: no namespace for host '$host' in LL_NETNS_MAP='${LL_NETNS_MAP:-}'" >&2; exit 255; }

# ssh joins its arguments with spaces and hands the string to the remote
# shell; OpenMPI relies on that (it sends words like ' orted' and '"env"'
# that only make sense after shell parsing), so do the same.  The env is
# cleaned like an ssh login's so that what the ranks need must be forwarded
# with mpirun -x, as on a real cluster; PATH is kept so that the same
# OpenMPI install (orted) is found.  255 = ssh's "could not connect" status.
exec ip netns exec "$ns" env -i PATH="$PATH" HOME="${HOME:-/}" \
    USER="${USER:-$(id -un)}" LOGNAME="${LOGNAME:-$(id -un)}" SHELL=/bin/sh \
    /bin/sh -c "$*"
