"""The probe's HTTP client: base URL, optional API key, a timeout on every request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from toolkit.protocols.common import Failure, ProbeError


class Client:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ProbeError(
                Failure.UNREACHABLE, f"{self.base_url} is not reachable ({type(exc).__name__})"
            ) from None
        _raise_for_status(response)
        return response

    @staticmethod
    def json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ProbeError(
                Failure.MALFORMED,
                f"{response.request.url.path} answered with a body that is not "
                f"JSON: {response.text[:200]!r}",
            ) from None

    def stream_lines(self, path: str, payload: dict[str, Any]) -> Iterator[str]:
        try:
            with self.http.stream("POST", path, json=payload) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(response)
                yield from response.iter_lines()
        except httpx.TransportError as exc:
            raise ProbeError(
                Failure.MALFORMED
                if isinstance(exc, httpx.RemoteProtocolError)
                else Failure.UNREACHABLE,
                f"the stream from {path} broke off ({type(exc).__name__})",
            ) from None


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise ProbeError(
            Failure.ERROR_STATUS,
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}",
        )
