"""`toolkit bench`: load generation, correct timing, server metrics and reports.

The CLI imports this package only when `bench` runs, so `toolkit --help` and `list` stay light.
"""
