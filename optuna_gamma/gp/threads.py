"""Single-threaded BLAS around GP work (as Optuna's ``_gp/thread_limiting.py`` does)."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import functools
import threading
from typing import Any

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_state: dict[str, Any] = {}


@contextlib.contextmanager
def limit_blas_threads() -> Iterator[None]:
    """Run the block with single-threaded BLAS (re-entrant, thread-safe, ~30 us when cold).

    A GP fit and an acquisition optimization issue thousands of small BLAS calls; multi-threaded
    OpenBLAS on such small matrices is slower, and on a busy machine it can be an order of magnitude
    slower (thread oversubscription), as Optuna's ``GPSampler`` also notes. Uses ``threadpoolctl``
    when it is installed and does nothing otherwise. Nested uses cost only a lock.
    """
    global _blas_depth
    with _blas_lock:
        if _blas_depth == 0:
            controller = _threadpool_controller()
            _blas_state["limiter"] = (
                controller.limit(limits=1, user_api="blas") if controller is not None else None
            )
        _blas_depth += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                limiter = _blas_state.pop("limiter", None)
                if limiter is not None:
                    limiter.restore_original_limits()


@functools.lru_cache(maxsize=1)
def _threadpool_controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its default threading
        return None
    return ThreadpoolController()
