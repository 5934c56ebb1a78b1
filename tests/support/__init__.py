"""Throwaway PostgreSQL and MinIO servers for tests and benchmarks (never used in production)."""
