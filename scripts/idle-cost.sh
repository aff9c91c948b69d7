#!/usr/bin/env bash
# What the cwpub daemon costs while it waits (docs/benchmarks.md, "CPU while idle and per heartbeat"):
#
#  1. idle: CPU time and context switches over all threads during 30 s in
#     which no run is due (the quickstart's two jobs, made hourly);
#  2. idle RSS of the quickstart itself (warm compiled-guest cache), 35 s
#     after start;
#  3. CPU per heartbeat at `@every 1m` against moto, idle time included,
#     beside the CPU of one fresh `aws logs put-log-events` process against
#     the same moto, measured in the same run.
#
# CPU comes from /proc/<pid>/task/*/schedstat (nanoseconds on CPU, per
# thread) and /proc/<pid>/stat (utime+stime, clock ticks, exited threads
# included); context switches from the voluntary and nonvoluntary counters
# in /proc/<pid>/task/*/status. awscli and moto are installed in this
# script's own venv (target/idle-cost/venv). Takes about 7 minutes.
#
# Usage: scripts/idle-cost.sh            (builds target/release/cwpub if missing)
#        CWPUB_BIN=path/to/cwpub scripts/idle-cost.sh
#        HEARTBEATS=5 scripts/idle-cost.sh   (minutes measured in step 3; default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != Linux ]; then
  echo "idle-cost.sh reads /proc: Linux only" >&2
  exit 1
fi

BIN=${CWPUB_BIN:-target/release/cwpub}
if [ ! -x "$BIN" ]; then
  echo "==> building the release binary"
  cargo build --release -p cwpub
fi

