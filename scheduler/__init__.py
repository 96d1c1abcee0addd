"""The native scheduler: recurring contract calls run at the top of blocks."""
