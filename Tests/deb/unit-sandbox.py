#!/usr/bin/python3
"""Runs a command in an approximation of a systemd unit's sandbox, without systemd.

    unit-sandbox.py [--pidfile FILE] UNIT [DROPIN...] -- [COMMAND [ARG...]]

Without COMMAND it runs the unit's ExecStart= line.

systemd is not PID 1 on the test machine, so `systemctl start` cannot show that a unit's
hardening leaves its programs working (tdnskrs-nsd runs dnssec-signzone and nsd-control,
tdns-krs runs rndc or keymgr and knotc). This reads the [Service] settings of UNIT (and of
DROPIN files, applied after it, as `systemctl edit` drop-ins are) and enforces what matters
for those programs the way systemd does:

  ProtectSystem=strict, ReadWritePaths=  read-only bind of / (bwrap), writable binds for the paths
  PrivateTmp=, PrivateDevices=            empty /tmp and /var/tmp, a minimal /dev
  ProtectHome=yes                         empty /home, /root, /run/user
  ProtectProc=invisible, ProcSubset=pid   a new proc instance mounted hidepid=invisible,subset=pid
  User=, Group=, UMask=                   setpriv --reuid/--regid/--init-groups, umask
  NoNewPrivileges=, CapabilityBoundingSet=, AmbientCapabilities=   setpriv
  SystemCallFilter=, SystemCallErrorNumber=, SystemCallArchitectures=native
                                          a seccomp filter (python3-seccomp) from the groups
                                          `systemd-analyze syscall-filter` expands
  RestrictAddressFamilies=                socket() of any other family: EAFNOSUPPORT
  MemoryDenyWriteExecute=                 mmap W+X, mprotect/pkey_mprotect +X, shmat SHM_EXEC: EPERM
  RestrictSUIDSGID=                       chmod/fchmod/fchmodat with S_ISUID/S_ISGID: EPERM
  Environment=, EnvironmentFile=          the environment (PATH, HOME, USER, LOGNAME as systemd)
  WorkingDirectory=                       default /, as for system services

Not emulated (no effect on these programs' file, network and process use): ProtectKernel*,
ProtectControlGroups, ProtectClock, ProtectHostname, RestrictNamespaces, RestrictRealtime,
LockPersonality, RemoveIPC, PrivateMounts, KeyringMode. The network is the host's, as for
the units. --pidfile receives the PID of COMMAND (the same in and outside the sandbox); SIGTERM
and SIGINT are passed on to COMMAND, and the exit status is COMMAND's.
"""
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys

SECCOMP_PY = "/usr/lib/python3/dist-packages"


def parse_units(paths):
    """The [Service] assignments of the unit and its drop-ins, in order, as (key, value)."""
    out = []
    for path in paths:
        section = None
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("["):
                    section = line
                    continue
                if section == "[Service]" and "=" in line:
                    key, value = line.split("=", 1)
                    out.append((key.strip(), value.strip()))
    return out


def settings(assignments):
    """Folds the assignments with systemd's rules: lists accumulate, an empty value resets."""
    single, lists = {}, {"ReadWritePaths": [], "SystemCallFilter": [], "RestrictAddressFamilies": [],
                         "Environment": [], "EnvironmentFile": [], "SupplementaryGroups": []}
    for key, value in assignments:
        if key in lists:
            if value == "":
                lists[key] = []
            else:
                lists[key].append(value)
        else:
            single[key] = value
    return single, lists


def expand_group(name, seen=None):
    """Syscall names of a @group (recursively) or the name itself."""
    if not name.startswith("@"):
        return {name}
    seen = seen or set()
    if name in seen:
        return set()
    seen.add(name)
    text = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                          check=True).stdout
    names = set()
    for line in text.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if not line.startswith("    "):  # the next group's header
            break
        names |= expand_group(item, seen)
    return names


def yes(value):
    return value.lower() in ("yes", "true", "1", "on")


