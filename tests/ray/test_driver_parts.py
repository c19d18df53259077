"""The parts of pkg-config/ray_sweep.py that need no cluster: reading a results file back for resume
(this grid's runs only, a cut last line dropped, other bad lines named), the per-task overhead
arithmetic against hand-worked timings, and bad options refused by name."""

import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "pkg-config"))
import ray_sweep  # noqa: E402  (does not import ray itself)

RUNS = [{"id": f"{i}-0000000{i}", "index": i, "spec": {"index": i, "lr": 0.001 * (i + 1)}}
        for i in range(3)]


def line(spec, loss=1.0):
    return json.dumps({"spec": spec, "final_loss": loss})


class ReadDone(unittest.TestCase):
    def read(self, text):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "r.jsonl")
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
            with redirect_stderr(io.StringIO()):
                return ray_sweep.read_done(p, RUNS)

    def test_this_grids_runs_in_file_order_first_line_wins(self):
        other = {"index": 1, "lr": 0.5}  # same index, another grid's spec
        text = "\n".join([line(RUNS[2]["spec"]), line(other), "", line(RUNS[0]["spec"]),
                          line(RUNS[2]["spec"], 9.0), line({"index": 7})]) + "\n"
        done = self.read(text)
        self.assertEqual(list(done), [2, 0])
        self.assertEqual(json.loads(done[2])["final_loss"], 1.0)

    def test_cut_last_line_is_dropped_other_bad_lines_are_named(self):
        full = line(RUNS[1]["spec"])
        self.assertEqual(list(self.read(line(RUNS[0]["spec"]) + "\n" + full[:20])), [0])
        for bad in (full[:20] + "\n" + full + "\n", '{"no_spec": 1}\n' + full + "\n", "[]\n\n" + full):
            with self.assertRaises(SystemExit) as e:
                self.read(bad)
            self.assertIn("line 1 is not a run result", str(e.exception.code))

    def test_missing_file_is_nothing_done(self):
        self.assertEqual(ray_sweep.read_done("/nonexistent/r.jsonl", RUNS), {})


class Overheads(unittest.TestCase):
    def test_ready_is_submit_or_the_previous_run_end_on_that_worker(self):
        tasks = [  # worker 1: two runs; worker 2: one run submitted late
            {"pid": 1, "submit": 0.0, "start": 2.0, "end": 5.0},
            {"pid": 1, "submit": 0.0, "start": 5.25, "end": 7.0},
            {"pid": 2, "submit": 0.0, "start": 3.0, "end": 4.0},
            {"pid": 2, "submit": 6.0, "start": 6.5, "end": 8.0},
        ]
        # worker 1: 2.0 − 0.0, then 5.25 − 5.0 (its previous end); worker 2: 3.0 − 0.0, then 6.5 − 6.0 (submit)
        self.assertEqual(sorted(ray_sweep.overheads(tasks)), [0.25, 0.5, 2.0, 3.0])


class Options(unittest.TestCase):
    def test_bad_options_are_named(self):
        for args, name in ((["--workers", "0"], "--workers"), (["--max-retries", "-1"], "--max-retries"),
                           (["--timeout", "0"], "--timeout"), (["--timeout", "nan"], "--timeout")):
            err = io.StringIO()
            with redirect_stderr(err), self.assertRaises(SystemExit):
                ray_sweep.parse_args(["--grid", "g.json", "--out", "o.jsonl", *args])
            self.assertIn(name, err.getvalue())


if __name__ == "__main__":
    unittest.main(verbosity=2)
