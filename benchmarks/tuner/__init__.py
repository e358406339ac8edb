"""The tuner benchmarks (see ``benchmarks/README.md``)."""
