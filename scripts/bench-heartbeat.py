#!/usr/bin/env python3
"""What a heartbeat costs the cwpub daemon, next to the publish script it replaces.

    scripts/bench-heartbeat.py [--bin [LABEL=]PATH ...] [--minutes N] [--only PARTS] [--perf DIR]

Runs the real daemon (one `builtin:heartbeat` job) against a private moto
(the local AWS mock) on loopback and measures, with the CPU of every thread
read from /proc/<pid>/task/*/schedstat (nanoseconds on a CPU; sampled every
0.2 s, so threads that exit meanwhile still count):

  cadence   `@every 1m` for N minutes (default 5): the daemon delivering to
            CloudWatch Logs (moto), the same daemon to the stdout sink, and the
            seed publish script (bash + `date` + `aws logs put-log-events`,
            started once a minute, its CPU from wait4), side by side in one
            window. Prints CPU per stored heartbeat for each, the ratio, the
            per-thread split, context switches and page faults.
  b2b       back to back: `@every 1s` for 60 s, both sinks: CPU per heartbeat.
  idle      nothing due (`@every 1h` after its run at start), 30 s: CPU and
            context switches, both sinks.
  rss       examples/quickstart.toml (two jobs every 10 s, stdout), warm
            compiled-guest cache: VmRSS 35 s after start.

Several binaries (`--bin base=old/cwpub --bin new=target/release/cwpub`) run
side by side in every part, so they are compared under the same load. With
`--perf DIR`, `perf record -g` is attached to every daemon during the cadence
window (build with frame pointers; see the `profiling` profile in Cargo.toml).

moto, awscli and the seed script run from .venv (created as scripts/test.sh
does). Linux only. Prints the load average before and after: the machines
are shared, report it with the figures.
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
GROUP = "/cwpub/bench-heartbeat"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_PAGER": "",
}
PARTS = ("cadence", "b2b", "idle", "rss")

# The seed design's publish step: what a cron job ran once a minute.
SEED_SCRIPT = r"""#!/usr/bin/env bash
set -euo pipefail
now_ms=$(date +%s%3N)
stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
message="{\"type\":\"heartbeat\",\"service\":\"bench\",\"host\":\"$(hostname)\",\"time\":\"$stamp\"}"
aws logs put-log-events --endpoint-url "$ENDPOINT" \
  --log-group-name "$GROUP" --log-stream-name "$STREAM" \
  --log-events "[{\"timestamp\":$now_ms,\"message\":\"${message//\"/\\\"}\"}]" >/dev/null
"""


def fail(message):
    sys.exit(f"bench-heartbeat: {message}")


def ensure_venv():
    pip = os.path.join(VENV, "bin", "pip")
    if not os.access(pip, os.X_OK):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    wanted = [p for p, exe in (("moto[server]>=5,<6", "moto_server"), ("awscli", "aws"))
              if not os.access(os.path.join(VENV, "bin", exe), os.X_OK)]
    if wanted:
        print(f"==> installing {', '.join(wanted)} into .venv", flush=True)
        subprocess.run([pip, "install", "--quiet", "--disable-pip-version-check", *wanted], check=True)


class Moto:
    """moto_server on 127.0.0.1, port 0, the port read back from its banner."""

    def __init__(self, work):
        self.log = open(os.path.join(work, "moto.log"), "w+")
        self.proc = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p0"],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 60
        while True:
            found = re.search(r"Running on http://127\.0\.0\.1:(\d+)", open(self.log.name).read())
            if found:
                self.endpoint = f"http://127.0.0.1:{found.group(1)}"
                return
            if self.proc.poll() is not None or time.time() > deadline:
                fail(f"moto_server did not start:\n{open(self.log.name).read()}")
            time.sleep(0.05)

    def aws(self, *args, tolerate=None):
        out = subprocess.run([os.path.join(VENV, "bin", "aws"), "--endpoint-url", self.endpoint, *args],
                             env=dict(os.environ, **AWS_ENV), capture_output=True, text=True)
        if out.returncode != 0 and not (tolerate and tolerate in out.stderr):
            fail(f"aws {' '.join(args)}: {out.stderr}")
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None

    def ensure_stream(self, stream):
        self.aws("logs", "create-log-group", "--log-group-name", GROUP, tolerate="ResourceAlreadyExists")
        self.aws("logs", "create-log-stream", "--log-group-name", GROUP, "--log-stream-name", stream,
                 tolerate="ResourceAlreadyExists")

    def events(self, stream, start_ms, end_ms):
        """Events stored in `stream` with timestamps in [start_ms, end_ms)."""
        got = self.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                       "--start-time", str(start_ms), "--end-time", str(end_ms), "--start-from-head")
        return len(got["events"])

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def config(sink, schedule, stream, endpoint=None):
    sink_section = ('kind = "stdout"' if sink == "stdout" else
                    f'kind = "cloudwatch"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"')
    return f"""
