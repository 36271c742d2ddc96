"""Run untrusted-media work in a forked child with hard limits; the parent only reads the answer.

The in-process budgets (packet caps, ``decode_budget_s`` checked between packets) cannot stop
one slow FFmpeg call or a decoder that allocates without bound, and a decoder crash would take
the whole Lambda invocation with it. So opening, probing and decoding run in a child made with
``os.fork`` (no re-import, no ``/dev/shm``: Lambda has none, so ``multiprocessing`` queues and
pools cannot be used) under ``RLIMIT_AS`` and ``RLIMIT_CPU``, and the parent kills it at a
wall-clock deadline. The result comes back as JSON through a pipe (never pickle: a child that a
hostile file has taken over must not be able to run code in the parent by what it writes). The
child does no AWS I/O and no logging through Powertools: it computes, writes its answer and
leaves with ``os._exit``.

How a child ends maps to a reason code (docs/limits.md):
- killed at the wall-clock deadline, by SIGXCPU/SIGKILL, or out of address space: DECODE_BUDGET_EXCEEDED;
- any other signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE...), or no answer: DECODER_CRASHED.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from kyc.domain.reasons import ReasonCode
from kyc.media.errors import MediaRefusedError

T = TypeVar("T")

_MIB = 1024 * 1024
# Signals that mean "a limit was hit" rather than "the decoder crashed".
_LIMIT_SIGNALS = frozenset({signal.SIGXCPU, signal.SIGKILL})
_NEAR_LIMIT_BYTES = 64 * _MIB
_CHILD_ALLOWANCE: int | None = None  # set in the child only


@dataclass(frozen=True)
class SandboxLimits:
    """Hard bounds on one sandboxed call.

    ``memory_bytes`` is address space the child may add to what it inherits from the parent at
    the fork (the parent's own mappings, numpy and FFmpeg libraries, are already there).
    ``cpu_s`` counts every thread of the child; ``wall_s`` is when the parent kills it.
    """

    memory_bytes: int
    cpu_s: int
    wall_s: float

    @classmethod
    def for_function(
        cls,
        *,
        memory_mb: int,
        remaining_s: float,
        budget_s: float,
        memory_fraction: float = 1.0,
        reserve_s: float = 10.0,
        threads: int | None = None,
    ) -> SandboxLimits:
        """Size the limits from the Lambda function's memory and the time left in the invocation.

        Wall: the decode budget plus a short grace, but never past ``remaining_s - reserve_s``
        (the parent still has to store the answer). CPU: the wall time on every core the
        decoder's threads can use. Memory: ``memory_fraction`` of the function's memory as
        extra address space; see docs/limits.md for the measurement behind the default.
        """
        wall = max(1.0, min(budget_s + 5.0, remaining_s - reserve_s))
        cores = threads or os.cpu_count() or 1
        return cls(
            memory_bytes=int(memory_mb * memory_fraction * _MIB),
            cpu_s=int(wall * cores) + 1,
            wall_s=wall,
        )


def sandbox_for_invocation(context: Any, budget_s: float, memory_fraction: float) -> SandboxLimits:
    """Limits for this invocation, from Lambda's context (memory setting, time left)."""
    return SandboxLimits.for_function(
        memory_mb=int(context.memory_limit_in_mb),
        remaining_s=context.get_remaining_time_in_millis() / 1000,
        budget_s=budget_s,
        memory_fraction=memory_fraction,
    )


@dataclass(frozen=True)
class SandboxUsage:
    """What the child cost: recorded beside the result for the benchmark and the fuzzer."""

    wall_s: float
    cpu_s: float
    max_rss_bytes: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "max_rss_bytes": self.max_rss_bytes,
        }


@dataclass(frozen=True)
class SandboxResult(Generic[T]):
    value: T
    usage: SandboxUsage


def run_sandboxed(
    work: Callable[[], T],
    limits: SandboxLimits,
    *,
    encode: Callable[[T], object] = lambda value: value,
    decode: Callable[[object], T] = lambda value: value,  # type: ignore[assignment,return-value]
) -> SandboxResult[T]:
    """Run ``work()`` in a forked child under ``limits`` and return its value.

    ``encode`` turns the value into JSON-safe data in the child and ``decode`` rebuilds it in
    the parent.
    Raises MediaRefusedError when ``work`` raised it, when a limit stopped the child
    (DECODE_BUDGET_EXCEEDED) or when the child died another way (DECODER_CRASHED). Any other
    exception in the child is a bug, not a verdict on the media: it is raised here as
    SandboxError with the child's traceback.
    """
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; its behaviour is asserted through the parent
        os.close(read_fd)
        _child(lambda: encode(work()), limits, write_fd)
    os.close(write_fd)
    payload, killed = _collect(read_fd, pid, limits.wall_s)
    _, status, usage = os.wait4(pid, 0)
    spent = SandboxUsage(
        wall_s=time.monotonic() - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_bytes=usage.ru_maxrss * 1024,
    )
    return SandboxResult(decode(_outcome(payload, status, killed, limits)), spent)


