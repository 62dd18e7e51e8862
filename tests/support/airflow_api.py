"""The Airflow REST API as an outsider sees it: which addresses its port listens on, and
what a call answers with and without a token (``POST /auth/token``, ``Authorization: Bearer``)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


def _address(hex_ip: str) -> str:
    """/proc/net/tcp{,6} print an address as 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, words)


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on TCP ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            ip, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.add(_address(ip))
    return found


def status(base_url: str, path: str = "/api/v2/dags", token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base_url}{path}", headers=headers, timeout=30).status_code


def token(base_url: str, password: str, username: str = "admin") -> str:
    response = httpx.post(
        f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=30
    )
    response.raise_for_status()
    return response.json()["access_token"]
