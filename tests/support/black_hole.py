"""A TCP listener that accepts connections and never answers: a service that hangs.

The kernel completes the handshake from the listen backlog, so a client connects at once;
nothing ever reads or writes, so every reply it waits for never comes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def black_hole() -> Iterator[int]:
    """The port of a listener on 127.0.0.1 that never answers, for the ``with`` block."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]
