#!/usr/bin/env python3
"""Run a toyformer sweep grid on a Ray cluster: one Ray task (num_cpus=1) per run.

    python pkg-config/ray_sweep.py --grid sweeps/a1_layers.json --out runs/a1.jsonl \\
        [--binary target/release/examples/sweep] [--address HOST:PORT | --workers N] \\
        [--worker-binary PATH] [--max-retries 3] [--timeout SECONDS] [--stats FILE] [--json]

The Rust binary does all the work: `sweep --list` names the runs (stable ids), each task runs
`sweep --run-one ID` and returns its result line, and `sweep --aggregate FILE` prints the
per-config table at the end. This script only schedules and collects:

- Cluster: `--address` (or RAY_ADDRESS, which `ray job submit` sets) connects to an existing
  cluster; with neither, a local one is started on 127.0.0.1 only (Ray's single-node mode,
  RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) with `--workers` CPUs.
- The binary reaches the workers in the runtime environment's working_dir (default: a copy of
  --binary alone is uploaded with the driver's ray.init and unpacked on every node), or, with
  `--worker-binary PATH`, the workers run PATH as it is and nothing is uploaded: an absolute
  path on a shared file system or a machine image, or inside `ray job submit --working-dir DIR`
  a path relative to DIR (a job's working_dir is on every node and is the tasks' cwd).
- Results stream into `--out` (the format of `sweep --out`: one RunResult a line) as runs
  finish. A file already there is resumed: runs whose result is in it are not run again.
- A run whose worker process or node dies is retried by Ray (`--max-retries`); a run whose
  binary fails is reported and left out, and the script exits 1 after the others finish.
"""

import argparse
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout

ray = None  # imported in main(), after the environment is set for a local cluster


def log(msg):
    print(f"[ray_sweep] {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", required=True, help="sweep grid JSON (src/sweep/grid.rs)")
    p.add_argument("--out", required=True, help="results file (JSON lines), resumed if present")
    p.add_argument("--binary", default="target/release/examples/sweep", help="the sweep binary")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--workers", type=int, help="CPUs of the local cluster (default: all)")
    p.add_argument("--worker-binary",
                   help="the path the workers run (shared, or relative to a job's working_dir) instead of "
                        "an uploaded copy of --binary")
    p.add_argument("--max-retries", type=int, default=3, help="retries of a run whose worker died")
    p.add_argument("--timeout", type=float, help="give up (cancel what is left) after this many seconds")
    p.add_argument("--stats", help="write per-task timings (submit, binary start and end, worker pid) as JSON")
    p.add_argument("--json", action="store_true", help="print the aggregate as JSON (sweep --json)")
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        p.error(f"--workers {args.workers}: give at least 1")
    if args.max_retries < 0:
        p.error(f"--max-retries {args.max_retries}: give 0 or more")
    if args.timeout is not None and not args.timeout > 0:
        p.error(f"--timeout {args.timeout}: give a positive number of seconds")
    return args


