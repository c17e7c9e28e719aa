"""Air-gapped bundles: one tar holding a config's image, its compose file and, optionally, the
model weights, with a manifest of SHA-256 checksums that `import` verifies before loading anything.

    manifest.json   {"config", "image", "image_id", "files": {name: sha256}}
    image.tar       the image, as `docker save` writes it
    compose.yaml    the rendered compose file
    model/...       the model directory, when asked for
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any

from toolkit.catalog.configs import Catalog, Config
from toolkit.host.engine import EngineError, sdk_client, sdk_image
from toolkit.render import compose as render
from toolkit.service.image import image_ref

MANIFEST = "manifest.json"
CHUNK = 1 << 20


class BundleError(EngineError):
    """A bundle is missing, malformed or corrupt."""


def _sha256(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def export(
    catalog: Catalog, config: Config, out: Path, with_model: Path | None = None
) -> dict[str, Any]:
    """Write the bundle for a built config to `out`; return its manifest."""
    if with_model is not None and not with_model.is_dir():
        raise BundleError(
            f"model directory {with_model} does not exist; pass the folder holding the weights."
        )
    engine = sdk_client()
    ref = image_ref(config, catalog.backend(config))
    image = sdk_image(engine, ref, config.name)
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="toolkit-bundle-") as scratch:
        image_tar = Path(scratch) / "image.tar"
        digest = hashlib.sha256()
        with image_tar.open("wb") as handle:
            # Saved by its catalog name, so that `import` restores exactly that tag.
            for chunk in engine.api.get_image(ref):
                digest.update(chunk)
                handle.write(chunk)
        files["image.tar"] = digest.hexdigest()
        compose = render.render_compose(catalog, config).encode()
        files["compose.yaml"] = hashlib.sha256(compose).hexdigest()
        model_files = sorted(
            p for p in (with_model.rglob("*") if with_model else []) if p.is_file()
        )
        for path in model_files:
            with path.open("rb") as handle:
                files[f"model/{path.relative_to(with_model)}"] = _sha256(handle)  # type: ignore[arg-type]
        manifest = {"config": config.name, "image": ref, "image_id": image.id, "files": files}
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as bundle:
            _add_bytes(bundle, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
            bundle.add(image_tar, "image.tar")
            _add_bytes(bundle, "compose.yaml", compose)
            for path in model_files:
                bundle.add(path, f"model/{path.relative_to(with_model)}")  # type: ignore[arg-type]
        partial.replace(out)
    return manifest


def _add_bytes(bundle: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    bundle.addfile(info, io.BytesIO(data))


def verify(path: Path) -> dict[str, Any]:
    """Check every file against the manifest; raise naming the first that fails."""
    if not path.is_file():
        raise BundleError(f"bundle {path} does not exist; pass the file 'toolkit export' wrote.")
    try:
        with tarfile.open(path, "r") as bundle:
            member = bundle.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.load(member)
            expected: dict[str, str] = manifest["files"]
            seen = set()
            for info in bundle:
                if info.name == MANIFEST or not info.isfile():
                    continue
                if info.name not in expected:
                    raise BundleError(
                        f"bundle {path} holds {info.name}, which its manifest does "
                        "not list; nothing was loaded."
                    )
                stream = bundle.extractfile(info)
                assert stream is not None
                if _sha256(stream) != expected[info.name]:
                    raise BundleError(
                        f"bundle {path} is corrupt: {info.name} does not match its "
                        "SHA-256 in the manifest; nothing was loaded."
                    )
                seen.add(info.name)
    except (tarfile.TarError, KeyError, ValueError, EOFError) as exc:
        raise BundleError(
            f"bundle {path} is not a readable toolkit bundle ({exc}); nothing was loaded."
        ) from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BundleError(
            f"bundle {path} lacks {missing[0]}, which its manifest lists; nothing was loaded."
        )
    return manifest


def import_(path: Path, model_dir: Path | None = None) -> dict[str, Any]:
    """Verify the whole bundle, then load the image and extract the model, if any."""
    manifest = verify(path)
    engine = sdk_client()
    with tarfile.open(path, "r") as bundle:
        image_tar = bundle.extractfile("image.tar")
        assert image_tar is not None
        engine.images.load(image_tar)
        model_members = [m for m in bundle if m.isfile() and m.name.startswith("model/")]
        if model_members:
            target = model_dir or Path(f"{manifest['config']}-model")
            for member in model_members:
                destination = target / member.name.removeprefix("model/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                source = bundle.extractfile(member)
                assert source is not None
                destination.write_bytes(source.read())
            manifest["model_dir"] = str(target)
    return manifest
