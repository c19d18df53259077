"""pkg-config/ray_sweep.py on a local Ray cluster (127.0.0.1, 2 CPUs) that this test starts and
stops: the cluster's results equal `examples/sweep --out` of the same grid exactly; a Ray worker
killed mid-run (by pid) still leaves every run done; a second run with the file present runs
nothing; `--list` over shards covers the grid once.

    make test-ray      (or: .venv-ray/bin/python -m unittest discover -s tests/ray -v)

Every wait is bounded, and the cluster is stopped (its whole session, by the session id of the
`ray start` process this test started) even when a test fails or the run is interrupted.
"""

import atexit
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SWEEP_BIN", os.path.join(ROOT, "target", "release", "examples", "sweep"))
DRIVER = os.path.join(ROOT, "pkg-config", "ray_sweep.py")
RAY = os.path.join(os.path.dirname(sys.executable), "ray")
# 6 runs (3 configs × 2 seeds) of a few seconds each on one core.
GRID = {"name": "ray-test", "task": "sort", "n": 3, "max_num": 6, "n_layers": 1,
        "d_model": 16, "d_head": 8, "n_heads": [1, 2, 4], "steps": 5000, "batch_size": 32,
        "seed": [0, 1], "eval_samples": 64, "curve_samples": 32, "eval_every": 500}
CLUSTER_START_S = 120
# Ray's single-node mode: the cluster and every process of it use and listen on 127.0.0.1 only
# (otherwise Ray swaps 127.0.0.1 for the machine's outward address). `ray start` and the driver
# inherit it.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
# Token authentication with a token of this test's own, given to `ray start` and the driver alike, so
# neither reads or writes ~/.ray/auth_token (Ray turns token mode on when that file exists).
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
os.environ.pop("RAY_ADDRESS", None)
# `timeout` (make test-ray) ends the test with SIGTERM: exit normally, so atexit stops the cluster.
signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM"))
DRIVER_S = 400


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid):
    """Pids of the processes in session `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            pids.append(int(d))
    return pids


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def parent(pid):
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


class Cluster:
    """`ray start --head --block` in a session of its own; stop() ends that whole session."""

    def __init__(self, tmp, cpus):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        args = [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                f"--port={self.port}", f"--num-cpus={cpus}", "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats",
                f"--temp-dir={tmp}"]
        os.makedirs(tmp, exist_ok=True)
        self.log = open(os.path.join(tmp, "ray-start.log"), "w", encoding="utf-8")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        atexit.register(self.stop)
        deadline = time.time() + CLUSTER_START_S
        while True:
            with open(self.log.name, encoding="utf-8") as f:
                text = f.read()
            if "Ray runtime started" in text:
                return
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"Ray head did not come up:\n{text[-3000:]}")
            time.sleep(0.5)

    def stop(self):
        sid = self.proc.pid  # start_new_session: the session id is the leader's pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self.log.close()


def results(path):
    """Index → parsed RunResult of a JSON-lines file, each index once."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                assert r["spec"]["index"] not in out, f"run {r['spec']['index']} twice in {path}"
                out[r["spec"]["index"]] = r
    return out


