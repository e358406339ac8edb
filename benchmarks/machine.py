"""What a benchmark records about the machine it ran on.

A benchmark cell reproduces bit for bit only on the same CPU family and the same NumPy, SciPy
and BLAS builds: the last digit of a floating-point sum depends on the vector instructions the
library picks, and a Bayesian-optimization trajectory that sees a different last digit goes
elsewhere from then on. Stop 44 found the stored default cells (Intel Xeon) not reproduced on
an AMD EPYC from the first trials on (Hartmann-6's value at the same point differed in its last
digit), so the results' meta files name the CPU model and these libraries.
"""

from __future__ import annotations

import os
import platform


__all__ = ["cpu_name", "machine_line"]


def cpu_name() -> str:
    """The CPU model (``model name`` of ``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(shared: bool = False) -> str:
    """``"x86_64, AMD EPYC, 2 CPUs, numpy 2.4.6, scipy 1.17.1"`` for a meta file."""
    import numpy
    import scipy

    cpus = f"{os.cpu_count()} CPUs" + (" (shared)" if shared else "")
    return (
        f"{platform.machine()}, {cpu_name()}, {cpus}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}"
    )
