"""The sampler benchmarks (see ``benchmarks/README.md``)."""
