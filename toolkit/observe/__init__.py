"""Looking at what runs: `status` rows, live figures from the servers and NVML (and one
Prometheus endpoint for all of them), and the versions of what the toolkit drives.
"""
