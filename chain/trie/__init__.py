"""Merkle-Patricia tries as the node builds and reads them: roots of whole lists, a
storage root's writes in one pass, reads that walk decoded nodes, and the decode cache."""
