"""From rendered files to images others can pull: builds, pushes under tags that never
move, air-gapped bundles, the CI build matrix, and the git facts their labels carry.
"""
