"""Running services: the preflight, the token handed over, the download into the cache,
start and wait, stop and logs, the keyed proxy, the multi-node roles and the watchdog. It puts
the catalog, the plan, rendering and the host together.
"""