def list_runs(binary, grid):
    """The grid's runs as `sweep --list` prints them (id, index, spec, ...)."""
    out = subprocess.run([binary, "--grid", grid, "--list"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"ray_sweep: {binary} --list failed: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def read_done(path, runs):
    """Result lines of `path` that are runs of this grid (same spec at that index), by index, in
    the file's order.
    A last line cut short by an interrupted writer is dropped; other bad lines are errors."""
    done = {}
    if not os.path.exists(path):
        return done
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            index, spec = r["spec"]["index"], r["spec"]
        except (ValueError, KeyError, TypeError) as e:
            if i + 1 == len(lines):
                log(f"{path}: last line cut short, dropped")
                continue
            sys.exit(f"ray_sweep: {path} line {i + 1} is not a run result ({e})")
        if isinstance(index, int) and 0 <= index < len(runs) and runs[index]["spec"] == spec:
            done.setdefault(index, line)
    return done


def rewrite(path, lines):
    """`path` holds exactly `lines` (written beside it, then renamed over it)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    os.replace(tmp, path)


def die_with_parent():
    """In the child, before exec: get SIGKILL when the Ray worker that started it dies, so a
    killed worker leaves no run behind (Linux; elsewhere nothing)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_task(binary, grid_text, run_id):
    """One run: `binary --grid GRID --run-one ID` on this worker; its result line and timings."""
    path = os.path.abspath(binary)  # relative: to the task's working_dir
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # an uploaded copy may lose its mode
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as g:
        g.write(grid_text)
    try:
        start = time.time()
        proc = subprocess.run([path, "--grid", g.name, "--run-one", run_id],
                              capture_output=True, text=True, preexec_fn=die_with_parent)
        end = time.time()
    finally:
        os.unlink(g.name)
    if proc.returncode != 0:
        raise RuntimeError(f"run {run_id}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    import ray as worker_ray  # on the worker

    return {"line": proc.stdout.strip().splitlines()[-1], "start": start, "end": end,
            "pid": os.getpid(), "node": worker_ray.get_runtime_context().get_node_id()}


def connect(args, runtime_env):
    """ray.init: the given cluster, RAY_ADDRESS's (set inside `ray job submit`), or a local one.
    A local working_dir can only be uploaded for the whole driver (ray.init), not per task."""
    opts = {"logging_level": "ERROR", "log_to_driver": False, "runtime_env": runtime_env or None}
    if args.address:
        ray.init(address=args.address, **opts)
    elif os.environ.get("RAY_ADDRESS"):
        ray.init(**opts)
    else:
        ray.init(num_cpus=args.workers, include_dashboard=False, _node_ip_address="127.0.0.1", **opts)
    log(f"cluster: {ray.cluster_resources().get('CPU', 0):.0f} CPUs")


def ship(args, tmpdir):
    """(binary as the tasks name it, runtime_env): a copy in a working_dir, or --worker-binary."""
    if args.worker_binary:
        return args.worker_binary, {}
    shutil.copy2(args.binary, os.path.join(tmpdir, "sweep"))
    return "./sweep", {"working_dir": tmpdir}


def overheads(tasks):
    """Ray's share of each task: binary start − max(submit, the previous run's end on the same
    worker process), i.e. from the moment the task could start to the binary starting."""
    by_worker = {}
    for t in tasks:
        by_worker.setdefault(t["pid"], []).append(t)
    out = []
    for ts in by_worker.values():
        ts.sort(key=lambda t: t["start"])
        prev_end = None
        for t in ts:
            ready = t["submit"] if prev_end is None else max(t["submit"], prev_end)
            out.append(t["start"] - ready)
            prev_end = t["end"]
    return out


def collect(refs, out_path, timeout):
    """Waits for the tasks, appending each result line to `out_path` as it comes; returns the
    per-task timings and the failures."""
    tasks, failed = [], []
    deadline = None if timeout is None else time.time() + timeout
    with open(out_path, "a", encoding="utf-8") as out:
        while refs:
            left = None if deadline is None else max(0.0, deadline - time.time())
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=left)
            if not ready:
                for ref in refs:
                    ray.cancel(ref, force=True)
                sys.exit(f"ray_sweep: timed out after {timeout} s with {len(refs)} runs left")
            ref = ready[0]
            entry, submit = refs.pop(ref)
            try:
                r = ray.get(ref)
            except ray.exceptions.RayError as e:
                failed.append(entry["id"])
                log(f"run {entry['id']} failed: {e}")
                continue
            if json.loads(r["line"])["spec"] != entry["spec"]:
                sys.exit(f"ray_sweep: run {entry['id']} returned another run's result")
            out.write(r["line"] + "\n")
            out.flush()
            tasks.append({"id": entry["id"], "submit": submit, "start": r["start"], "end": r["end"],
                          "pid": r["pid"], "node": r["node"]})
            log(f"[{len(tasks)}/{len(tasks) + len(refs)}] run {entry['id']} done "
                f"({r['end'] - r['start']:.1f} s, worker {r['pid']})")
    return tasks, failed


def import_ray(args):
    """Imports Ray; without a cluster address, in single-node mode first (Ray reads it on import),
    so the local cluster listens on 127.0.0.1 only."""
    global ray
    if not args.address and not os.environ.get("RAY_ADDRESS"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray as ray_module

    ray = ray_module


def main(argv):
    args = parse_args(argv)
    import_ray(args)
    if not os.path.isfile(args.binary):
        sys.exit(f"ray_sweep: --binary {args.binary} not found (cargo build --release --example sweep)")
    try:
        with open(args.grid, encoding="utf-8") as f:
            grid_text = f.read()
    except OSError as e:
        sys.exit(f"ray_sweep: --grid {args.grid}: {e.strerror}")
    runs = list_runs(args.binary, args.grid)
    done = read_done(args.out, runs)
    rewrite(args.out, list(done.values()))  # in the file's order; foreign and cut lines dropped
    todo = [r for r in runs if r["index"] not in done]
    log(f"{len(runs)} runs, {len(done)} already in {args.out}, {len(todo)} to run")
    tasks, failed, wall = [], [], 0.0
    if todo:
        # Ray prints its own messages (a worker died, a retry) on stdout: keep stdout for the table
        with tempfile.TemporaryDirectory(prefix="toyformer-sweep-") as tmpdir, redirect_stdout(sys.stderr):
            binary, env = ship(args, tmpdir)
            connect(args, env)
            remote = ray.remote(num_cpus=1)(run_task).options(max_retries=args.max_retries)
            t0 = time.time()
            refs = {}
            for r in todo:
                refs[remote.remote(binary, grid_text, r["id"])] = (r, time.time())
            tasks, failed = collect(refs, args.out, args.timeout)
            wall = time.time() - t0
            ray.shutdown()
    summarise(args, tasks, failed, wall)
    agg = [args.binary, "--grid", args.grid, "--aggregate", args.out] + (["--json"] if args.json else [])
    rc = subprocess.run(agg).returncode
    return 1 if failed or rc != 0 else 0


def summarise(args, tasks, failed, wall):
    """Logs the wall time and Ray's overhead per task; writes --stats."""
    over = overheads(tasks)
    if tasks:
        log(f"{len(tasks)} runs in {wall:.2f} s (first submit to last result); Ray overhead per task "
            f"(ready to binary start): median {1000 * statistics.median(over):.0f} ms, "
            f"max {1000 * max(over):.0f} ms; {len(failed)} failed")
    if args.stats:
        with open(args.stats, "w", encoding="utf-8") as f:
            json.dump({"ran": len(tasks), "failed": failed, "wall_s": wall, "overhead_s": over,
                       "tasks": tasks}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
