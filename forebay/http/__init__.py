"""The data plane's HTTP/1.1 server protocol (run by uvicorn's server)."""

from forebay.http.protocol import HttpProtocol

__all__ = ["HttpProtocol"]