class SandboxError(RuntimeError):
    """The sandboxed code raised something that is not a media refusal (a programming error)."""


def _child(work: Callable[[], object], limits: SandboxLimits, write_fd: int) -> None:  # pragma: no cover
    code = 0
    try:
        faulthandler.disable()  # a crash is reported by the parent, not dumped by the child
        _apply_limits(limits)
        try:
            answer: list = ["value", work()]
        except MediaRefusedError as exc:
            answer = ["refused", str(memory_aware_reason(exc.reason)), exc.message]
        except MemoryError:
            answer = ["refused", str(ReasonCode.DECODE_BUDGET_EXCEEDED), "the decoder ran out of memory"]
        except BaseException:
            answer = ["error", traceback.format_exc(limit=20)]
        try:
            data = json.dumps(answer).encode()
        except MemoryError:
            data = json.dumps(["refused", str(ReasonCode.DECODE_BUDGET_EXCEEDED), "out of memory"]).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
    except BaseException:  # never return into the parent's code
        code = 70
    finally:
        os._exit(code)


def _apply_limits(limits: SandboxLimits) -> None:  # pragma: no cover - runs in the child
    global _CHILD_ALLOWANCE
    _CHILD_ALLOWANCE = limits.memory_bytes
    inherited = _address_space_bytes()
    address_space = inherited + limits.memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write the applicant's video to disk


# Refusals decided from the file's first bytes or its size, before any decoder allocates: a memory
# budget can never be their cause, whatever the child's address space looks like.
DECIDED_FROM_BYTES = frozenset(
    {
        ReasonCode.EMPTY_FILE,
        ReasonCode.TOO_LARGE,
        ReasonCode.UNRECOGNISED_FORMAT,
        ReasonCode.PLAYLIST_OR_SCRIPT,
        ReasonCode.IMAGE_NOT_VIDEO,
        ReasonCode.EXTERNAL_REFERENCE,
    }
)


def memory_aware_reason(reason: ReasonCode) -> ReasonCode:
    """A refusal from a child that ran up against RLIMIT_AS is a memory budget, whatever FFmpeg said.

    FFmpeg does not always report a refused allocation as ENOMEM (a frame thread that cannot get
    a buffer surfaces as invalid data), so the child's peak address space decides: within
    a quarter of the allowance (at least 64 MiB) of the limit means allocations were being
    refused. Called in the child (also by ``encode`` functions); outside a sandbox it is a no-op.
    """
    if (
        reason is ReasonCode.DECODE_BUDGET_EXCEEDED
        or reason in DECIDED_FROM_BYTES
        or _CHILD_ALLOWANCE is None
    ):
        return reason
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    near = max(_NEAR_LIMIT_BYTES, _CHILD_ALLOWANCE // 4)
    if limit != resource.RLIM_INFINITY and _peak_address_space_bytes() >= limit - near:
        return ReasonCode.DECODE_BUDGET_EXCEEDED
    return reason


def _peak_address_space_bytes() -> int:  # pragma: no cover - child
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _address_space_bytes() -> int:
    """The process's current virtual size (VmSize), what RLIMIT_AS is measured against."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _collect(read_fd: int, pid: int, wall_s: float) -> tuple[bytes, bool]:
    """Read the child's answer until EOF; kill the child at the deadline. Returns (bytes, killed)."""
    deadline = time.monotonic() + wall_s
    chunks: list[bytes] = []
    killed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    return b"".join(chunks), killed


def _outcome(payload: bytes, status: int, killed: bool, limits: SandboxLimits) -> object:
    if killed:
        raise MediaRefusedError(
            ReasonCode.DECODE_BUDGET_EXCEEDED, f"decoding was stopped after {limits.wall_s:.0f} s"
        )
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        name = signal.Signals(signum).name if signum in signal.Signals.__members__.values() else str(signum)
        if signum in _LIMIT_SIGNALS:
            raise MediaRefusedError(ReasonCode.DECODE_BUDGET_EXCEEDED, f"the decoder hit a limit ({name})")
        raise MediaRefusedError(ReasonCode.DECODER_CRASHED, f"the decoder died on {name}")
    try:
        answer = json.loads(payload)
        kind = answer[0]
        if kind == "value":
            return answer[1]
        if kind == "refused":
            refusal = MediaRefusedError(ReasonCode(answer[1]), str(answer[2]))
        elif kind == "error":
            error = SandboxError(f"the sandboxed media code failed:\n{answer[1]}")
        else:
            raise ValueError(kind)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise MediaRefusedError(ReasonCode.DECODER_CRASHED, "the decoder exited without an answer") from exc
    if kind == "refused":
        raise refusal
    raise error
