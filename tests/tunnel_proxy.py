"""An HTTP proxy on loopback that only tunnels: it answers ``CONNECT host:port`` with 200 and then
relays bytes both ways, as a company's egress proxy does for HTTPS. It records each CONNECT request
(its line and headers) and can refuse them all with another status."""

from __future__ import annotations

import select
import socket
import threading


class TunnelProxy:
    def __init__(self, *, refuse_with: str | None = None):
        self.refuse_with = refuse_with  # e.g. "407 Proxy Authentication Required"
        self.connects: list[tuple[str, dict[str, str]]] = []  # (request line, headers by lower-case name)
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join()
        self._listener.close()
        for thread in self._threads:
            thread.join(2)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if not select.select([self._listener], [], [], 0.02)[0]:
                continue
            client, _ = self._listener.accept()
            thread = threading.Thread(target=self._tunnel, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _tunnel(self, client: socket.socket) -> None:
        upstream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(65536)
                if not chunk:
                    return
                head += chunk
            line, *fields = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            headers = {name.strip().lower(): value.strip()
                       for name, _, value in (field.partition(":") for field in fields)}
            self.connects.append((line, headers))
            method, authority, _ = line.split(" ")
            if method != "CONNECT" or self.refuse_with:
                client.sendall(f"HTTP/1.1 {self.refuse_with or '405 Method Not Allowed'}\r\n"
                               "Content-Length: 0\r\n\r\n".encode())
                return
            host, _, port = authority.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=2)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._relay(client, upstream)
        except OSError:
            return
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        while not self._stop.is_set():
            readable, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
