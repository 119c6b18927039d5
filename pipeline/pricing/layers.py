"""The catalog a ledger prices with: bundled CSV < synced Price List catalog (under the warehouse) < overrides.

The synced catalog lives at `<warehouse>/_catalog/prices.csv` (a local folder or `s3://…`), written by
`bedrock-ledger prices sync` or by the scheduled sync when `pricing.sync.enabled`. It is read whenever it exists,
so a sync run by hand takes effect at the next run just as a scheduled one does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pipeline.config import LedgerConfig
from pipeline.pricing.catalog import PriceCatalog, load_catalog
from pipeline.vocabulary import is_local

SYNCED_DIR = "_catalog"
SYNCED_FILE = "prices.csv"


def synced_catalog_uri(warehouse: str) -> str:
    """Where the synced Price List catalog of a warehouse lives."""
    return f"{warehouse.rstrip('/')}/{SYNCED_DIR}/{SYNCED_FILE}"


def _local(uri: str) -> str:
    return uri.removeprefix("file://")


def fetch_synced(warehouse: str) -> str | None:
    """A local path to the warehouse's synced catalog (downloaded from object storage), or None when there is none."""
    uri = synced_catalog_uri(warehouse)
    if is_local(uri):
        path = _local(uri)
        return path if os.path.isfile(path) else None
    import fsspec

    from pipeline.aws import storage_options_for

    fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri))
    # A listing, not a HEAD: with s3:ListBucket limited to the warehouse prefix (docs/iam-policy.json), S3 answers
    # a HEAD of a missing key with 403, not 404.
    folder = path.rsplit("/", 1)[0]
    try:
        names = fs.ls(folder, detail=False, refresh=True)
    except FileNotFoundError:
        return None
    if path not in {n.rstrip("/") for n in names}:
        return None
    local = os.path.join(tempfile.mkdtemp(prefix="ledger-catalog-"), SYNCED_FILE)
    fs.get(path, local)
    return local


def publish_synced(local_path: str, warehouse: str) -> str:
    """Copy a synced catalog written locally to its place under the warehouse; returns the URI."""
    uri = synced_catalog_uri(warehouse)
    if is_local(uri):
        target = Path(_local(uri))
        if target.resolve() != Path(local_path).resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(local_path, target)
        return uri
    import fsspec

    from pipeline.aws import storage_options_for

    fs, path = fsspec.core.url_to_fs(uri, **storage_options_for(uri))
    fs.put(local_path, path)
    return uri


def catalog_for(cfg: LedgerConfig) -> PriceCatalog:
    """The catalog a run of this ledger prices with (bundled < synced < overrides), validated."""
    return load_catalog(cfg.pricing.overrides, synced_path=fetch_synced(cfg.warehouse))
