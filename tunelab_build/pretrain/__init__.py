"""The recipe that pretrains `builtin:tiny-code` on the Python standard library."""
