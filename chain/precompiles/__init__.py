"""Sibyl's precompiles and native system contracts, one small module each; the address
map is in :mod:`chain.precompiles.mapping`."""
