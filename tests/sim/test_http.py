"""The HTTP layer: keep-alive, many concurrent connections, malformed requests."""

from __future__ import annotations

import asyncio
import socket

import httpx

from lore_daemon.sim import SimServer


def test_keep_alive_reuses_one_connection(sim: SimServer, api: httpx.Client) -> None:
    opened_before = sim.control.stats()["connections_opened"]  # the control client's own connection
    for iid in range(1, 11):
        assert api.get(f"/projects/1/issues/{iid}").status_code == 200
    stats = sim.control.stats()
    assert stats["requests"] == 10 and stats["connections_opened"] == opened_before + 1


async def test_sixteen_requests_in_flight_at_once(sim: SimServer) -> None:
    sim.control.set_latency(300)
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(
        base_url=f"{sim.base_url}/api/v4",
        headers={"PRIVATE-TOKEN": sim.token},
        limits=limits,
        trust_env=False,
    ) as client:
        answers = await asyncio.gather(*(client.get(f"/projects/1/issues/{i}") for i in range(1, 17)))
    assert all(a.status_code == 200 for a in answers)
    assert sim.control.stats()["max_in_flight"] == 16


def test_garbage_request_line_gets_400_and_close(sim: SimServer) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = sock.recv(4096)
        assert data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data


def test_http_1_0_without_keep_alive_closes(sim: SimServer) -> None:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(f"GET /api/v4/version HTTP/1.0\r\nPRIVATE-TOKEN: {sim.token}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"}")


def test_stop_closes_held_connections_promptly() -> None:
    server = SimServer().start()
    server.control.add_fault(r"/user$", kind="timeout")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            f"GET /api/v4/user HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {server.token}\r\n\r\n".encode()
        )
        server.stop()
        assert sock.recv(10) == b""  # closed without an answer
