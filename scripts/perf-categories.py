#!/usr/bin/env python3
"""Where a cwpub daemon's CPU goes, from `perf record -g` data, by stage.

    scripts/perf-categories.py [--per N] [--unclassified] PERF.data ...

Reads each file with `perf script` and puts every sample in one category:
kernel work first (context switches, TCP, memory resets, page faults), then
the innermost cwpub, wasmtime, SDK, hyper or tokio frame that names a stage
(so the allocator's and the standard library's time goes to whoever called
them). Prints each category's share of the samples, and with `--per N` its
share of N (say, the measured CPU per heartbeat in ms), plus the share of
all samples spent inside malloc/free, whoever called it. Record with frame
pointers (the `profiling` profile in Cargo.toml built with
RUSTFLAGS="-C force-frame-pointers=yes"), e.g. through
`scripts/bench-heartbeat.py --perf DIR`.
"""

import argparse
import collections
import re
import subprocess
import sys

# (category, pattern) checked against the kernel part of the stack, leaf first.
KERNEL = [
    ("thread wake-ups and context switches", r"finish_task_switch|__schedule\b|schedule_hrtimeout|futex_wake|try_to_wake_up|__x64_sys_futex|do_futex|ttwu"),
    ("TCP connect/send/receive/close (kernel)", r"tcp_|inet_|__sys_connect|sock_|__x64_sys_socket|ip_|__dev_queue_xmit|netif_|skb|__x64_sys_close|__x64_sys_shutdown|unix_"),
    ("guest memory reset (pagemap_scan, madvise)", r"pagemap_scan|madvise|zap_|do_pagemap"),
    ("page faults", r"exc_page_fault|handle_mm_fault|do_user_addr_fault"),
    ("epoll and timerfd (kernel)", r"epoll|timerfd|eventfd"),
    ("writing stdout (kernel)", r"vfs_write|ksys_write|pipe_write|ext4_"),
    ("mmap/munmap/mprotect (kernel)", r"mmap|munmap|mprotect"),
]

# (category, pattern) checked against user-space frames, leaf first.
USER = [
    ("guest code (JIT)", r"perf-\d+\.map|\[unknown\].*\(/tmp/perf"),
    ("wasmtime: instance reset and deallocation", r"deallocate_|DecommitQueue|merge_or_flush|reset_with_pagemap|MemoryImageSlot::(clear|reset)|decommit"),
    ("wasmtime: instantiation", r"instantiate|allocate_(instance|memor|table|fiber|component)|InstancePre|StoreOpaque::allocate_instance|ModuleRegistry::register|Store<T>>::new|StoreInner.*new|increment_component_instance_count|vm::instance"),
    ("wasmtime: calls across the guest boundary (lift, lower, fibers)", r"typecheck|LowerContext|LiftContext|component::func|cabi_entrypoint|call_unchecked_raw|wasmtime_internal_fiber|wasmtime::runtime::func|HostFn|ComponentType|Lift|Lower|wasmtime::runtime::store|wasmtime::runtime::fiber|on_fiber"),
    ("WASI context set-up and calls", r"wasmtime_wasi|WasiCtx|RunState|rand::|StdRng|SmallRng|chacha|ChaCha|getrandom"),
    ("wasmtime: other", r"wasmtime"),
    ("guest runtime glue (cwpub::guest: call, classify, output)", r"cwpub::guest::"),
    ("validation", r"cwpub::validate|cwpub_emf"),
    ("stdout sink", r"cwpub::sink::stdout|StdoutLock|Stdout"),
    ("tick set-up (job.rs: facts, invocation id, ledger)", r"cwpub::daemon::job|uuid::|HostFacts|delivery_facts|cwpub::ledger|cwpub::observe"),
    ("schedule: wall-clock timer (timerfd)", r"cwpub::schedule::clock|wall_timer|rustix::time|timerfd"),
    ("schedule: driver", r"cwpub::schedule::driver|cwpub::schedule::spec|croner|chrono"),
    ("SDK: SigV4 signing", r"aws_sigv4|aws_runtime::auth|SigV4|sha2|hmac|Sha256|sha256"),
    ("SDK: credentials and identity cache", r"identity::cache|aws_config::|ProvideCredentials|aws_credential_types|LazyCache|resolve_cached_identity|ExpiringCache"),
    ("SDK: endpoint resolution", r"endpoint|Endpoint"),
    ("SDK: serializing and parsing", r"protocol_serde|ser_put|de_put|aws_smithy_json|shape_|InputLogEvent"),
    ("SDK: interceptors", r"Intercept|interceptors|UserAgent|InvocationId|RecursionDetection|RequestInfo|StalledStream|ObservabilityFeature|Checksum"),
    ("TLS (rustls, aws-lc)", r"rustls|aws_lc|ring::"),
    ("HTTP client (hyper, smithy connector)", r"hyper|aws_smithy_http_client|http::header|http::|httparse|h2::|tower"),
    ("SDK: orchestrator, runtime plugins, config bag", r"aws_smithy_runtime|aws_smithy_types|aws_smithy_runtime_api|aws_sdk_cloudwatchlogs|aws_runtime|aws_smithy_async|aws_smithy_observability|aws_types|config_bag|RuntimePlugin|RuntimeComponents"),
    ("sink adapter: request encoding, answer (cwpub::sinks)", r"cwpub::sinks"),
    ("delivery: buffer, batching, sender", r"cwpub::delivery"),
    ("logging (tracing)", r"tracing"),
    ("tokio: timers", r"tokio::runtime::time|tokio::time|TimerEntry|Sleep"),
    ("tokio: scheduling, parking, waking", r"tokio::|epoll_wait|syscall|futex|park"),
]

