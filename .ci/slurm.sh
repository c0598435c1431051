#!/usr/bin/env bash
# A throw-away single-node Slurm cluster for CI and for tests/test_slurm.py.
#
#   .ci/slurm.sh install   apt-get the Slurm + munge packages, pip-install the
#                          Snakemake slurm executor plugin into $VENV (default .venv)
#   .ci/slurm.sh up        write the config under $SPRINGBACK_SLURM_DIR (default
#                          /tmp/springback-slurm), start munged, slurmctld, slurmd and
#                          wait until the node is idle and `srun true` works
#   .ci/slurm.sh down      scancel every job, stop the daemons (by PID file only)
#   .ci/slurm.sh status    one line per daemon, plus scontrol ping / sinfo
#   .ci/slurm.sh env       print `export SLURM_CONF=...` (use: eval "$(.ci/slurm.sh env)")
#
# The configuration does NOT live in /etc/slurm but in $SPRINGBACK_SLURM_DIR/etc;
# `up` links /run/slurm/conf to it, the path Slurm clients (sbatch, squeue, srun,
# scancel -- and so Snakemake's slurm executor) fall back to when SLURM_CONF is
# unset and /etc/slurm/slurm.conf does not exist.  `up` and `down` are idempotent.
# Needs root (daemons run as root, munged as user munge).  Facts behind the settings:
# /work/shared/notes/slurm-local.md.
set -euo pipefail

STATE_DIR=${SPRINGBACK_SLURM_DIR:-/tmp/springback-slurm}
ETC_DIR=$STATE_DIR/etc
LOG_DIR=$STATE_DIR/log
RUN_DIR=$STATE_DIR/run
export SLURM_CONF=$ETC_DIR/slurm.conf
VENV=${VENV:-.venv}
UP_TIMEOUT=${SPRINGBACK_SLURM_TIMEOUT:-60}      # seconds for each readiness wait
RUN_CONF=/run/slurm/conf   # Slurm clients' fallback when SLURM_CONF is unset and /etc/slurm/slurm.conf absent
MUNGE_SOCKET=/run/munge/munge.socket.2
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid

log() { printf '[slurm.sh] %s\n' "$*"; }
die() { printf '[slurm.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# proc_state PID NAME -> "running", "zombie" or "stopped" (gone, or PID reused by another program)
proc_state() {
    local pid=$1 name=$2 comm state
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [[ -n $pid && $comm == "$name" ]] || { echo stopped; return; }
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo X)
    if [[ $state == Z || $state == X ]]; then echo zombie; else echo running; fi
}
# pid_state PIDFILE NAME -> "running <pid>", "zombie <pid>" or "stopped"
pid_state() {
    local pidfile=$1 name=$2 pid st
    pid=$(tr -dc '0-9' 2>/dev/null <"$pidfile" || true)
    [[ -n $pid ]] || { echo stopped; return; }
    st=$(proc_state "$pid" "$name")
    if [[ $st == stopped ]]; then echo stopped; else echo "$st $pid"; fi
}
is_running() { [[ $(pid_state "$1" "$2") == running* ]]; }

# stop_daemon PIDFILE NAME: TERM, wait up to 15 s, then KILL; a zombie counts as stopped.
stop_daemon() {
    local pidfile=$1 name=$2 st pid i
    st=$(pid_state "$pidfile" "$name")
    case $st in
        stopped) log "$name: not running"; rm -f "$pidfile"; return ;;
        zombie*) log "$name: zombie (pid ${st#zombie }), counted as stopped"; rm -f "$pidfile"; return ;;
    esac
    pid=${st#running }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        [[ $(proc_state "$pid" "$name") == running ]] || break
        sleep 0.1
    done
    if [[ $(proc_state "$pid" "$name") == running ]]; then
        log "$name: still alive after 15 s, sending KILL to $pid"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "$name: stopped (pid $pid, $(proc_state "$pid" "$name") now)"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start < limit)) || return 1
        sleep 0.5
    done
    log "$what after $((SECONDS - start)) s"
}

node_name() { hostname -s; }
ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state() { sinfo -h -n "$(node_name)" -o %T 2>/dev/null; }
node_idle() { [[ $(node_state) == idle ]]; }
node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
# without SLURM_CONF, as srun runs inside a Snakemake job (checks the /run/slurm/conf link too)
srun_ok() { timeout 30 env -u SLURM_CONF srun --quiet -N1 -n1 -t 1 true; }

