"""Whether the Hugging Face hub can be reached, asked quickly: the probe the model loader
(``models``) and the GLUE hub loader (``glue.load_hub_split``) run before they download, so that
an offline machine gets a clear error at once instead of a minute of retries.

Not here: downloading.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

HUB_PROBE_TIMEOUT = 2.5  # seconds


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the hub host opens within ``timeout`` seconds.

    ``HF_HUB_OFFLINE=1`` means no. The probe (DNS included) runs in a daemon thread so that a
    resolver that never answers cannot stall the caller beyond the timeout.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    parsed = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = parsed.hostname or "huggingface.co", parsed.port or (80 if parsed.scheme == "http" else 443)
    answer: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(answer and answer[0])
