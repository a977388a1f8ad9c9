"""Run a Prism mock of LINE's Messaging API spec and collect the violations it reports.

Why this exists: the contract test points the bot at a Prism mock built from LINE's own
OpenAPI document, so every request the bot sends is checked against the spec instead of
against our own idea of it (which is all the in-process fake LINE can check).

Plain Python on purpose (no pytest fixtures here) so fixtures, ad-hoc scripts and the
harness's own tests can all share it.

Facts found by experiment with @stoplight/prism-cli 5.16 (see test_prism_harness.py):

* Prism ignores per-operation ``servers`` (api-data.line.me for content/blob endpoints)
  unless a request carries ``?__server=``, so one base URL serves both hosts' paths.
* Prism never applies ``discriminator.mapping``; LINE's spec models every polymorphic
  object (Message, Action, FlexComponent, Template, ...) as a base schema plus subtypes
  that ``allOf`` the base, so as given a text message without ``text`` PASSES. We
  therefore hand Prism a derived spec (see :func:`strict_spec`) that turns each mapping
  into ``if type == key then <subtype>`` rules, giving precise errors.
* Request violations always get a 4xx (the spec's 400, else a generated 401/404/405/422),
  with or without ``--errors``; that flag only turns Prism's *own* invalid mock responses
  into 422s, which would blame the bot for the mock, so it is off by default.
* Prism has no machine-readable log option for ``mock``; lines look like
  ``[10:09:20 PM] ›     [VALIDATOR] ✖  error     Request body property messages.0 must
  have required property 'text'`` and are parsed here.
* A body that is not valid JSON makes Prism hang without logging anything (the bot's
  SDK never sends one, so this only matters to hand-written tests).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = "messaging-api.yml"
INSTALL_HINT = "Prism not installed: run `npm ci --prefix .ci --no-audit --no-fund`"

_SCHEMA_PREFIX = "#/components/schemas/"
_BASE_SUFFIX = "__base"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "[10:09:20 PM] › [HTTP SERVER] post /v2/bot/message/reply ℹ  info      Request received"
# "[10:09:20 PM] ›     [VALIDATOR] ✖  error     Request body property ... 'text'"
_LOG_LINE = re.compile(
    r"\[(?P<name>[A-Z][A-Z ]*)\]"
    r"(?: (?P<method>get|post|put|patch|delete|head|options|trace) (?P<path>\S+))?"
    r"\s+\S+\s+(?P<level>awaiting|start|info|success|warning|warn|error|fatal|debug|trace)"
    r"\s+(?P<msg>.*)$"
)
_TERMINATED = re.compile(r"Request terminated with error: \S*#(?P<code>[A-Z_]+): (?P<title>.*)$")
_SYNC_PREFIX = "/__prism_harness_sync__/"
# Wrapper errors AJV adds above the real cause (the nested error is always reported too).
_NOISE = ('must match "then" schema',)


def spec_path() -> Path:
    """LINE's spec: ``$LINE_OPENAPI_DIR/messaging-api.yml``, else ``<repo>/../shared/...``.

    Resolved from the repo root, not the cwd, because CI clones the repo with ``shared/``
    beside it and pytest may be started from anywhere.
    """
    override = os.environ.get("LINE_OPENAPI_DIR")
    base = Path(override) if override else REPO_ROOT.parent / "shared" / "line-openapi"
    return base / SPEC_FILE


def find_prism() -> str | None:
    """Path of the prism CLI: ``$PRISM_BIN``, the repo's pinned copy, else ``prism`` on PATH.

    The pinned copy (``npm ci --prefix .ci``) comes first so CI and developers validate
    with the same Prism version; PATH is only a fallback for ad-hoc use.
    """
    env = os.environ.get("PRISM_BIN")
    if env:
        return env
    pinned = REPO_ROOT / ".ci" / "node_modules" / ".bin" / "prism"
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned)
    return shutil.which("prism")


def load_spec(path: Path) -> dict[str, Any]:
    """Parse the YAML spec keeping timestamps as strings, so it can be re-emitted as JSON."""
    import yaml  # test-only dependency; imported late so find_prism() works without it

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def strict_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``spec`` whose discriminators are enforced by plain JSON Schema.

    Prism (AJV) ignores ``discriminator``, so ``Message`` only checks ``type`` and the
    subtypes are never consulted. For each base ``B`` with a mapping this:

    1. moves ``B`` (minus the discriminator) to ``B__base`` and points every
       ``allOf: [$ref B]`` at it, so subtypes keep extending the base without recursing;
    2. redefines ``B`` as ``B__base`` + "property is one of the mapping keys" +
       ``if <prop> == key then <subtype>`` per key. if/then (not oneOf) keeps errors
       about the one subtype that applies instead of one per candidate.
    """
    out = copy.deepcopy(spec)
    schemas: dict[str, Any] = out.get("components", {}).get("schemas", {})
    bases = {
        name: schema["discriminator"]
        for name, schema in schemas.items()
        if isinstance(schema, dict) and schema.get("discriminator", {}).get("mapping")
    }
    for name in bases:
        base = schemas[name]
        base.pop("discriminator")
        schemas[name + _BASE_SUFFIX] = base
    for schema in schemas.values():
        for item in schema.get("allOf", []) if isinstance(schema, dict) else []:
            ref = item.get("$ref", "") if isinstance(item, dict) else ""
            if ref.startswith(_SCHEMA_PREFIX) and ref[len(_SCHEMA_PREFIX) :] in bases:
                item["$ref"] = ref + _BASE_SUFFIX
    for name, disc in bases.items():
        prop = disc["propertyName"]
        mapping: dict[str, str] = disc["mapping"]
        rules = [
            {"if": {"required": [prop], "properties": {prop: {"const": key}}}, "then": {"$ref": ref}}
            for key, ref in mapping.items()
        ]
        schemas[name] = {
            "type": "object",
            "required": [prop],
            "properties": {prop: {"type": "string", "enum": list(mapping)}},
            "allOf": [{"$ref": _SCHEMA_PREFIX + name + _BASE_SUFFIX}, *rules],
        }
    return out


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (tiny race accepted; start() retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrismError(RuntimeError):
    """Prism could not be started (missing binary, bad spec, timeout)."""


class PrismMock:
    """A running ``prism mock`` of LINE's spec; use as a context manager.

    ``violations()`` lists every request Prism judged invalid, as
    ``"POST /v2/bot/message/reply: Request body property messages.0 must have ..."``;
    ``requests()`` lists what was received, so a test can also prove the bot sent anything.
    Both first round-trip a sentinel request, so lines logged for earlier requests have been
    read (Prism logs after answering, and logs in order).
    """

    def __init__(
        self,
        spec: Path | None = None,
        *,
        prism: str | None = None,
        strict: bool = True,
        errors: bool = False,
        startup_timeout: float = 60.0,
    ) -> None:
        self.spec = spec or spec_path()
        self.prism = prism or find_prism()
        self.strict = strict
        self.errors = errors
        self.startup_timeout = startup_timeout
        self.port = 0
        self.url = ""
        self.command: list[str] = []
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Condition()
        self._log: list[str] = []
        self._requests: list[str] = []
        self._violations: list[str] = []
        self._response_violations: list[str] = []
        self._current = ""
        self._current_flagged = False
        self._synced: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> PrismMock:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start Prism on a free port and wait until it answers; raise PrismError if not."""
        if not self.prism:
            raise PrismError(INSTALL_HINT)
        if not self.spec.is_file():
            raise PrismError(f"LINE OpenAPI spec not found at {self.spec} (set LINE_OPENAPI_DIR)")
        document = self.spec
        if self.strict:
            self._tmp = tempfile.TemporaryDirectory(prefix="prism-line-")
            document = Path(self._tmp.name) / "messaging-api.strict.json"
            document.write_text(json.dumps(strict_spec(load_spec(self.spec))), encoding="utf-8")
        for attempt in range(3):
            try:
                self._launch(document)
                return
            except PrismError:
                self.stop(keep_tmp=True)  # also drains the log reader
                in_use = any("EADDRINUSE" in line for line in self._log)
                if not in_use or attempt == 2:
                    self.stop()
                    raise

    def _launch(self, document: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [self.prism or "prism", "mock", str(document)]
        self.command += ["-h", "127.0.0.1", "-p", str(self.port)]
        if self.errors:
            self.command.append("--errors")
        with self._lock:
            self._log = []
        env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
        started = time.monotonic()
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=env,
                start_new_session=True,  # own process group, so stop() can end all of it
            )
        except OSError as exc:  # e.g. PRISM_BIN pointing nowhere
            raise PrismError(f"cannot run {self.command[0]}: {exc}. {INSTALL_HINT}") from exc
        self._reader = threading.Thread(target=self._read, name="prism-log", daemon=True)
        self._reader.start()
        deadline = started + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PrismError(f"Prism exited with {self._proc.returncode}:\n{self.log_tail()}")
            if self._listening() and self._port_open():
                self.startup_seconds = time.monotonic() - started
                return
            time.sleep(0.1)
        raise PrismError(f"Prism not ready after {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, *, keep_tmp: bool = False) -> None:
        """Stop Prism and its process group; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if proc is not None:
            proc.wait(timeout=5)
            if proc.stdout:
                proc.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._tmp is not None and not keep_tmp:
            self._tmp.cleanup()
            self._tmp = None

    # -- results -----------------------------------------------------------------------------

    def violations(self) -> list[str]:
        """Every request violation since start (or reset), as ``"METHOD /path: message"``."""
        self.sync()
        with self._lock:
            return list(self._violations)

    def response_violations(self) -> list[str]:
        """Mock responses Prism found invalid against the spec: the spec's or Prism's fault,
        not the bot's, so kept apart from violations()."""
        self.sync()
        with self._lock:
            return list(self._response_violations)

    def requests(self) -> list[str]:
        """Requests received since start (or reset), as ``"METHOD /path"``."""
        self.sync()
        with self._lock:
            return list(self._requests)

    def requests_seen(self) -> int:
        """How many requests Prism received, so a test can prove the bot sent any at all."""
        return len(self.requests())

    def reset(self) -> None:
        """Forget what was seen so far, so one Prism can serve several tests."""
        self.sync()
        with self._lock:
            self._requests.clear()
            self._violations.clear()
            self._response_violations.clear()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of Prism's output, for failure messages."""
        with self._lock:
            return "\n".join(self._log[-lines:])

    def sync(self, timeout: float = 10.0) -> None:
        """Wait until Prism's log has caught up with every request answered so far.

        Sends a request to a path the spec lacks and waits for its log line; Prism logs in
        order, so everything about earlier requests has been read by then.
        """
        if self._proc is None or self._proc.poll() is not None:
            return  # nothing more will be logged
        token = uuid.uuid4().hex
        try:
            urllib.request.urlopen(f"{self.url}{_SYNC_PREFIX}{token}", timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as exc:  # 404 is the expected answer
            exc.close()
        deadline = time.monotonic() + timeout
        with self._lock:
            while token not in self._synced:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PrismError(f"Prism log did not catch up:\n{self.log_tail()}")
                self._lock.wait(left)
            self._synced.discard(token)

    # -- log parsing ---------------------------------------------------------------------------

    def _read(self) -> None:
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        for raw in _lines(proc.stdout):
            line = _ANSI.sub("", raw.rstrip("\n"))
            with self._lock:
                self._log.append(line)
                self._parse(line)
                self._lock.notify_all()

    def _listening(self) -> bool:
        with self._lock:
            return any("Prism is listening on" in line for line in self._log)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _parse(self, line: str) -> None:
        """Fold one log line into the records (caller holds the lock)."""
        match = _LOG_LINE.search(line)
        if not match:
            return
        name, msg, level = match["name"], match["msg"].strip(), match["level"]
        path = match["path"] or ""
        if name == "HTTP SERVER" and path.startswith(_SYNC_PREFIX):
            if msg.startswith("Request terminated"):
                self._synced.add(path[len(_SYNC_PREFIX) :])
            return
        if name == "HTTP SERVER" and msg == "Request received":
            self._current = f"{match['method'].upper()} {path}"
            self._current_flagged = False
            self._requests.append(self._current)
            return
        if name == "HTTP SERVER" and level in ("error", "fatal"):
            # Routing/security failures: no path or method in the spec, unauthorised...
            # Skip it if the validator already listed the reasons for this request.
            term = _TERMINATED.search(msg)
            where = f"{match['method'].upper()} {path}" if match["method"] else self._current
            if term and term["code"] == "VIOLATIONS":  # --errors: the mock's own response
                self._response_violations.append(f"{where}: {msg}")
            elif not self._current_flagged:
                self._violations.append(f"{where}: {msg}")
            return
        if name == "VALIDATOR" and level == "error":
            if msg.startswith("Violation: response"):
                self._response_violations.append(f"{self._current}: {msg}")
            elif msg.startswith("Violation: "):
                return  # duplicate of the plain line logged before the response was chosen
            elif not msg.endswith(_NOISE):
                self._violations.append(f"{self._current}: {msg}")
                self._current_flagged = True


def _lines(stream: Any) -> Iterator[str]:
    """Lines of a text stream until EOF (readline-based: no read-ahead buffering delays)."""
    while True:
        line = stream.readline()
        if not line:
            return
        yield line