class RaySweep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isfile(BIN):
            raise unittest.SkipTest(f"{BIN} missing: cargo build --release --example sweep")
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="rt-")  # short: Ray's socket paths
        cls.tmp = cls.tmpdir.name
        cls.grid = os.path.join(cls.tmp, "grid.json")
        with open(cls.grid, "w", encoding="utf-8") as f:
            json.dump(GRID, f)
        try:
            cls.cluster = Cluster(os.path.join(cls.tmp, "ray"), cpus=2)
        except BaseException:
            cls.tmpdir.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.stop()
        cls.tmpdir.cleanup()

    def sweep(self, *args):
        return subprocess.run([BIN, "--grid", self.grid, *args], capture_output=True, text=True,
                              timeout=DRIVER_S, check=True).stdout

    def driver(self, out, stats, *extra):
        cmd = [sys.executable, DRIVER, "--grid", self.grid, "--out", out, "--binary", BIN,
               "--address", self.cluster.address, "--timeout", str(DRIVER_S - 60),
               "--stats", stats, "--json", *extra]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def test_list_over_shards_covers_the_grid_once(self):
        full = [json.loads(x) for x in self.sweep("--list").splitlines()]
        self.assertEqual([r["index"] for r in full], list(range(6)))
        self.assertEqual(len({r["id"] for r in full}), 6)
        for n in (1, 2, 4, 7):
            seen = []
            for k in range(n):
                part = [json.loads(x) for x in self.sweep("--list", "--shard", f"{k}/{n}").splitlines()]
                self.assertTrue(all(r["index"] % n == k for r in part))
                seen += part
            self.assertEqual(sorted(seen, key=lambda r: r["index"]), full, f"N={n}")

    def test_cluster_equals_local_survives_a_killed_worker_and_resumes(self):
        local_out = os.path.join(self.tmp, "local.jsonl")
        local_summary = json.loads(self.sweep("--out", local_out, "--threads", "2", "--json"))
        out, stats = os.path.join(self.tmp, "ray.jsonl"), os.path.join(self.tmp, "stats.json")
        drv = self.driver(out, stats)
        try:
            victim, run_args = self.kill_a_worker_mid_run(drv)
            stdout, stderr = drv.communicate(timeout=DRIVER_S)
        finally:
            if drv.poll() is None:
                drv.kill()
                drv.wait(timeout=30)
        self.assertEqual(drv.returncode, 0, stderr)
        # same numbers exactly, any order; the aggregate (by the Rust code) the same too
        self.assertEqual(results(out), results(local_out))
        self.assertEqual(self.summary(stdout, stderr), local_summary)
        # the killed run was redone on another worker process
        with open(stats, encoding="utf-8") as f:
            st = json.load(f)
        self.assertEqual(st["ran"], 6)
        self.assertEqual(st["failed"], [])
        redone = [t for t in st["tasks"] if t["id"] == run_args]
        self.assertEqual(len(redone), 1)
        self.assertNotEqual(redone[0]["pid"], victim)
        # a second run with the file present runs nothing and leaves the file as it was
        with open(out, "rb") as f:
            before = f.read()
        drv = self.driver(out, stats)
        stdout, stderr = drv.communicate(timeout=DRIVER_S)
        self.assertEqual(drv.returncode, 0, stderr)
        self.assertIn("6 already in", stderr)
        self.assertIn("0 to run", stderr)
        with open(stats, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["ran"], 0)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(self.summary(stdout, stderr), local_summary)

    def test_worker_binary_on_a_shared_path(self):
        # --worker-binary: nothing uploaded, the workers run the path given (here the build's own)
        grid = os.path.join(self.tmp, "small.json")
        with open(grid, "w", encoding="utf-8") as f:
            json.dump({**GRID, "n_heads": 2, "steps": 300}, f)
        local_out, out = os.path.join(self.tmp, "small-local.jsonl"), os.path.join(self.tmp, "small.jsonl")
        subprocess.run([BIN, "--grid", grid, "--out", local_out], capture_output=True, timeout=DRIVER_S,
                       check=True)
        r = subprocess.run([sys.executable, DRIVER, "--grid", grid, "--out", out, "--binary", BIN,
                            "--worker-binary", os.path.abspath(BIN), "--address", self.cluster.address,
                            "--timeout", str(DRIVER_S - 60)], capture_output=True, text=True, timeout=DRIVER_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(results(out)), 2)
        self.assertEqual(results(out), results(local_out))

    def summary(self, stdout, stderr):
        try:
            return json.loads(stdout)
        except ValueError as e:
            self.fail(f"driver's stdout is not the aggregate JSON ({e}): {stdout!r}\n{stderr}")

    def kill_a_worker_mid_run(self, drv):
        """Waits for a `sweep --run-one` process, kills its parent (the Ray worker) with SIGKILL;
        returns (worker pid, run id)."""
        deadline = time.time() + DRIVER_S
        while time.time() < deadline and drv.poll() is None:
            for pid in os.listdir("/proc"):
                cmd = cmdline(pid) if pid.isdigit() else []
                if b"--run-one" in cmd and cmd[0].endswith(b"sweep"):
                    run_id = cmd[cmd.index(b"--run-one") + 1].decode()
                    try:
                        worker = parent(int(pid))
                        # a worker of this test's cluster (its session), named ray::run_task
                        ours = worker in session_pids(self.cluster.proc.pid)
                        if not ours or not any(b"ray::" in a for a in cmdline(worker)):
                            continue
                        os.kill(worker, signal.SIGKILL)
                    except (OSError, ValueError):
                        continue  # the run ended meanwhile: look for another
                    return worker, run_id
            time.sleep(0.05)
        self.fail(f"no run of the sweep binary seen on the cluster; driver: {drv.communicate()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
