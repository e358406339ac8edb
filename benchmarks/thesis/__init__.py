"""The thesis benchmarks (see ``benchmarks/README.md``)."""
