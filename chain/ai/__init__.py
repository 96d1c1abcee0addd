"""AI calls in blocks: their results (run on sidecars when building, checked against
attestations when importing), the registries' records, the attested envelope, and the
models every node re-runs (replicate mode)."""
