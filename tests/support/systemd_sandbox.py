#!/usr/bin/env python3
"""Runs a command under two restrictions a systemd unit can put on a service,
applied the way the kernel enforces them, for the tests of
deploy/systemd/cwpub.service (the tests run where PID 1 is not systemd, so
the unit itself cannot be started):

  --syscall-filter LIST SystemCallFilter=LIST, given once per line of the
                        unit, as systemd combines them: the first list is
                        allowed, a later `~LIST` is taken out of it. Groups
                        are expanded as `systemd-analyze syscall-filter`
                        lists them. A call outside the result kills the
                        process with SIGSYS (systemd's default action; a
                        unit's SystemCallErrorNumber= would return an error
                        instead, so this is the stricter check). Needs
                        libseccomp (libseccomp.so.2, which systemd links).
  --mdwe                MemoryDenyWriteExecute=yes, as systemd applies it:
                        the kernel's prctl(PR_SET_MDWE,
                        PR_MDWE_REFUSE_EXEC_GAIN) where it has one (Linux
                        6.3+; systemd 254+), which refuses mappings that are
                        writable and executable or become executable; else
                        systemd's seccomp rules, which refuse mmap() with
                        PROT_WRITE|PROT_EXEC, mprotect() and pkey_mprotect()
                        with PROT_EXEC and shmat() with SHM_EXEC (EPERM).
  --mdwe-seccomp        --mdwe with systemd's seccomp rules, even where the
                        kernel has the prctl.

Both set no_new_privs first, as systemd does, then exec the command.

usage: systemd_sandbox.py [--syscall-filter LIST]... [--mdwe | --mdwe-seccomp] -- COMMAND [ARG...]
"""

import ctypes
import ctypes.util
import errno
import os
import subprocess
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_ERRNO_EPERM = 0x00050000 | 1
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000


class ArgCmp(ctypes.Structure):
    """libseccomp's struct scmp_arg_cmp."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def fail(message):
    print(f"systemd_sandbox.py: {message}", file=sys.stderr)
    sys.exit(125)


def syscall_groups():
    """Every group `systemd-analyze syscall-filter` knows, name -> members."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter", "--no-pager"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif not line.strip():
            current = None
        elif current is not None and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def expand(name, groups, seen=None):
    """The system calls of `name`, a group (expanded) or a call."""
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    if name not in groups:
        fail(f"systemd-analyze knows no system call group {name}")
    calls = set()
    for member in groups[name]:
        calls |= expand(member, groups, seen)
    return calls


def libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    return lib


def prctl(lib, option, arg, what):
    if lib.prctl(option, arg, 0, 0, 0) != 0:
        fail(f"prctl({what}): {os.strerror(ctypes.get_errno())}")


def load_libseccomp():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        seccomp = ctypes.CDLL(name)
    except OSError as e:
        fail(f"cannot load libseccomp ({e}); install libseccomp2")
    seccomp.seccomp_init.restype = ctypes.c_void_p
    seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
    seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    seccomp.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
    return seccomp


def seccomp_filter(default_action, rules):
    """Loads a filter: `rules` are (call, action, [(arg, mask)]) where every
    (arg, mask) must match (`arg & mask == mask`); unknown calls are skipped,
    as systemd skips calls this architecture does not have. Returns how many
    rules were added."""
    seccomp = load_libseccomp()
    ctx = seccomp.seccomp_init(default_action)
    if not ctx:
        fail("seccomp_init failed")
    added = 0
    for call, action, masks in rules:
        nr = seccomp.seccomp_syscall_resolve_name(call.encode())
        if nr < 0:
            continue
        cmps = (ArgCmp * max(len(masks), 1))(
            *[ArgCmp(arg, SCMP_CMP_MASKED_EQ, mask, mask) for arg, mask in masks]
        )
        rc = seccomp.seccomp_rule_add_array(ctx, action, nr, len(masks), cmps)
        if rc != 0:
            fail(f"seccomp_rule_add({call}): {os.strerror(-rc)}")
        added += 1
    rc = seccomp.seccomp_load(ctx)
    if rc != 0:
        fail(f"seccomp_load: {os.strerror(-rc)}")
    return added


def apply_mdwe(lib, method):
    if method == "auto":
        if lib.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0:
            return
        if ctypes.get_errno() != errno.EINVAL:
            fail(f"prctl(PR_SET_MDWE): {os.strerror(ctypes.get_errno())}")
    seccomp_filter(
        SCMP_ACT_ALLOW,
        [
            ("mmap", SCMP_ACT_ERRNO_EPERM, [(2, PROT_WRITE | PROT_EXEC)]),
            ("mmap2", SCMP_ACT_ERRNO_EPERM, [(2, PROT_WRITE | PROT_EXEC)]),
            ("mprotect", SCMP_ACT_ERRNO_EPERM, [(2, PROT_EXEC)]),
            ("pkey_mprotect", SCMP_ACT_ERRNO_EPERM, [(2, PROT_EXEC)]),
            ("shmat", SCMP_ACT_ERRNO_EPERM, [(2, SHM_EXEC)]),
        ],
    )


def allowed_calls(lists):
    """The system calls the unit's SystemCallFilter= lines allow."""
    groups = syscall_groups()
    calls = set()
    for i, line in enumerate(lists):
        deny = line.startswith("~")
        if i == 0 and deny:
            fail("the first --syscall-filter must be an allow list")
        for name in line.lstrip("~").split():
            if deny:
                calls -= expand(name, groups)
            else:
                calls |= expand(name, groups)
    return calls


def apply_syscall_filter(lists):
    calls = allowed_calls(lists)
    added = seccomp_filter(
        SCMP_ACT_KILL_PROCESS, [(call, SCMP_ACT_ALLOW, []) for call in sorted(calls)]
    )
    if added < 100:
        fail(f"{lists} resolved to only {added} system calls")


def main(argv):
    lists, mdwe = [], None
    while argv and argv[0] != "--":
        option = argv.pop(0)
        if option == "--syscall-filter" and argv:
            lists.append(argv.pop(0))
        elif option == "--mdwe":
            mdwe = "auto"
        elif option == "--mdwe-seccomp":
            mdwe = "seccomp"
        else:
            fail(__doc__.strip().splitlines()[-1])
    command = argv[1:]
    if not command:
        fail(__doc__.strip().splitlines()[-1])
    lib = libc()
    prctl(lib, PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    if mdwe:
        apply_mdwe(lib, mdwe)
    if lists:
        apply_syscall_filter(lists)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
