"""Fill the Hugging Face cache with one revision of a model repository, resumably.

`toolkit pull` runs this file inside a one-off container of the config's own image
(`python3 -c SOURCE pull REPO REVISION LOCK`), so the weights land in the model cache volume
through the huggingface_hub the server itself uses, with the same HF_HOME, HF_ENDPOINT and token
file (HF_TOKEN_PATH). It needs only the standard library and huggingface_hub.

huggingface_hub (2.x) downloads into a process-unique temporary file and deletes it when the
process fails, so an interrupted download starts over. Here each blob is fetched into
`blobs/<etag>.incomplete` and continued with an HTTP Range request on the next run; then
`snapshot_download` of the resolved commit finds every blob in place and lays out the snapshot
exactly as the server expects to read it. Then every file is hashed (SHA-256; the Hub's own
LFS digest must agree) and the lock is written: the commit and each file's digest and size.

It answers in JSON lines on stdout, which the toolkit reads:
  {"event": "plan", "commit": SHA, "total": BYTES, "files": N}
  {"event": "progress", "done": BYTES, "total": BYTES}  once a second, also when nothing moves
  {"event": "hashing", "files": N}
  {"event": "done", "commit": SHA, "total": BYTES, "files": N, "lock": PATH}
  {"event": "check", "state": "complete" | "missing" | "mismatch", "reason": TEXT}
  {"event": "error", "message": TEXT}  (exit status 1)
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

COMMIT = re.compile(r"^[0-9a-f]{40}$")
WORKERS = 4  # files fetched at once
TICK = 1.0  # seconds between progress lines
CHUNK = 8 << 20
ATTEMPTS = 5  # a reset connection is tried again, resuming, this many times in all


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def repo_dir(repo: str) -> Path:
    return Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def etag(entry: RepoFile) -> str:
    """The blob's name in the cache: the LFS SHA-256, else the git blob id (as the Hub's ETag)."""
    return entry.lfs.sha256 if entry.lfs else entry.blob_id


def fetch_blob(repo: str, commit: str, entry: RepoFile, blobs: Path) -> None:
    """Download one file to blobs/<etag>, continuing a partial download left by an earlier run."""
    # http_get writes in chunks of this size (10 MiB by default): smaller ones make the
    # progress smoother and lose less on an interrupt.
    constants.DOWNLOAD_CHUNK_SIZE = 1 << 20
    blob = blobs / etag(entry)
    if blob.exists() and blob.stat().st_size == entry.size:
        return
    part = blobs / f"{etag(entry)}.incomplete"
    url = hf_hub_url(repo, entry.path, revision=commit)
    with part.open("r+b" if part.exists() else "wb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > entry.size:  # not this file's bytes: start over
            handle.seek(0)
            handle.truncate()
        if handle.tell() < entry.size:
            http_get(
                url,
                handle,
                resume_size=handle.tell(),
                headers=build_hf_headers(),
                expected_size=entry.size,
            )
    os.replace(part, blob)


def downloaded(blobs: Path, files: list[RepoFile]) -> int:
    done = 0
    for entry in files:
        for path in (blobs / etag(entry), blobs / f"{etag(entry)}.incomplete"):
            try:
                done += min(path.stat().st_size, entry.size)
                break
            except FileNotFoundError:
                continue
    return done


def pull(repo: str, revision: str, lock: Path) -> None:
    api = HfApi()
    commit = api.model_info(repo, revision=revision).sha
    if not commit:
        raise ValueError(f"{repo} at {revision} did not resolve to a commit")
    tree = api.list_repo_tree(repo, revision=commit, recursive=True)
    files = [entry for entry in tree if isinstance(entry, RepoFile)]
    total = sum(entry.size for entry in files)
    emit("plan", commit=commit, total=total, files=len(files))
    blobs = repo_dir(repo) / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        jobs = [pool.submit(fetch_blob, repo, commit, entry, blobs) for entry in files]
        while not all(job.done() for job in jobs):
            emit("progress", done=downloaded(blobs, files), total=total)
            concurrent.futures.wait(jobs, timeout=TICK, return_when="FIRST_EXCEPTION")
            for job in jobs:
                if job.done() and job.exception():
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise job.exception()  # type: ignore[misc]
    emit("progress", done=total, total=total)
    snapshot = Path(snapshot_download(repo, revision=commit))
    if revision != commit:  # snapshot_download writes a ref only for the name it was given
        (repo_dir(repo) / "refs").mkdir(exist_ok=True)
        (repo_dir(repo) / "refs" / revision).write_text(commit)
    emit("hashing", files=len(files))
    digests = hash_files(snapshot, files)
    write_lock(lock, repo, revision, commit, files, digests)
    emit("done", commit=commit, total=total, files=len(files), lock=str(lock))


def hash_files(snapshot: Path, files: list[RepoFile]) -> dict[str, str]:
    """Each file's SHA-256; an LFS file must match the Hub's digest, else its blob is removed."""
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        found = dict(
            zip(
                (e.path for e in files),
                pool.map(lambda e: sha256(snapshot / e.path), files),
                strict=True,
            )
        )
    for entry in files:
        if entry.lfs and found[entry.path] != entry.lfs.sha256:
            (snapshot / entry.path).resolve().unlink(missing_ok=True)
            raise ValueError(
                f"{entry.path} does not match the Hub's SHA-256 and was removed; pull again"
            )
    return found


def write_lock(
    lock: Path,
    repo: str,
    revision: str,
    commit: str,
    files: list[RepoFile],
    digests: dict[str, str],
) -> None:
    record = {
        "repo": repo,
        "revision": revision,
        "commit": commit,
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {
            e.path: {"sha256": digests[e.path], "size": e.size, "lfs": bool(e.lfs)}
            for e in sorted(files, key=lambda e: e.path)
        },
    }
    lock.parent.mkdir(parents=True, exist_ok=True)
    partial = lock.with_name(lock.name + ".tmp")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(partial, lock)


def check(repo: str, revision: str, lock: Path) -> tuple[str, str]:
    """Whether the cache holds what the lock records. Big (LFS) files are checked by their blob's
    name, which is their SHA-256, and size; small files are hashed again."""
    if not lock.is_file():
        return "missing", "no lock"
    record = json.loads(lock.read_text())
    if (record["repo"], record["revision"]) != (repo, revision):
        return "mismatch", f"the lock is for {record['repo']} at {record['revision']}"
    commit = record["commit"]
    ref = repo_dir(repo) / "refs" / revision
    if not COMMIT.match(revision):
        now = ref.read_text().strip() if ref.is_file() else "nothing"
        if now != commit:
            return "mismatch", f"its {revision} now points at {now[:12]}, not {commit[:12]}"
    snapshot = repo_dir(repo) / "snapshots" / commit
    for path, want in record["files"].items():
        file = snapshot / path
        if not file.is_file():
            return "mismatch", f"{path} is missing"
        if file.stat().st_size != want["size"]:
            return "mismatch", f"{path} has {file.stat().st_size} bytes, not {want['size']}"
        digest = file.resolve().name if want["lfs"] else sha256(file)
        if digest != want["sha256"]:
            return "mismatch", f"{path} differs from its recorded SHA-256"
    return "complete", ""


def transient(exc: BaseException) -> bool:
    """A dropped or reset connection, which the next attempt resumes past."""
    module = type(exc).__module__.split(".")[0]
    return module.startswith(("httpx", "httpcore", "requests", "urllib3")) or isinstance(
        exc, ConnectionError
    )


def pull_retrying(repo: str, revision: str, lock: Path) -> None:
    for attempt in range(ATTEMPTS):
        try:
            pull(repo, revision, lock)
            return
        except Exception as exc:
            if attempt + 1 == ATTEMPTS or not transient(exc):
                raise
            time.sleep(2**attempt)


def main(argv: list[str]) -> int:
    mode, repo, revision, lock = argv
    if mode == "check":
        state, reason = check(repo, revision, Path(lock))
        emit("check", state=state, reason=reason)
        return 0
    try:
        pull_retrying(repo, revision, Path(lock))
    except GatedRepoError:
        emit("error", message=f"{repo} is gated and the token given was refused")
    except RepositoryNotFoundError:
        emit(
            "error", message=f"{repo} at {revision} was not found (or is private and needs a token)"
        )
    except RevisionNotFoundError:
        emit("error", message=f"{repo} has no revision {revision}")
    except Exception as exc:  # one line for the toolkit, never a traceback
        emit("error", message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    else:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
