#!/usr/bin/env bash
# The attestation subjects of one push, for actions/attest's subject-checksums input (CI).
# `toolkit push` prints REPOSITORY:TAG@sha256:HEX for each tag it pushed; this prints one
# "HEX  REPOSITORY" line (sha256sum's format) per pushed repository, since the digest, not the
# tag, names what is attested. Usage:
#   toolkit push NAME --registry HOST ... | scripts/attestation-subjects.sh > subjects.txt
set -euo pipefail

subjects=$(sed -nE 's/^(.*):[^:/@]+@sha256:([0-9a-f]{64})$/\2  \1/p' | sort -u)
if [ -z "$subjects" ]; then
  echo "no pushed image digest in the input: pipe the output of \`toolkit push\` into it." >&2
  exit 1
fi
printf '%s\n' "$subjects"
