"""Test double of pycuda (see tests/doubles/README.md)."""
