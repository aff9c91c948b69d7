#!/usr/bin/env python3
"""Start time and memory of cwpub in its container image (docs/benchmarks.md).

    scripts/bench-container.py [IMAGE] [--runs N] [--idle SECONDS]

Runs examples/quickstart.toml (stdout sink, both reference guests with
run_at_start) in IMAGE (default localhost/cwpub:latest) with podman and runc,
hardened as the tests and manifests run it (read-only root, no capabilities,
non-root, no network), and reports for each case the wall time from
`podman run` to the first event on stdout (median and range over N runs):

  runtime   `podman run IMAGE --version` to its output: what podman/runc cost
  cold      an empty compiled-guest cache (a tmpfs): both guests compiled at start
  warm      the image's baked cache: nothing compiled

then, for the last container of each of cold and warm, VmRSS, VmHWM (peak)
and RSS split after SECONDS (default 35) and the CPU it used from 5 s after
its start to then (the jobs' runs every 10 s and the daemon's waiting). Prints the load average before and after: the
machines are shared, report it with the figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "examples/quickstart.toml")
HARDENED = [
    "--no-healthcheck",  # the image HEALTHCHECK needs systemd timers podman may not have
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--network=none",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
]
COLD = ["--tmpfs=/tmp/cwpub-cache:rw,mode=1777", "-e", "CWPUB_CACHE_DIR=/tmp/cwpub-cache"]


def podman(*args):
    return ["podman", "--runtime", "runc", *args]


def run_to_first_line(image, name, extra, command):
    """Starts a container; returns (seconds to its first stdout line, Popen)."""
    argv = podman("run", "--rm", "--name", name, *HARDENED, *extra, "-v", f"{CONFIG}:/etc/cwpub/cwpub.toml:ro", image, *command)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    if not line:
        proc.wait()
        sys.exit(f"error: {' '.join(argv)} printed nothing (exit {proc.returncode}); run it by hand to see why")
    return elapsed, proc


def stop(name, proc):
    subprocess.run(podman("kill", "--signal", "TERM", name), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.stdout.close()
    proc.wait(timeout=60)


def pid_of(name):
    return subprocess.run(podman("inspect", "--format", "{{.State.Pid}}", name), capture_output=True, text=True, check=True).stdout.strip()


def thread_cpu(pid):
    """CPU time of each thread, in ns (scheduler statistics), by thread id."""
    times = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f:
                times[task] = int(f.read().split()[0])
        except FileNotFoundError:
            pass  # exited meanwhile
    return times


def cpu_between(before, after):
    """Seconds of CPU the threads alive at both samples used in between (the
    threads that loaded the guests exit ~10 s after start, having done their work)."""
    return sum(after[t] - before[t] for t in after if t in before) / 1e9


def cpu_since_start(pid):
    """utime + stime of the whole process, exited threads included (10 ms resolution)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def summary(times):
    ms = sorted(t * 1000 for t in times)
    return f"{statistics.median(ms):.0f} ms ({ms[0]:.0f}–{ms[-1]:.0f}, {len(ms)} runs)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", nargs="?", default="localhost/cwpub:latest")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--idle", type=float, default=35.0)
    args = ap.parse_args()
    print(f"load before: {os.getloadavg()}")
    size = subprocess.run(podman("image", "inspect", "--format", "{{.Size}}", args.image), capture_output=True, text=True)
    if size.returncode != 0:
        sys.exit(f"error: no image {args.image}: build it with scripts/build-image.sh")
    print(f"image {args.image}: {int(size.stdout) / 1e6:.1f} MB")

    runtime = []
    for i in range(args.runs):
        elapsed, proc = run_to_first_line(args.image, f"cwpub-bench-version-{os.getpid()}-{i}", [], ["--version"])
        proc.stdout.close()
        proc.wait()
        runtime.append(elapsed)
    print(f"runtime (podman run … --version, to its output): {summary(runtime)}")

    results = {}
    for case, extra in (("cold", COLD), ("warm", [])):
        times = []
        for i in range(args.runs):
            name = f"cwpub-bench-{case}-{os.getpid()}-{i}"
            elapsed, proc = run_to_first_line(args.image, name, extra, ["run", "/etc/cwpub/cwpub.toml"])
            times.append(elapsed)
            if i == args.runs - 1:
                pid = pid_of(name)
                time.sleep(5)
                before, start = thread_cpu(pid), time.perf_counter()
                time.sleep(max(args.idle - 5, 1))
                used = cpu_between(before, thread_cpu(pid))
                results[case] = memory(pid)
                results[case]["CPU ms/s while idle"] = 1000 * used / (time.perf_counter() - start)
                results[case]["CPU s since start"] = cpu_since_start(pid)
            stop(name, proc)
        print(f"{case}: first event {summary(times)}; after {args.idle:.0f} s idle: "
              + ", ".join(f"{k} {v:.2f}" + (" MiB" if k.startswith(("Vm", "Rss")) else "") for k, v in results[case].items()))
    print(f"load after: {os.getloadavg()}")
    json.dump(results, sys.stderr)
    print(file=sys.stderr)


if __name__ == "__main__":
    main()