def stage_outer(args):
    pidfile = None
    if args and args[0] == "--pidfile":
        pidfile, args = args[1], args[2:]
    split = args.index("--")
    unit_files, command = args[:split], args[split + 1:]
    single, lists = settings(parse_units(unit_files))
    if not command:
        # The unit's own command line: its (last) ExecStart=, split as systemd splits it.
        command = shlex.split(single.get("ExecStart", ""))
        if not command:
            sys.exit("unit-sandbox: no command and no ExecStart= in the unit")

    bwrap = ["bwrap", "--die-with-parent", "--ro-bind", "/", "/"]
    if single.get("ProtectSystem", "no") != "strict":
        sys.exit("unit-sandbox: only ProtectSystem=strict units are emulated")
    if yes(single.get("PrivateDevices", "no")):
        bwrap += ["--dev", "/dev"]
    else:
        bwrap += ["--dev-bind", "/dev", "/dev"]
    bwrap += ["--proc", "/proc"]
    if yes(single.get("PrivateTmp", "no")):
        # 1777 as systemd makes them (bwrap's default tmpfs is root's 0755).
        bwrap += ["--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--tmpfs", "/var/tmp"]
    if single.get("ProtectHome", "no") in ("yes", "true", "tmpfs", "read-only"):
        for d in ("/home", "/root", "/run/user"):
            if os.path.isdir(d):
                bwrap += ["--tmpfs", d]
    for entry in lists["ReadWritePaths"]:
        for path in entry.split():
            optional = path.startswith("-")
            path = path.lstrip("-+")
            if os.path.exists(path):
                bwrap += ["--bind", path, path]
            elif not optional:
                sys.exit(f"unit-sandbox: ReadWritePaths={path} does not exist (systemd would refuse to start)")

    user = single.get("User", "root")
    group = single.get("Group", "")
    pw = pwd.getpwnam(user)
    setpriv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={group or pw.pw_gid}", "--init-groups"]
    if yes(single.get("NoNewPrivileges", "no")) or lists["SystemCallFilter"]:
        setpriv.append("--no-new-privs")
    caps = single.get("CapabilityBoundingSet")
    ambient = [c.lower().replace("cap_", "") for c in single.get("AmbientCapabilities", "").split()]
    if caps is not None:
        keep = [c.lower().replace("cap_", "") for c in caps.split()]
        setpriv.append("--bounding-set=" + ",".join(["-all"] + ["+" + c for c in keep]))
    if ambient:
        plus = ",".join("+" + c for c in ambient)
        setpriv += ["--inh-caps=-all," + plus, "--ambient-caps=-all," + plus]

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "SHELL": pw.pw_shell, "LANG": "C.UTF-8"}
    for entry in lists["EnvironmentFile"]:
        optional = entry.startswith("-")
        path = entry.lstrip("-")
        if not os.path.exists(path):
            if optional:
                continue
            sys.exit(f"unit-sandbox: EnvironmentFile={path} missing")
        for line in open(path):
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k.strip()] = " ".join(shlex.split(v))
    for entry in lists["Environment"]:
        for item in shlex.split(entry):
            if "=" in item:
                k, v = item.split("=", 1)
                env[k] = v
    # $VAR in the command, as systemd expands it in ExecStart= (unquoted: split into words).
    expanded = []
    for word in command:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            expanded += env.get(m.group(1), "").split()
        else:
            expanded.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda x: env.get(x.group(1), ""), word))

    proc_opts = []
    if single.get("ProtectProc") in ("invisible", "noaccess", "ptraceable"):
        proc_opts.append("hidepid=" + single["ProtectProc"])
    if single.get("ProcSubset") == "pid":
        proc_opts.append("subset=pid")
    inner = {
        "umask": single.get("UMask", "0022"),
        "proc": ",".join(proc_opts),
        "filter": lists["SystemCallFilter"],
        "errno": single.get("SystemCallErrorNumber", ""),
        "families": lists["RestrictAddressFamilies"],
        "mdwe": yes(single.get("MemoryDenyWriteExecute", "no")),
        "suidsgid": yes(single.get("RestrictSUIDSGID", "no")),
        "pidfd": -1,
        "cwd": single.get("WorkingDirectory", "/"),
    }
    # Stage 2 (root, inside bwrap): remount /proc, then setpriv to the unit's user, which runs
    # stage 3 (the user): the seccomp filter, the umask, exec the command.
    # The command's PID comes back through a pipe (the file system is read-only in there);
    # SIGTERM and SIGINT to this process are passed on to it, as systemd's stop would send them.
    read_end, write_end = os.pipe()
    inner["pidfd"] = write_end
    me = os.path.abspath(__file__)
    cmd = bwrap + ["--", "/usr/bin/python3", me, "--stage2", repr(inner), "--"] + setpriv + \
        ["--", "/usr/bin/python3", me, "--stage3", repr(inner), "--"] + expanded
    child = subprocess.Popen(cmd, env=env, pass_fds=[write_end])
    os.close(write_end)
    pid_text = os.read(read_end, 64).decode().strip()
    os.close(read_end)
    target = int(pid_text) if pid_text.isdigit() else None
    if pidfile and target:
        with open(pidfile, "w") as p:
            p.write(f"{target}\n")

    def forward(signum, _frame):
        if target:
            try:
                os.kill(target, signum)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(child.wait())


