"""The node's storage: the LMDB store (one write transaction per block), what reads it
(chain reader, account proofs), and how blocks and receipts are encoded in it."""
