"""Where results go: Parquet directories and DuckDB views. Nothing in here computes a close."""
