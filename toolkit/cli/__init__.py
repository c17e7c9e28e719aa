"""The `toolkit` command line (root.py maps command names to the modules holding them). Light on
purpose: the fast path of toolkit/__main__.py imports cache.py from here without Click.
"""