[sink]
{sink_section}

[observe]
enabled = true
listen = "127.0.0.1:0"

[[jobs]]
name = "heartbeat"
guest = "builtin:heartbeat"
schedule = "{schedule}"
run_at_start = true
log_group = "{GROUP}"
log_stream = "{stream}"
[jobs.config]
service = "bench"
"""


class Daemon:
    """`cwpub run` with a config; stdout collected in a file."""

    def __init__(self, work, label, binary, name, text, cache):
        self.label, self.name = label, name
        base = os.path.join(work, f"{label}-{name}")
        open(f"{base}.toml", "w").write(text)
        self.out_path, self.err_path = f"{base}.out", f"{base}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CWPUB_", "AWS_", "RUST_LOG"))}
        env.update(AWS_ENV, CWPUB_CACHE_DIR=cache)
        self.proc = subprocess.Popen([binary, "run", f"{base}.toml"], env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"))
        self.pid = self.proc.pid

    def lines(self):
        with open(self.out_path) as f:
            return sum(1 for _ in f)

    def wait_started(self, timeout=120):
        end = time.time() + timeout
        while "cwpub started" not in open(self.err_path).read():
            if self.proc.poll() is not None or time.time() > end:
                fail(f"{self.label} {self.name} did not start:\n{open(self.err_path).read()}")
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def read_threads(pid):
    """{tid: (name, cpu_ns, switches)} for the live threads of `pid`."""
    out = {}
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            name = open(f"{task}/comm").read().strip()
            cpu = int(open(f"{task}/schedstat").read().split()[0])
            status = open(f"{task}/status").read()
        except OSError:
            continue  # exited meanwhile
        switches = sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", status, re.M))
        out[int(os.path.basename(task))] = (name, cpu, switches)
    return out


def faults(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[9])  # minflt, majflt


def rss_mib(pid):
    status = open(f"/proc/{pid}/status").read()
    return {k: round(int(re.search(rf"^{k}:\s+(\d+) kB", status, re.M).group(1)) / 1024, 1)
            for k in ("VmRSS", "RssAnon", "RssFile")}


class Watch:
    """CPU and context switches of every thread of several processes over a
    window, read every 0.2 s (reading /proc does not wake the processes)."""

    def __init__(self, pids):
        self.pids = pids
        self.first = {pid: read_threads(pid) for pid in pids}
        self.seen = {pid: dict(t) for pid, t in self.first.items()}
        self.faults0 = {pid: faults(pid) for pid in pids}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def _sample(self):
        while not self.stopping.wait(0.2):
            for pid in self.pids:
                self.seen[pid].update(read_threads(pid))

    def stop(self):
        self.stopping.set()
        self.thread.join()
        seconds = time.monotonic() - self.started
        result = {}
        for pid in self.pids:
            last = read_threads(pid)
            self.seen[pid].update(last)
            minflt, majflt = faults(pid)
            per_name, cpu, switches = {}, 0, 0
            for tid, (name, c1, s1) in self.seen[pid].items():
                _, c0, s0 = self.first[pid].get(tid, (name, 0, 0))
                cpu += c1 - c0
                switches += s1 - s0
                row = per_name.setdefault(name, [0, 0, 0])
                row[0] += c1 - c0
                row[1] += s1 - s0
                row[2] += 1
            result[pid] = {
                "seconds": seconds,
                "cpu_ms": cpu / 1e6,
                "switches": switches,
                "minor_faults": minflt - self.faults0[pid][0],
                "major_faults": majflt - self.faults0[pid][1],
                "threads": {n: {"cpu_ms": c / 1e6, "switches": s, "count": k} for n, (c, s, k) in per_name.items()},
                "born": len(set(self.seen[pid]) - set(self.first[pid])),
                "exited": len(set(self.seen[pid]) - set(last)),
            }
        return result


def thread_split(w):
    rows = sorted(w["threads"].items(), key=lambda kv: -kv[1]["cpu_ms"])
    return ", ".join(f"{n}×{r['count']} {r['cpu_ms']:.2f} ms/{r['switches']} sw" for n, r in rows if r["cpu_ms"] or r["switches"])


def start_daemons(work, bins, cache, schedule, moto, tag):
    daemons = []
    for label, binary in bins:
        for sink in ("cloudwatch", "stdout"):
            stream = f"{label}-{sink}-{tag}"
            daemons.append(Daemon(work, label, binary, f"{sink}-{tag}",
                                  config(sink, schedule, stream, moto.endpoint if moto else None), cache))
            daemons[-1].sink, daemons[-1].stream = sink, stream
    for d in daemons:
        d.wait_started()
    return daemons


def sleep_until(t):
    while (left := t - time.time()) > 0:
        time.sleep(min(left, 1))


def cadence(work, bins, cache, moto, minutes, perf_dir):
    """@every 1m for `minutes` whole minutes, the seed script at half past each."""
    print(f"==> cadence: @every 1m for {minutes} min, {len(bins) * 2} daemons and the seed script side by side",
          flush=True)
    moto.ensure_stream("seed")
    seed = os.path.join(work, "publish.sh")
    open(seed, "w").write(SEED_SCRIPT)
    os.chmod(seed, 0o755)
    seed_env = dict(os.environ, **AWS_ENV, ENDPOINT=moto.endpoint, GROUP=GROUP, STREAM="seed",
                    PATH=os.path.join(VENV, "bin") + os.pathsep + os.environ["PATH"])
    daemons = start_daemons(work, bins, cache, "@every 1m", moto, "1m")
    # From 40 s past one minute (the runs at start and their deliveries are
    # over) to 40 s past the minute `minutes` later: `minutes` ticks each.
    now = time.time()
    start = (now // 60 + 1) * 60 + 40
    sleep_until(start)
    perfs = []
    if perf_dir:
        os.makedirs(perf_dir, exist_ok=True)
        for d in daemons:
            perfs.append(subprocess.Popen(
                ["perf", "record", "-g", "-F", "10000", "-e", "cpu-clock", "-p", str(d.pid),
                 "-o", os.path.join(perf_dir, f"{d.label}-{d.name}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
    lines0 = {d.pid: d.lines() for d in daemons}
    watch = Watch([d.pid for d in daemons])
    seed_cpu = []
    for minute in range(minutes):
        sleep_until(start + 60 * minute + 50)  # half past the daemons' tick (:00), between their deliveries
        t0 = time.time()
        proc = subprocess.Popen([seed], env=seed_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            fail(f"the seed script failed: {proc.stderr.read().decode()}")
        seed_cpu.append((usage.ru_utime + usage.ru_stime) * 1e3)
        print(f"   seed publish {minute + 1}/{minutes}: {seed_cpu[-1]:.0f} ms CPU, "
              f"{time.time() - t0:.2f} s wall", flush=True)
    sleep_until(start + 60 * minutes)
    results = watch.stop()
    end = time.time()
    for p in perfs:
        p.send_signal(signal.SIGINT)
        p.wait()
    rows = []
    for d in daemons:
        w = results[d.pid]
        if d.sink == "cloudwatch":
            stored = moto.events(d.stream, int(start * 1000), int(end * 1000))
        else:
            stored = d.lines() - lines0[d.pid]
        rows.append((d, w, stored))
    stored_seed = moto.events("seed", int(start * 1000), int(end * 1000))
    for d in daemons:
        d.stop()
    seed_per = sum(seed_cpu) / max(stored_seed, 1)
    print(f"\ncadence window {minutes} min ({rows[0][1]['seconds']:.0f} s):")
    print(f"  seed publish (bash + date + aws logs put-log-events): {seed_per:.0f} ms CPU per stored heartbeat "
          f"(runs: {', '.join(f'{c:.0f}' for c in seed_cpu)} ms; {stored_seed} stored)")
    out = {"seed_ms_per_heartbeat": seed_per, "seed_runs_ms": seed_cpu, "daemons": []}
    for d, w, stored in rows:
        per = w["cpu_ms"] / max(stored, 1)
        ratio = seed_per / per if per else float("inf")
        print(f"  {d.label} → {d.sink}: {per:.3f} ms CPU per stored heartbeat ({w['cpu_ms']:.2f} ms, {stored} stored)"
              f"  ratio {ratio:,.0f}×")
        print(f"      {w['switches']} context switches ({w['switches'] / max(stored, 1):.1f} per heartbeat), "
              f"{w['minor_faults']} minor / {w['major_faults']} major faults, threads born {w['born']}, exited {w['exited']}")
        print(f"      per thread: {thread_split(w)}")
        out["daemons"].append({"label": d.label, "sink": d.sink, "stored": stored, "ms_per_heartbeat": per,
                               "ratio": ratio, **w})
    return out


def back_to_back(work, bins, cache, moto, seconds=60):
    print(f"==> back to back: @every 1s for {seconds} s", flush=True)
    daemons = start_daemons(work, bins, cache, "@every 1s", moto, "1s")
    time.sleep(5)
    lines0 = {d.pid: d.lines() for d in daemons}
    t0 = time.time()
    watch = Watch([d.pid for d in daemons])
    time.sleep(seconds)
    results = watch.stop()
    t1 = time.time()
    time.sleep(3)  # let the last deliveries land
    out = []
    print(f"\nback to back, {seconds} s:")
    for d in daemons:
        w = results[d.pid]
        n = (moto.events(d.stream, int(t0 * 1000), int(t1 * 1000)) if d.sink == "cloudwatch"
             else d.lines() - lines0[d.pid])
        d.stop()
        print(f"  {d.label} → {d.sink}: {w['cpu_ms'] / max(n, 1):.3f} ms CPU per heartbeat ({n} heartbeats, "
              f"{w['switches'] / max(n, 1):.1f} switches each); {thread_split(w)}")
        out.append({"label": d.label, "sink": d.sink, "heartbeats": n, "ms_per_heartbeat": w["cpu_ms"] / max(n, 1),
                    **w})
    return out


def idle(work, bins, cache, moto, seconds=30):
    print(f"==> idle: nothing due, {seconds} s", flush=True)
    daemons = start_daemons(work, bins, cache, "@every 1h", moto, "1h")
    time.sleep(15)  # past the run at start and its delivery
    watch = Watch([d.pid for d in daemons])
    time.sleep(seconds)
    results = watch.stop()
    out = []
    print(f"\nidle, {seconds} s with nothing due:")
    for d in daemons:
        w = results[d.pid]
        d.stop()
        print(f"  {d.label} → {d.sink}: {w['cpu_ms']:.3f} ms CPU, {w['switches']} context switches, "
              f"{sum(t['count'] for t in w['threads'].values())} threads; {thread_split(w) or 'no thread ran'}")
        out.append({"label": d.label, "sink": d.sink, **w})
    return out


def rss(work, bins, cache):
    print("==> rss: examples/quickstart.toml, 35 s after start", flush=True)
    quickstart = open(os.path.join(ROOT, "examples/quickstart.toml")).read().replace(
        'listen = "127.0.0.1:9464"', 'listen = "127.0.0.1:0"')
    daemons = [Daemon(work, label, binary, "quickstart", quickstart, cache) for label, binary in bins]
    time.sleep(35)
    out = {}
    print("\nidle RSS (quickstart, warm compiled-guest cache, 35 s after start):")
    for d in daemons:
        out[d.label] = rss_mib(d.pid)
        d.stop()
        print(f"  {d.label}: {out[d.label]} MiB")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", action="append", default=[], metavar="[LABEL=]PATH",
                        help="cwpub binary (repeat to compare side by side); default target/release/cwpub")
    parser.add_argument("--minutes", type=int, default=5, help="cadence window in minutes (default 5)")
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run (default {','.join(PARTS)})")
    parser.add_argument("--perf", metavar="DIR", help="perf record -g every daemon in the cadence window")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()
    if sys.platform != "linux":
        fail("reads /proc: Linux only")
    bins = []
    for spec in args.bin or [os.path.join(ROOT, "target/release/cwpub")]:
        label, _, path = spec.rpartition("=")
        path = os.path.abspath(path)
        if not os.access(path, os.X_OK):
            fail(f"{path} is not an executable; build it with `cargo build --release`")
        bins.append((label or f"cwpub{len(bins) + 1 if args.bin and len(args.bin) > 1 else ''}", path))
    parts = [p for p in args.only.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        fail(f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    ensure_venv()
    print(f"==> load before: {os.getloadavg()}; machine: {os.cpu_count()} CPUs, "
          f"{_cpu_model()}, Linux {os.uname().release}", flush=True)
    work = tempfile.mkdtemp(prefix="cwpub-bench-heartbeat-")
    cache = os.path.join(work, "cache")
    results = {"machine": {"cpus": os.cpu_count(), "model": _cpu_model(), "kernel": os.uname().release},
               "bins": dict(bins)}
    # Warm the compiled-guest cache, as any restart of a long-running daemon finds it.
    for label, binary in bins:
        for guest in ("builtin:heartbeat", "builtin:emf"):
            subprocess.run([binary, "invoke", guest], env=dict(os.environ, CWPUB_CACHE_DIR=cache),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    moto = Moto(work) if {"cadence", "b2b", "idle"} & set(parts) else None
    try:
        if "cadence" in parts:
            results["cadence"] = cadence(work, bins, cache, moto, args.minutes, args.perf)
        if "b2b" in parts:
            results["b2b"] = back_to_back(work, bins, cache, moto)
        if "idle" in parts:
            results["idle"] = idle(work, bins, cache, moto)
        if "rss" in parts:
            results["rss"] = rss(work, bins, cache)
    finally:
        if moto:
            moto.stop()
    print(f"\n==> load after: {os.getloadavg()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


def _cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
