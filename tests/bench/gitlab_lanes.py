"""Benchmark: an interactive GitLab request while a standard sync's requests fill the queue.

The simulator runs in its own process with latency L per request. One ``GitLabClient``
(concurrency 8, as the daemon's default) keeps ``--background`` dependent fetches outstanding (each
one that finishes is replaced), as a standard sync's drain does; meanwhile single interactive
requests (one issue, as a surgical preflight makes) are timed one after another. Two rounds side
by side: the load in the background lane (what the standard sync does) and, for reference, in the
interactive lane too (one FIFO queue for everybody, as before lanes). Prints figures only.

    .venv/bin/python tests/bench/gitlab_lanes.py [--latency-ms 50] [--background 200] [--samples 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from lore_daemon.gitlab import GitLabClient, Lane, lane


def start_simulator(latency_ms: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "lore_daemon.sim", "--issues", "600", "--mrs", "10", "--notes-per-entity", "4",
         "--latency-ms", str(latency_ms)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


async def one_round(sim: dict[str, str], load_lane: Lane, background: int, samples: int) -> list[float]:
    async with GitLabClient(sim["base_url"], sim["token"], concurrency=8) as client:
        await client.get_user()  # warm the connection pool

        stop = asyncio.Event()
        done = [0]

        async def load(worker: int) -> None:  # one outstanding request at a time, until stopped
            with lane(load_lane):
                iid = worker
                while not stop.is_set():
                    await client.list_discussions(1, "issue", 1 + iid % 600)
                    done[0] += 1
                    iid += background

        workers = [asyncio.create_task(load(w)) for w in range(background)]
        await asyncio.sleep(0.3)  # the queue is standing
        waits = []
        for k in range(samples):
            started = time.perf_counter()
            await client.get_issue(1, 1 + k)
            waits.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*workers)
        print(f"  load in the {load_lane} lane: {done[0]} background requests served meanwhile")
        return waits


async def main(latency_ms: int, background: int, samples: int) -> None:
    proc, sim = start_simulator(latency_ms)
    try:
        print(f"simulator pid {sim['pid']} (separate process), L = {latency_ms} ms, concurrency 8, "
              f"{background} queued background requests")
        results = {}
        for load_lane in ("background", "interactive"):
            results[load_lane] = await one_round(sim, load_lane, background, samples)
        for load_lane, waits in results.items():
            samples_ms = ", ".join(f"{w:.0f}" for w in waits)
            median = statistics.median(waits)
            print(f"interactive request, load in the {load_lane:<11} lane: "
                  f"median {median:7.1f} ms  max {max(waits):7.1f} ms  (samples: {samples_ms})")
        print(f"ratio of medians (FIFO / lanes): "
              f"{statistics.median(results['interactive']) / statistics.median(results['background']):.1f}x")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--background", type=int, default=200)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.latency_ms, args.background, args.samples))
