"""The elapsed time of a 100,000-user initial cycle at GoTo's rate, projected from measured parts
(figures go to docs/benchmarks.md; nothing is asserted).

A cycle at 10 req/s runs as a chain of invocations of CYCLE_TIME_BUDGET_SECONDS each. The first
pays the run's fixed part (reads before its first create, the cycle's end); each later one first
pays a hand-over: from the last create of the invocation before it to its own first create (the
end of that invocation, a new process, and the reads it repeats: the assignments, the links and
GoTo's listing, which grow with the users already done). The hand-over is measured by
`bench/scale.py` at a few points (users done, seconds) and interpolated linearly between them
(extrapolated from the last two beyond them); the budget's clock starts with the invocation, so a
longer hand-over leaves fewer creates to that invocation and the chain gets longer (the first
invocation's own reads are counted in the fixed part, not taken from its budget).

    python bench/projection.py --handover 33165:13.3,61393:30.0,89146:51.5 \\
        --pace 9.97 --fixed 7.3 [--budget 1500] [--users 100000] [--queue-latency 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.settings import SETTINGS


def parse_points(text: str) -> list[tuple[float, float]]:
    """ "done:seconds,..." -> sorted (users done, seconds) points."""
    points = []
    for part in filter(None, text.split(",")):
        done, _, seconds = part.partition(":")
        points.append((float(done.replace("_", "")), float(seconds)))
    if not points:
        raise ValueError("--handover needs at least one users:seconds point")
    return sorted(points)


def handover_at(done: float, points: list[tuple[float, float]]) -> float:
    """The hand-over with `done` users done: linear through the measured points, and along the
    nearest segment outside them (one point: in proportion to the users done)."""
    if len(points) == 1:
        x, y = points[0]
        return y * done / x
    segment = next((i for i in range(len(points) - 1) if done <= points[i + 1][0]), len(points) - 2)
    (x0, y0), (x1, y1) = points[segment], points[segment + 1]
    return max(0.0, y0 + (y1 - y0) * (done - x0) / (x1 - x0))


def project(
    users: int, pace: float, fixed: float, budget: float, points: list[tuple[float, float]], queue_latency: float
) -> dict[str, object]:
    """The chain of invocations, simulated: elapsed seconds, invocations, seconds spent in hand-overs."""
    done, elapsed, invocations, handovers = 0.0, fixed, 0, 0.0
    while done < users:
        pause = handover_at(done, points) + queue_latency if invocations else 0.0
        work = budget - pause
        if work <= 0:
            raise ValueError(f"a hand-over of {pause:.0f} s with {done:,.0f} users done leaves no time to the budget")
        created = min(users - done, work * pace)
        elapsed += pause + created / pace
        handovers += pause
        done += created
        invocations += 1
    return {"elapsed s": round(elapsed), "invocations": invocations, "hand-overs s": round(handovers)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handover", required=True, help="users done:seconds,... measured by bench/scale.py")
    parser.add_argument("--pace", type=float, required=True, help="creates/s between the first and the last create")
    parser.add_argument("--fixed", type=float, required=True, help="the first invocation's fixed part, s")
    parser.add_argument("--rate", type=float, default=10.0, help="GoTo's limit, req/s (N / rate is the goal's base)")
    parser.add_argument("--budget", type=float, default=float(SETTINGS["cycle_time_budget_seconds"].default),
                        help="CYCLE_TIME_BUDGET_SECONDS")  # fmt: skip
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--queue-latency", type=float, default=2.0,
                        help="until the continuation message is picked up (host.json maxPollingInterval)")  # fmt: skip
    args = parser.parse_args()
    out = project(args.users, args.pace, args.fixed, args.budget, parse_points(args.handover), args.queue_latency)
    elapsed, ideal = float(str(out["elapsed s"])), args.users / args.rate
    out |= {"N / rate s": round(ideal), "elapsed h": f"{elapsed / 3600:.2f}"}
    out["over N / rate"] = f"{100 * (elapsed / ideal - 1):.1f} %"
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