VENV=target/idle-cost/venv
if [ ! -x "$VENV/bin/aws" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  echo "==> installing awscli and moto[server] into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check awscli 'moto[server]>=5,<6'
fi

echo "==> load before: $(uptime)"
CWPUB_BIN="$BIN" VENV="$VENV" HEARTBEATS="${HEARTBEATS:-3}" python3 - <<'PY'
import glob, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request

BIN = os.path.abspath(os.environ["CWPUB_BIN"])
VENV = os.path.abspath(os.environ["VENV"])
HEARTBEATS = int(os.environ["HEARTBEATS"])
WORK = tempfile.mkdtemp(prefix="cwpub-idle-")
CACHE = os.path.join(WORK, "cache")
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
QUICKSTART = open("examples/quickstart.toml").read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def threads(pid):
    """{tid: (name, cpu_ns, voluntary, nonvoluntary)} for every live thread."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{task}/comm").read().strip()
            cpu = int(open(f"{task}/schedstat").read().split()[0])
            status = open(f"{task}/status").read()
        except OSError:
            continue  # the thread exited meanwhile
        vol = int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        nonvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        out[int(os.path.basename(task))] = (name, cpu, vol, nonvol)
    return out


def process_ticks_ns(pid):
    """utime + stime of the whole process (exited threads included), in ns."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_NS


def watch(pid, seconds):
    """CPU ns and context switches of all threads over `seconds`, read every
    0.2 s so that threads exiting meanwhile still count (reading /proc does
    not wake the daemon)."""
    first = threads(pid)
    ticks0 = process_ticks_ns(pid)
    seen = dict(first)
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(0.2)
        seen.update(threads(pid))
    ticks1 = process_ticks_ns(pid)
    last = threads(pid)
    seen.update(last)
    cpu = switches = 0
    rows = []
    for tid, (name, c1, v1, n1) in seen.items():
        c0, v0, n0 = first.get(tid, (name, 0, 0, 0))[1:]
        d_cpu, d_sw = c1 - c0, (v1 - v0) + (n1 - n0)
        cpu += d_cpu
        switches += d_sw
        if d_sw:
            rows.append(f"{name}({tid}): {d_sw} switches, {d_cpu / 1e6:.3f} ms")
    return {
        "cpu_ms": round(cpu / 1e6, 3),
        "ticks_ms": round((ticks1 - ticks0) / 1e6),
        "switches": switches,
        "seconds": round(time.monotonic() - start, 1),
        "busy_threads": rows,
        "threads": len(last),
        "names": sorted({name for name, *_ in last.values()}),
    }


def rss(pid):
    status = open(f"/proc/{pid}/status").read()
    get = lambda key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024
    return {k: round(get(k), 1) for k in ("VmRSS", "RssAnon", "RssFile")}


class Daemon:
    """`cwpub run <config>`, stdout lines collected in a file."""

    def __init__(self, name, config, env=None):
        self.path = os.path.join(WORK, f"{name}.toml")
        open(self.path, "w").write(config)
        self.out = open(os.path.join(WORK, f"{name}.out"), "w+")
        self.err = open(os.path.join(WORK, f"{name}.err"), "w+")
        environment = dict(os.environ, CWPUB_CACHE_DIR=CACHE, **(env or {}))
        for var in ("RUST_LOG", "CWPUB_SINK_KIND", "CWPUB_OBSERVE_LISTEN", "CWPUB_OBSERVE_ENABLED"):
            environment.pop(var, None)
        environment["CWPUB_OBSERVE_LISTEN"] = "127.0.0.1:0"
        self.proc = subprocess.Popen([BIN, "run", self.path], stdout=self.out, stderr=self.err, env=environment)
        self.pid = self.proc.pid

    def lines(self):
        self.out.flush()
        return open(self.out.name).read().splitlines()

    def wait_for_lines(self, n, timeout=120):
        end = time.time() + timeout
        while len(self.lines()) < n:
            if self.proc.poll() is not None or time.time() > end:
                sys.exit(f"cwpub did not print {n} events; stderr:\n{open(self.err.name).read()}")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def hourly(config):
    return config.replace('schedule = "@every 10s"', 'schedule = "@every 1h"')


results = {}

# Warm the compiled-guest cache, as any restart of a long-running daemon finds it.
d = Daemon("warm", QUICKSTART)
d.wait_for_lines(2)
d.stop()

# 1. Idle: both jobs run at start, then nothing is due for an hour.
d = Daemon("idle", hourly(QUICKSTART))
d.wait_for_lines(2)
time.sleep(15)  # past start-up work (tokio's idle blocking threads exit after 10 s)
results["idle_30s"] = watch(d.pid, 30)
d.stop()
print("idle:", json.dumps(results["idle_30s"]), flush=True)

# 2. Idle RSS of the quickstart (jobs every 10 s), 35 s after start.
d = Daemon("rss", QUICKSTART)
d.wait_for_lines(2)
time.sleep(35)
results["quickstart_rss_mib"] = rss(d.pid)
d.stop()
print("rss:", json.dumps(results["quickstart_rss_mib"]), flush=True)

# 3. CPU per heartbeat at @every 1m against moto, idle included, beside a
#    fresh `aws logs put-log-events` per event.
port = free_port()
endpoint = f"http://127.0.0.1:{port}"
moto = subprocess.Popen([f"{VENV}/bin/moto_server", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
aws_env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
               AWS_PAGER="")
for _ in range(100):
    try:
        urllib.request.urlopen(endpoint, timeout=1)
        break
    except Exception as e:
        if getattr(e, "code", None):
            break
        time.sleep(0.1)
config = f'''
[sink]
kind = "cloudwatch"
region = "us-east-1"
endpoint_url = "{endpoint}"

[observe]
enabled = true
listen = "127.0.0.1:0"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "@every 1m"
run_at_start = true
log_group = "/cwpub/idle-cost"
log_stream = "heartbeat"
'''
d = Daemon("heartbeat", config, env=dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                                         AWS_EC2_METADATA_DISABLED="true"))
# Beside it, the same heartbeat to the stdout sink: what a heartbeat costs
# without delivery (schedule, guest run, validation).
stdout_config = config.replace('kind = "cloudwatch"', 'kind = "stdout"').replace(
    'region = "us-east-1"\n', "").replace(f'endpoint_url = "{endpoint}"\n', "")
d_stdout = Daemon("heartbeat-stdout", stdout_config)
# The run at start creates the group and stream; measure whole minutes after
# it, from half past one minute to half past another: one heartbeat each.
now = time.time()
start = (now // 60 + 1) * 60 + 30
if start - now < 20:
    start += 60
time.sleep(start - time.time())
windows = {}
stdout_watch = threading.Thread(target=lambda: windows.update(stdout=watch(d_stdout.pid, HEARTBEATS * 60)))
stdout_watch.start()
results["heartbeat_window"] = watch(d.pid, HEARTBEATS * 60)
stdout_watch.join()
results["heartbeat_stdout_window"] = windows["stdout"]
d.stop()
d_stdout.stop()
print("heartbeat window:", json.dumps(results["heartbeat_window"]), flush=True)
got = subprocess.run([f"{VENV}/bin/aws", "--endpoint-url", endpoint, "logs", "get-log-events",
                      "--log-group-name", "/cwpub/idle-cost", "--log-stream-name", "heartbeat"],
                     env=aws_env, capture_output=True, text=True, check=True)
delivered = len(json.loads(got.stdout)["events"])
results["heartbeats_delivered"] = delivered
per_heartbeat_ms = results["heartbeat_window"]["cpu_ms"] / HEARTBEATS

aws = []
for i in range(5):
    before = os.times()
    put = subprocess.run([f"{VENV}/bin/aws", "--endpoint-url", endpoint, "logs", "put-log-events",
                    "--log-group-name", "/cwpub/idle-cost", "--log-stream-name", "heartbeat",
                    "--log-events", json.dumps([{"timestamp": int(time.time() * 1000),
                                                 "message": json.dumps({"aws": i})}])],
                   env=aws_env, capture_output=True, text=True)
    if put.returncode != 0:
        sys.exit(f"aws logs put-log-events failed: {put.stderr}")
    after = os.times()
    aws.append(((after.children_user - before.children_user) + (after.children_system - before.children_system)) * 1000)
moto.terminate()
moto.wait()

results["aws_put_log_events_cpu_ms"] = {"median": round(statistics.median(aws), 1),
                                        "min": round(min(aws), 1), "max": round(max(aws), 1)}
results["cwpub_cpu_per_heartbeat_ms"] = round(per_heartbeat_ms, 3)
results["ratio"] = round(statistics.median(aws) / per_heartbeat_ms) if per_heartbeat_ms else None

idle = results["idle_30s"]
hb = results["heartbeat_window"]
print(f"""
idle, 30 s with no run due (quickstart jobs made hourly; {idle['threads']} threads: {', '.join(idle['names'])}):
  CPU {idle['cpu_ms']:.3f} ms (schedstat), {idle['ticks_ms']:.0f} ms (utime+stime ticks)   target <= 10 ms
  context switches {idle['switches']} over all threads                    target <= 60
  threads that switched: {', '.join(idle['busy_threads']) or 'none'}
quickstart idle RSS (warm cache, 35 s after start): {results['quickstart_rss_mib']} MiB   target VmRSS <= 16 MiB
heartbeat @every 1m against moto, {HEARTBEATS} min window, idle included ({results['heartbeats_delivered']} events delivered in all):
  cwpub CPU {hb['cpu_ms']:.3f} ms (schedstat) / {hb['ticks_ms']:.0f} ms (ticks), {hb['switches']} switches
  = {per_heartbeat_ms:.3f} ms CPU per heartbeat
  the same heartbeat to the stdout sink (no delivery), same window: {results['heartbeat_stdout_window']['cpu_ms'] / HEARTBEATS:.3f} ms per heartbeat
  fresh `aws logs put-log-events`: {results['aws_put_log_events_cpu_ms']} ms CPU
  ratio: {results['ratio']}x   target >= 1000x
""")
print(json.dumps(results, indent=2))
PY
echo "==> load after: $(uptime)"