ALLOC = re.compile(r"^(malloc|free|cfree|_int_malloc|_int_free|malloc_consolidate|unlink_chunk|realloc|_int_realloc|calloc|__libc_malloc|__libc_free|tcache|sysmalloc|systrim|__default_morecore|mi_|_mi_|__memmove|__memset|__memcpy)")


def samples(path):
    out = subprocess.run(["perf", "script", "-F", "comm,tid,ip,sym,dso", "-i", path],
                         capture_output=True, text=True, check=True).stdout
    for block in out.split("\n\n"):
        lines = [l.strip() for l in block.strip().splitlines() if l.strip()]
        if len(lines) < 2:
            continue
        yield lines[0].split()[0], lines[1:]


def frame_symbol(line):
    # "addr symbol+0xoff (dso)"
    parts = line.split(" ", 1)
    return parts[1] if len(parts) > 1 else line


def categorize(frames):
    syms = [frame_symbol(f) for f in frames]
    kernel = [s for s in syms if "[kernel.kallsyms]" in s]
    for category, pattern in KERNEL:
        if any(re.search(pattern, s) for s in kernel):
            return category
    for s in syms:
        if "[kernel.kallsyms]" in s:
            continue
        for category, pattern in USER:
            if re.search(pattern, s):
                return category
    return "other"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per", type=float, help="also show each share of this amount (e.g. ms per heartbeat)")
    parser.add_argument("--unclassified", action="store_true", help="list the leaf frames of samples in 'other'")
    parser.add_argument("data", nargs="+")
    args = parser.parse_args()
    for path in args.data:
        counts = collections.Counter()
        threads = collections.Counter()
        alloc = 0
        others = collections.Counter()
        total = 0
        for comm, frames in samples(path):
            total += 1
            category = categorize(frames)
            counts[category] += 1
            threads[comm] += 1
            leaf = re.sub(r"\+0x[0-9a-f]+", "", frame_symbol(frames[0]))
            if ALLOC.match(leaf):
                alloc += 1
            if category == "other":
                others[leaf] += 1
        if not total:
            print(f"{path}: no samples")
            continue
        print(f"\n{path}: {total} samples; threads: "
              + ", ".join(f"{t} {n * 100 / total:.0f}%" for t, n in threads.most_common()))
        for category, n in counts.most_common():
            per = f"  {n * args.per / total:7.3f}" if args.per else ""
            print(f"  {n * 100 / total:5.1f}%{per}  {category}")
        print(f"  (inside malloc/free/memcpy, whoever called it: {alloc * 100 / total:.1f}%)")
        if args.unclassified:
            for leaf, n in others.most_common(25):
                print(f"      other: {n:4d} {leaf}")


if __name__ == "__main__":
    sys.exit(main())