cmd_install() {
    local need=()
    for p in slurmctld slurmd slurm-client munge; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
    done
    if ((${#need[@]})); then
        [[ $(id -u) == 0 ]] || die "apt-get needs root (missing: ${need[*]})"
        log "apt-get install ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # Keep the packages' init scripts from starting daemons with the default
        # /etc config (no systemd here; we start them ourselves in `up`).
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        fi
        apt-get install -y -q "${need[@]}" >"/tmp/springback-slurm-apt.log" 2>&1 || {
            log "apt-get install failed; trying apt-get update first"
            apt-get update -q >>"/tmp/springback-slurm-apt.log" 2>&1
            apt-get install -y -q "${need[@]}" >>"/tmp/springback-slurm-apt.log" 2>&1 ||
                die "apt-get failed, see /tmp/springback-slurm-apt.log"
        }
        log "packages installed ($(dpkg-query -W -f='${Version}' slurmctld))"
    else
        log "packages present: slurm $(dpkg-query -W -f='${Version}' slurmctld), munge $(dpkg-query -W -f='${Version}' munge)"
    fi
    [[ -x $VENV/bin/python ]] || die "no venv at $VENV (set VENV=...)"
    ver() { "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("snakemake-executor-plugin-slurm"))' 2>/dev/null; }
    if ver >/dev/null; then
        log "snakemake-executor-plugin-slurm present in $VENV ($(ver))"
    else
        log "pip install snakemake-executor-plugin-slurm into $VENV"
        "$VENV/bin/python" -m pip install -q snakemake-executor-plugin-slurm >/tmp/springback-slurm-pip.log 2>&1 ||
            die "pip install snakemake-executor-plugin-slurm failed, see /tmp/springback-slurm-pip.log"
        log "plugin installed ($(ver))"
    fi
}

write_config() {
    local node mem cpus_line host
    host=$(node_name)
    mkdir -p "$ETC_DIR" "$LOG_DIR" "$RUN_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d"
    # Node line from slurmd -C, RealMemory lowered by 2 GB (too high -> node INVAL).
    cpus_line=$(slurmd -C | head -n1)
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$cpus_line")
    ((mem > 3072)) && mem=$((mem - 2048)) || mem=$((mem / 2))
    # shellcheck disable=SC2001
    node=$(sed "s/RealMemory=[0-9]*/RealMemory=$mem/" <<<"$cpus_line")
    cat >"$ETC_DIR/slurm.conf.new" <<EOF
# Written by .ci/slurm.sh -- a throw-away single-node test cluster.
ClusterName=springback
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmdTimeout=60
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
$node NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=springback Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$ETC_DIR/gres.conf.new" <<EOF
# Fake GPU: lets 'gpu: 1' rules schedule; jobs see CUDA_VISIBLE_DEVICES=0.
NodeName=$host Name=gpu File=/dev/null Count=1
EOF
    cat >"$ETC_DIR/cgroup.conf.new" <<EOF
# No cgroup enforcement (proctrack/linuxproc, task/none); kept for slurmd's sake.
CgroupPlugin=autodetect
IgnoreSystemd=yes
ConstrainCores=no
ConstrainRAMSpace=no
ConstrainDevices=no
EOF
    local f
    CONFIG_CHANGED=0
    for f in slurm.conf gres.conf cgroup.conf; do
        if ! cmp -s "$ETC_DIR/$f.new" "$ETC_DIR/$f"; then
            CONFIG_CHANGED=1
            mv "$ETC_DIR/$f.new" "$ETC_DIR/$f"
        else
            rm -f "$ETC_DIR/$f.new"
        fi
    done
    if ((CONFIG_CHANGED)); then log "config written to $ETC_DIR ($node)"; fi
}

# The Snakemake jobstep plugin strips SLURM_* (SLURM_CONF included) from the
# environment of the `srun` it runs inside each job, so SLURM_CONF alone is not
# enough: point Slurm's client fallback path /run/slurm/conf at our config dir.
link_conf() {
    if [[ -L $RUN_CONF && $(readlink "$RUN_CONF") == "$ETC_DIR" ]]; then
        :
    elif [[ -e $RUN_CONF || -L $RUN_CONF ]]; then
        die "$RUN_CONF exists and is not ours ($(readlink "$RUN_CONF" || echo 'not a link')); refusing to replace it"
    else
        mkdir -p "$(dirname "$RUN_CONF")"
        ln -s "$ETC_DIR" "$RUN_CONF"
        log "linked $RUN_CONF -> $ETC_DIR (clients work without SLURM_CONF)"
    fi
    if [[ -e /etc/slurm/slurm.conf ]]; then
        log "WARNING: /etc/slurm/slurm.conf exists; clients without SLURM_CONF (srun inside jobs) will use it, not $SLURM_CONF"
    fi
}

start_munge() {
    if is_running "$MUNGE_PID" munged; then log "munged: already running"; return; fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        log "munge key created"
    fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    runuser -u munge -- munged --pid-file="$MUNGE_PID" </dev/null >>"$LOG_DIR/munged.out" 2>&1 ||
        die "munged failed to start, see $LOG_DIR/munged.out /var/log/munge/munged.log"
    touch "$STATE_DIR/munged.ours"
    wait_for 10 "munged: up" bash -c "munge -n </dev/null | unmunge" || die "munged not answering"
}

start_ctld() {
    if is_running "$CTLD_PID" slurmctld; then log "slurmctld: already running"; return; fi
    slurmctld -f "$SLURM_CONF" </dev/null >>"$LOG_DIR/slurmctld.out" 2>&1 ||
        die "slurmctld failed to start, see $LOG_DIR/slurmctld.log"
    wait_for "$UP_TIMEOUT" "slurmctld: scontrol ping UP" ctld_up ||
        die "slurmctld not UP after ${UP_TIMEOUT}s, see $LOG_DIR/slurmctld.log"
}

start_slurmd() {
    if is_running "$SLURMD_PID" slurmd; then log "slurmd: already running"; return; fi
    slurmd -f "$SLURM_CONF" </dev/null >>"$LOG_DIR/slurmd.out" 2>&1 ||
        die "slurmd failed to start, see $LOG_DIR/slurmd.log"
    log "slurmd: started"
}

cmd_up() {
    [[ $(id -u) == 0 ]] || die "up needs root"
    command -v slurmctld >/dev/null || die "Slurm not installed: run '$0 install' first"
    local t0=$SECONDS host
    host=$(node_name)
    write_config
    link_conf
    if is_running "$MUNGE_PID" munged && is_running "$CTLD_PID" slurmctld &&
        is_running "$SLURMD_PID" slurmd && ctld_up && node_usable; then
        if ((!CONFIG_CHANGED)); then
            log "already up (node $host $(node_state)); nothing to do"
            return
        fi
        log "config changed while up: restarting slurmctld and slurmd"
        stop_daemon "$SLURMD_PID" slurmd
        stop_daemon "$CTLD_PID" slurmctld
    fi
    start_munge
    start_ctld
    start_slurmd
    if ! wait_for "$UP_TIMEOUT" "node $host: idle" node_idle; then
        log "node $host is '$(sinfo -h -n "$host" -o %T)'; trying state=resume"
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        wait_for 15 "node $host: idle" node_idle ||
            die "node $host not idle: $(sinfo -h -n "$host" -o '%T %E'); see $LOG_DIR/"
    fi
    wait_for "$UP_TIMEOUT" "srun true: ok" srun_ok || die "srun true failed; see $LOG_DIR/"
    log "cluster up in $((SECONDS - t0)) s (config: $SLURM_CONF)"
}

cmd_down() {
    local t0=$SECONDS jobs
    if [[ -f $SLURM_CONF ]] && is_running "$CTLD_PID" slurmctld; then
        jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            log "scancel: $jobs"
            # shellcheck disable=SC2016
            wait_for 30 "queue: empty" bash -c '[[ -z $(squeue -h -t R,PD,CG -o %A) ]]' ||
                log "queue: jobs still listed after 30 s: $(squeue -h -o '%A %T' | tr '\n' ' ')"
        else
            log "queue: no jobs"
        fi
    else
        log "slurmctld not running; no jobs to cancel"
    fi
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    if [[ -f $STATE_DIR/munged.ours ]]; then
        stop_daemon "$MUNGE_PID" munged
        rm -f "$STATE_DIR/munged.ours"
    else
        log "munged: not started by this script; left alone"
    fi
    if [[ -L $RUN_CONF && $(readlink "$RUN_CONF") == "$ETC_DIR" ]]; then
        rm -f "$RUN_CONF"
        log "removed $RUN_CONF"
    fi
    log "cluster down in $((SECONDS - t0)) s"
}

cmd_status() {
    local rc=0 d st
    for d in "munged:$MUNGE_PID" "slurmctld:$CTLD_PID" "slurmd:$SLURMD_PID"; do
        st=$(pid_state "${d#*:}" "${d%%:*}")
        log "${d%%:*}: $st"
        [[ $st == running* ]] || rc=1
    done
    if [[ -f $SLURM_CONF ]] && ((rc == 0)); then
        log "scontrol ping: $(scontrol ping 2>&1 | tr '\n' ' ')"
        log "sinfo: $(sinfo -h -o '%N %T %G' 2>&1 | tr '\n' ' ')"
        log "squeue: $(squeue -h 2>&1 | wc -l) job(s)"
    fi
    log "SLURM_CONF=$SLURM_CONF"
    return $rc
}

case ${1:-} in
    install) cmd_install ;;
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 {install|up|down|status|env}" >&2; exit 2 ;;
esac
