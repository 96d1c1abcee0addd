"""Ethereum's consensus tests (BlockchainTests) run through the node's own import path."""
