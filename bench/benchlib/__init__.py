"""benchlib - the benchmark scripts' shared machinery (bench/ingest's,
split out so that bench/inject, bench/relay, bench/access, bench/abuse
and bench/tls build on it rather than on a script):

  util         paths, constants (SERVER_CPU, CLIENT_CPU, ...), BenchError,
               log, wait_for, free_port, machine_info
  instances    PostfixInstance, PosthornInstance (made by
               tools/mkinstance.py), pin(), affinity_preexec()
  accounting   CPU by cgroup and /proc, PSS sampling, per-program CPU
               and context switches, block device counters
  client       SMTP probe and load clients, smtp-source argv, DirWatch
  measure      latency probe, rate round, durability audit, syscall count
  floor        the floors: bench/sync-floor.c (posthorn's syncs alone) and
               the SMTP dialogue with smtp-sink
  report       bench/ingest's goals, ratios, text tables

A script does `sys.path.insert(0, str(BENCH_DIR)); import benchlib` and
uses benchlib.NAME (every public name of the modules above is here) or
the modules.  Standard library only."""
from . import accounting, client, floor, instances, measure, report, util  # noqa: F401
from .accounting import *  # noqa: F401,F403
from .client import *  # noqa: F401,F403
from .floor import *  # noqa: F401,F403
from .instances import *  # noqa: F401,F403
from .measure import *  # noqa: F401,F403
from .util import *  # noqa: F401,F403
