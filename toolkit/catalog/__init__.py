"""The catalog model: configs (one YAML file each) and the backend descriptors, validated
strictly, and the names the toolkit gives what it makes in Docker. The bottom of the domain:
it knows the protocols' names and nothing that is built from a config.
"""
