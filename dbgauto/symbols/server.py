"""Symbol-server client (HTTP, as WinDbg's symsrv speaks it) and the finder that walks a symbol path.

For a key the server is asked for the file, then its CAB twin (``name.pd_``), then ``file.ptr``; 404 on all
three means "not there", remembered for the rest of the run (the negative cache) so a missing PDB costs
one round of requests per run, not one per dump. Every request has a socket timeout and the whole answer a
deadline (a server that drips bytes cannot stall a batch); failures other than 404 (timeouts, 5xx,
truncated bodies) are retried a bounded number of times, then reported in ``errors``, never raised into
the dump's analysis. Proxies come from the usual environment variables (``urllib``'s ``ProxyHandler``).
"""

from __future__ import annotations

import contextlib
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dbgauto.errors import SymbolError
from dbgauto.symbols.store import LocalStore, SymbolKey, parse_file_ptr
from dbgauto.symbols.sympath import PathElement, SymbolPath, is_url, local_dir

__all__ = ["FinderStats", "SymbolFinder", "SymbolServer"]

USER_AGENT = "Microsoft-Symbol-Server/10.0.0.0 (dbgauto)"
MAX_DOWNLOAD = 2 << 30


class _NotFound(Exception):
    pass


class SymbolServer:
    """One HTTP(S) symbol server."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 15.0,
        retries: int = 2,
        backoff: float = 0.25,
        max_bytes: int = MAX_DOWNLOAD,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_bytes = max_bytes
        if opener is None:
            host = (urllib.parse.urlsplit(self.url).hostname or "").lower()
            # a loopback server is never reached through a proxy; everything else follows the environment
            proxies = {} if host in ("localhost", "127.0.0.1", "::1") else None
            opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies))
        self._opener = opener
        self._missing: set[str] = set()
        self.requests = 0

    def __repr__(self) -> str:
        return f"SymbolServer({self.url!r})"

    def _get_once(self, rel: str) -> bytes:
        req = urllib.request.Request(f"{self.url}/{rel}", headers={"User-Agent": USER_AGENT})
        deadline = time.monotonic() + self.timeout
        self.requests += 1
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                length = resp.headers.get("Content-Length")
                expected = int(length) if length and length.isdigit() else None
                if expected is not None and expected > self.max_bytes:
                    raise SymbolError(req.full_url, f"answer of {expected} bytes exceeds {self.max_bytes}")
                chunks: list[bytes] = []
                got = 0
                while True:
                    if time.monotonic() > deadline:
                        raise SymbolError(req.full_url, f"answer not complete within {self.timeout:g}s")
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > self.max_bytes:
                        raise SymbolError(req.full_url, f"answer exceeds {self.max_bytes} bytes")
                    chunks.append(chunk)
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                raise _NotFound from None
            raise SymbolError(req.full_url, f"HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, TimeoutError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise SymbolError(req.full_url, f"request failed: {reason}") from None
        if expected is not None and got != expected:
            raise SymbolError(req.full_url, f"truncated answer: {got} of {expected} bytes")
        return b"".join(chunks)

    def _get(self, rel: str) -> bytes | None:
        """The body, None on 404; after ``retries`` failed attempts the last error is raised."""
        if rel in self._missing:
            return None
        last: SymbolError | None = None
        for attempt in range(self.retries + 1):
            try:
                return self._get_once(rel)
            except _NotFound:
                self._missing.add(rel)
                return None
            except SymbolError as e:
                last = e
                if attempt < self.retries:
                    time.sleep(self.backoff * (attempt + 1))
        assert last is not None
        raise last

    def fetch(self, key: SymbolKey) -> bytes | None:
        """The file's bytes (decompressed, redirects followed once); None when the server does not have it."""
        data = self._get(key.path)
        if data is not None:
            return data
        packed = self._get(key.compressed_path)
        if packed is not None:
            return LocalStore.unpack(packed, f"{self.url}/{key.compressed_path}", key)
        ptr = self._get(key.pointer_path)
        if ptr is None:
            return None
        where = parse_file_ptr(ptr, f"{self.url}/{key.pointer_path}")
        if where is None:
            return None
        if is_url(where):
            target = SymbolServer(
                where.rsplit("/", 1)[0], timeout=self.timeout, retries=self.retries, opener=self._opener
            )
            return target._get(where.rsplit("/", 1)[1])
        p = local_dir(where)
        if p is not None and p.is_file():
            return p.read_bytes()
        return None


