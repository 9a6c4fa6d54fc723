"""Test helpers that the benchmarks may import too (the local APOD stand-in server)."""
