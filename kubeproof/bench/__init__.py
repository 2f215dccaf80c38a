"""`kubeproof bench`: verify walls at 3..N hosts, serial, under xdist and the naive way.

A benchmark, not a test: it prints figures (and writes them as JSON) and asserts nothing about
speed. CI runs it once with a small N so that it keeps working; the figures go in the notes.
"""
