"""Simulator throughput: requests/s for small and list requests over keep-alive connections.

The simulator runs as its own process (``python -m lore_daemon.sim``), as the daemon sees it.
Two clients drive it: a lean asyncio HTTP/1.1 client (so the figure is the server's, not the
client's) and httpx (what the daemon actually uses). Prints figures; asserts nothing.

    .venv/bin/python tests/bench/sim_throughput.py [--seconds 3] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import httpx

TOKEN = "bench-token"


async def _raw_worker(host: str, port: int, path: str, deadline: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nPRIVATE-TOKEN: {TOKEN}\r\n\r\n".encode()
    done = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head[:40])
            done += 1
    finally:
        counts.append(done)
        writer.close()


async def raw_rate(base_url: str, path: str, seconds: float, connections: int) -> float:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    counts: list[int] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_raw_worker(host, int(port), path, deadline, counts) for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - started)


async def httpx_rate(base_url: str, path: str, seconds: float, connections: int) -> float:
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"PRIVATE-TOKEN": TOKEN}, limits=limits, trust_env=False
    ) as client:
        done = 0
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.get(path)).raise_for_status()
                done += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--issues", type=int, default=50_000)
    args = parser.parse_args()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lore_daemon.sim",
            "--issues",
            str(args.issues),
            "--mrs",
            "5000",
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = json.loads(proc.stdout.readline())["base_url"]
        print(f"simulator with {args.issues:,} issues ready in {time.perf_counter() - started:.2f} s")
        cases = [
            ("GET /api/v4/version", "/api/v4/version"),
            ("GET one issue", "/api/v4/projects/1/issues/4242"),
            ("GET issue discussions", "/api/v4/projects/1/issues/4242/discussions"),
            (
                "GET 100 issues (sync walk page)",
                "/api/v4/projects/1/issues?order_by=updated_at&sort=asc&per_page=100&page=7"
                "&updated_after=2024-01-01T00:00:00.000Z",
            ),
        ]
        for label, path in cases:
            raw = asyncio.run(raw_rate(base_url, path, args.seconds, args.connections))
            via_httpx = asyncio.run(httpx_rate(base_url, path, args.seconds, args.connections))
            print(
                f"{label:34s} {raw:8.0f} req/s (raw client)  {via_httpx:8.0f} req/s (httpx)  "
                f"[{args.connections} keep-alive connections]"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
