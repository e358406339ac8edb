"""Single-threaded BLAS around GP work (as Optuna's ``_gp/thread_limiting.py`` does)."""

from __future__ import annotations

import functools
import threading
from types import TracebackType
from typing import Any
from typing import Callable
from typing import TypeVar

from threadpoolctl import ThreadpoolController


_F = TypeVar("_F", bound=Callable[..., Any])

_blas_lock = threading.Lock()
_blas_depth = 0
_blas_state: dict[str, Any] = {}


class limit_blas_threads:  # noqa: N801 - used like a function (a context manager / decorator)
    """Run the block with single-threaded BLAS (re-entrant, thread-safe).

    A GP fit and an acquisition optimization issue thousands of small BLAS calls; multi-threaded
    OpenBLAS on such small matrices is slower, and on a busy machine it can be an order of
    magnitude slower (thread oversubscription), as Optuna's ``GPSampler`` also notes. Uses
    ``threadpoolctl`` (a dependency). The outermost use switches
    the limit (about 30 us); nested uses, e.g. every prediction inside a suggestion, cost only a
    lock (a class, not a generator-based context manager, because they happen thousands of times
    per suggestion). Also usable as a decorator.
    """

    def __enter__(self) -> None:
        global _blas_depth
        with _blas_lock:
            if _blas_depth == 0:
                limiter = _threadpool_controller().limit(limits=1, user_api="blas")
                _blas_state["limiter"] = limiter
            _blas_depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global _blas_depth
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0:
                limiter = _blas_state.pop("limiter", None)
                if limiter is not None:
                    limiter.restore_original_limits()

    def __call__(self, function: _F) -> _F:
        @functools.wraps(function)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return wrapped  # type: ignore[return-value]


@functools.lru_cache(maxsize=1)
def _threadpool_controller() -> ThreadpoolController:
    # Built on first use, and it knows only the BLAS libraries loaded by then. SciPy's wheels
    # bring their own OpenBLAS beside NumPy's (Cholesky, triangular solves, L-BFGS-B), loaded
    # with scipy.linalg, which a first limit could precede: load it first, or the GP's
    # factorizations would run multi-threaded (slower, and other last bits per thread count).
    import scipy.linalg  # noqa: F401

    return ThreadpoolController()