def stage2(spec, rest):
    if spec["proc"]:
        # A new proc instance (its own superblock) over bwrap's /proc, in the sandbox's mount
        # namespace only. Not a remount: bwrap's /proc shares the host's superblock when the PID
        # namespace is shared, and a remount would change /proc for the whole machine.
        subprocess.run(["mount", "-t", "proc", "-o", "nosuid,nodev,noexec," + spec["proc"], "proc", "/proc"],
                       check=True)
    os.execvp(rest[0], rest)


def stage3(spec, command):
    sys.path.insert(0, SECCOMP_PY)
    import errno
    import seccomp
    import socket

    os.umask(int(spec["umask"], 8))
    os.chdir(spec["cwd"])  # systemd's default for system services: /
    if spec["filter"]:
        allowed, denied, allow_mode = set(), set(), None
        for entry in spec["filter"]:
            negate = entry.startswith("~")
            names = set()
            for token in entry.lstrip("~").split():
                names |= expand_group(token)
            if allow_mode is None:
                allow_mode = not negate
            if negate:
                denied |= names
                allowed -= names
            else:
                allowed |= names
                denied -= names
        code = getattr(errno, spec["errno"]) if spec["errno"] else None
        default = seccomp.ERRNO(code) if code else seccomp.KILL_PROCESS
        f = seccomp.SyscallFilter(default if allow_mode else seccomp.ALLOW)
        special = {"socket", "mmap", "mprotect", "pkey_mprotect", "shmat", "chmod", "fchmod", "fchmodat"}

        def add(action, name, *args):
            try:
                f.add_rule(action, name, *args)
            except (RuntimeError, ValueError, OSError):
                pass  # a name this libseccomp or architecture does not know

        if allow_mode:
            for name in sorted(allowed - special):
                add(seccomp.ALLOW, name)
        else:
            for name in sorted(denied):
                add(default, name)
        permitted = (lambda n: n in allowed) if allow_mode else (lambda n: n not in denied)
        families = None
        if spec["families"]:
            families = set()
            for entry in spec["families"]:
                families |= {getattr(socket, fam) for fam in entry.split()}
        if permitted("socket"):
            if families is None:
                add(seccomp.ALLOW, "socket")
            else:
                for fam in range(0, 64):
                    if fam in families:
                        add(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, fam))
                    else:
                        add(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, fam))
        PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
        if permitted("mmap"):
            if spec["mdwe"]:
                for value in (0, PROT_WRITE, PROT_EXEC):
                    add(seccomp.ALLOW, "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, value))
            else:
                add(seccomp.ALLOW, "mmap")
        for name in ("mprotect", "pkey_mprotect"):
            if permitted(name):
                if spec["mdwe"]:
                    add(seccomp.ALLOW, name, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
                else:
                    add(seccomp.ALLOW, name)
        if permitted("shmat"):
            if spec["mdwe"]:
                add(seccomp.ALLOW, "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, 0))
            else:
                add(seccomp.ALLOW, "shmat")
        S_ISUID_GID = 0o6000
        for name, arg in (("chmod", 1), ("fchmod", 1), ("fchmodat", 2)):
            if permitted(name):
                if spec["suidsgid"]:
                    add(seccomp.ALLOW, name, seccomp.Arg(arg, seccomp.MASKED_EQ, S_ISUID_GID, 0))
                else:
                    add(seccomp.ALLOW, name)
        f.load()
    # The PID stays through exec: the outer stage signals this process.
    os.write(spec["pidfd"], f"{os.getpid()}\n".encode())
    os.close(spec["pidfd"])
    os.execvp(command[0], command)


def main():
    args = sys.argv[1:]
    if args and args[0] in ("--stage2", "--stage3"):
        spec = eval(args[1], {"__builtins__": {}})  # our own repr() of a dict of str/bool/list
        rest = args[3:]
        (stage2 if args[0] == "--stage2" else stage3)(spec, rest)
    else:
        stage_outer(args)


if __name__ == "__main__":
    main()
