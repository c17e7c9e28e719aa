"""What a service is: a config and its backend combined. The descriptor's format strings
filled with one config's values (command line, environment, mounts, healthcheck), the image's
name and labels, the container's confinement, and the multi-node head and worker processes;
before any file format or engine.
"""
