"""Sibyl's execution client: VM, storage, pool, builder, importer and node wiring."""
