"""benchlib.util - what every benchmark script needs: paths, constants,
the error type, logging, waiting, ports, the machine description and the
file system under the instances.  Standard library only."""
import fcntl
import os
import pathlib
import platform
import socket
import struct
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import mkinstance  # noqa: E402,F401  the instance generator shared with the tests and the sandbox

CLK_TCK = os.sysconf("SC_CLK_TCK")
DOMAIN = "example.test"
SENDER = "bench@client.test"
VMAIL_USER = "posthorn-vmail"
SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTMAP = "/usr/sbin/postmap"
POSTFIX_SENDMAIL = "/usr/sbin/sendmail"
SERVER_CPU = 0          # pinned modes: every server process on this CPU
CLIENT_CPU = 1          # and the load client (and the harness) on this one

LOG_PREFIX = ["bench"]


class BenchError(Exception):
    """A server could not be set up or did not deliver: the reason."""


def set_log_prefix(name):
    LOG_PREFIX[0] = name


def log(text):
    print(f"[{LOG_PREFIX[0]} {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def port_open(port):
    """True once something on 127.0.0.1:port greets with 220."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.settimeout(2)
            return s.recv(100).startswith(b"220")
    except OSError:
        return False


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def mount_of(path):
    """(source, file system type) of the mount holding path, from
    /proc/mounts; (None, "?") if unknown."""
    path = os.path.realpath(path)
    best, found = "", (None, "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, found = mnt, (parts[0], parts[2])
    except OSError:
        pass
    return found


def fs_type(path):
    """The file system type holding path (from /proc/mounts)."""
    return mount_of(path)[1]


def first_field(path, prefix, value):
    """value(rest of the first line of path that starts with prefix), or
    "?" when there is none or the file cannot be read."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return value(line[len(prefix):])
    except OSError:
        pass
    return "?"


FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000


def spread_dir(workdir, name="posthorn-bench"):
    """workdir/name, made if missing, with the ext2/3/4 "top of a directory
    hierarchy" flag (chattr +T) where the file system has it: ext4 then
    places each directory made in it (an instance, a floor's scratch
    directory) in a block group of its own, as it places the directories
    at the root, instead of beside its parent. Why it matters: ext4
    (without a journal) makes every inode allocation look past the
    inodes its group freed in the last seconds, or minutes while the
    inode table block is dirty, so a run whose instance lands in the
    group where the last run's instances and floors were just deleted
    pays for that garbage on every file it creates (measured: 0.8 to 19 %
    of posthorn's CPU in find_inode_bit, depending on what ran before).
    Returns the directory; where the flag cannot be set, the directory
    works as before."""
    path = pathlib.Path(workdir) / name
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.chmod(0o755)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            flags = struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0)))[0]
            if not flags & FS_TOPDIR_FL:
                fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
        finally:
            os.close(fd)
    except OSError:
        pass
    return path


def machine_info(workdir):
    mem = first_field("/proc/meminfo", "MemTotal:", lambda v: f"{int(v.split()[0]) // 1024} MiB")
    cpu = first_field("/proc/cpuinfo", "model name", lambda v: v.split(":", 1)[1].strip())
    osname = first_field("/etc/os-release", "PRETTY_NAME=", lambda v: v.strip().strip('"'))
    return {"nproc": os.cpu_count(), "memory": mem, "cpu": cpu, "kernel": platform.release(),
            "os": osname, "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
            "workdir": str(workdir), "workdir_fs": fs_type(workdir)}