@dataclass
class FinderStats:
    hits: int = 0
    misses: int = 0
    downloads: int = 0
    errors: list[str] = field(default_factory=list)


class SymbolFinder:
    """Finds a key along a symbol path: local stores first in each element, servers after, copying what a
    server gives into the element's downstream stores (or its cache, or the default cache)."""

    def __init__(
        self,
        path: SymbolPath,
        *,
        cache_dir: Path,
        allow_network: bool = True,
        server_factory: Callable[[str], SymbolServer] | None = None,
        missing: set[SymbolKey] | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        """``missing``: keys known to be absent along this path, shared by the finders of one process while the
        stores are unchanged (a batch worker asks for the same absent images for every dump); ``on_stored``:
        called after this finder put a file into a store (what remembers the stores' state forgets it)."""
        self.path = path
        self.cache_dir = Path(cache_dir)
        self.allow_network = allow_network
        self._servers: dict[str, SymbolServer] = {}
        self._factory = server_factory or SymbolServer
        self._missing: set[SymbolKey] = missing if missing is not None else set()
        self._on_stored = on_stored
        self.stats = FinderStats()

    def _store(self, text: str, *, flat: bool = False) -> LocalStore | None:
        d = self.cache_dir if text == "" else local_dir(text)
        return LocalStore(d, flat=flat) if d is not None else None

    def _server(self, url: str) -> SymbolServer:
        if url not in self._servers:
            self._servers[url] = self._factory(url)
        return self._servers[url]

    def _find_in(self, element: PathElement, key: SymbolKey) -> Path | None:
        cache = self._store(element.cache) if element.cache is not None else None
        if element.kind == "dir":
            chain: list[LocalStore | str] = [s for s in [cache, self._store(element.stores[0], flat=True)] if s]
        else:
            chain = [cache] if cache else []
            for s in element.stores:
                chain.append(s if is_url(s) else self._store(s))  # type: ignore[arg-type]
        downstream: list[LocalStore] = []
        for link in chain:
            if link is None:
                continue
            if isinstance(link, LocalStore):
                found = link.get(key)
                if found is not None:
                    for d in downstream:
                        with contextlib.suppress(OSError):
                            d.put(key, found.read_bytes())
                    if downstream:
                        self._stored()
                    return downstream[0].path_for(key) if downstream else found
                downstream.append(link)
                continue
            if not self.allow_network:
                continue
            try:
                data = self._server(link).fetch(key)
            except SymbolError as e:
                self.stats.errors.append(str(e))
                continue
            if data is None:
                continue
            self.stats.downloads += 1
            targets = downstream or [LocalStore(self.cache_dir)]
            first: Path | None = None
            for d in targets:
                try:
                    p = d.put(key, data)
                except OSError as e:
                    self.stats.errors.append(f"{d.root}: cannot store {key}: {e}")
                    continue
                first = first or p
            if first is not None:
                self._stored()
            return first
        return None

    def _stored(self) -> None:
        if self._on_stored is not None:
            self._on_stored()

    def find(self, key: SymbolKey) -> Path | None:
        """The local path of ``key`` (downloaded if needed), or None; missing keys are not asked for again."""
        if key in self._missing:
            self.stats.misses += 1
            return None
        for element in self.path.elements:
            found = self._find_in(element, key)
            if found is not None:
                self.stats.hits += 1
                return found
        self._missing.add(key)
        self.stats.misses += 1
        return None
