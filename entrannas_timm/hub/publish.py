"""``entrannas publish`` and ``entrannas cache``: an exported folder onto the Hugging Face Hub, or into the local
Hugging Face cache exactly as a download would have put it.

``publish DIR --repo-id ORG/NAME`` is a dry run that lists the files and their sizes; with ``--yes`` it creates the
repo and uploads the folder with huggingface_hub (token from ``hf auth login`` or ``HF_TOKEN``).

``cache DIR --repo-id ORG/NAME`` writes the cache's real layout (``models--ORG--NAME/blobs``, ``snapshots/<commit>``
of links to the blobs, ``refs/main``), so that with ``HF_HUB_OFFLINE=1`` an air-gapped machine loads
``timm.create_model('hf-hub:ORG/NAME', pretrained=True)`` from it; a registry tag ``name.tag`` loads too when the
repo id is the tag's (``entrannas/name.tag``). huggingface_hub has no public call that adds local files to its
cache, hence this writer; huggingface_hub's own ``scan_cache_dir`` reads what it writes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import List, Optional, Tuple, Union

from ..models.registry import WEIGHTS_FILE
from ..train.checkpoint import load_weights, read_config
from ..utils.errors import CLIError
from ..utils.files import write_atomic

__all__ = ['folder_files', 'check_export', 'publish', 'install_in_cache', 'add_cli']

LFS_SUFFIXES = ('.safetensors', '.bin', '.pt', '.pth', '.ckpt', '.onnx', '.msgpack', '.h5', '.gz', '.zip')
LFS_MIN_BYTES = 10 * 2 ** 20
"""Files the Hub stores with Git LFS (its default ``.gitattributes`` patterns, and anything over 10 MiB): their cache
blobs are named by SHA-256; other files by their git blob SHA-1, as the Hub's ETags name them."""


def folder_files(folder: Union[str, Path]) -> List[Tuple[str, int]]:
    """``(relative path, size)`` of every file to upload or cache (hidden files and folders left out)."""
    root = Path(folder)
    files = []
    for p in sorted(root.rglob('*')):
        rel = p.relative_to(root)
        if p.is_file() and not any(part.startswith('.') for part in rel.parts):
            files.append((rel.as_posix(), p.stat().st_size))
    return files


def check_export(folder: Union[str, Path]) -> Path:
    """``folder`` must be what ``entrannas export`` writes: config.json (with an architecture) + model.safetensors."""
    root = Path(folder)
    if not root.is_dir():
        raise CLIError(f'{root}: not a folder (expected one written by entrannas export)')
    config, weights = root / 'config.json', root / WEIGHTS_FILE
    for f in (config, weights):
        if not f.is_file():
            raise CLIError(f'{root}: {f.name} is missing (expected a folder written by entrannas export)')
    cfg = read_config(config)
    if not isinstance(cfg, dict) or not isinstance(cfg.get('architecture'), str):
        raise CLIError(f'{config}: no "architecture"; not a timm model configuration')
    load_weights(weights)  # a corrupt or truncated file is refused before it is published
    return root


def _check_repo_id(repo_id: str) -> str:
    from huggingface_hub.utils import HFValidationError, validate_repo_id
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise CLIError(f'--repo-id: {e}') from None
    if '/' not in repo_id:
        raise CLIError(f'--repo-id: expected ORG/NAME, got {repo_id!r}')
    return repo_id


# ---- publish ------------------------------------------------------------------------------------------------
def publish(folder: Union[str, Path], repo_id: str, yes: bool = False, private: bool = False,
            token: Optional[str] = None, commit_message: str = 'Upload model exported by entrannas-timm') -> str:
    """Dry run (the plan, as text) unless ``yes``; then create the repo, upload, and return the repo's URL."""
    root = check_export(folder)
    _check_repo_id(repo_id)
    files = folder_files(root)
    if not yes:
        lines = [f'would create the model repo {repo_id}{" (private)" if private else ""} and upload {len(files)} '
                 f'files from {root}:']
        lines += [f'  {size:>12,d}  {name}' for name, size in files]
        lines.append(f'  {sum(s for _, s in files):>12,d}  bytes in all; run again with --yes to upload')
        return '\n'.join(lines)
    from huggingface_hub import HfApi, get_token
    token = token or get_token()
    if not token:
        raise CLIError('no Hugging Face token: log in with `hf auth login` or set HF_TOKEN (nothing was uploaded)',
                       exit_code=1)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type='model', private=private, exist_ok=True)
        api.upload_folder(folder_path=str(root), repo_id=repo_id, repo_type='model', commit_message=commit_message,
                          allow_patterns=[name for name, _ in files])
    except Exception as e:  # offline, auth, permissions, network: one line with the Hub's reason
        raise CLIError(f'upload to {repo_id} failed ({type(e).__name__}: {e})', exit_code=1) from None
    return str(url)


# ---- cache --------------------------------------------------------------------------------------------------
def _blob_id(data: bytes, name: str) -> str:
    if name.endswith(LFS_SUFFIXES) or len(data) >= LFS_MIN_BYTES:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` as a relative symlink (a copy where links are not allowed), replaced atomically."""
    tmp = link.with_name(f'.{link.name}.tmp{os.getpid()}')
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(target, link.parent), tmp)
    except OSError:  # no symlinks (e.g. Windows without developer mode): huggingface_hub copies too
        tmp.write_bytes(target.read_bytes())
    os.replace(tmp, link)


def install_in_cache(folder: Union[str, Path], repo_id: str, cache_dir: Union[str, Path, None] = None,
                     revision: str = 'main') -> Path:
    """Install an exported folder as ``repo_id`` at ``revision`` into the Hugging Face cache; return the snapshot.

    Blobs first, then the snapshot's links, then ``refs/<revision>``: until the ref is written, readers keep seeing
    the previous snapshot, so an interrupted install damages nothing. The commit id is derived from the content, so
    installing the same folder twice is a no-op.
    """
    from huggingface_hub import constants
    root = check_export(folder)
    _check_repo_id(repo_id)
    if not revision or '/' in revision or revision.startswith('.'):
        raise CLIError(f'--revision: expected a branch name such as main, got {revision!r}')
    cache = Path(cache_dir) if cache_dir is not None else Path(constants.HF_HUB_CACHE)
    repo = cache / ('models--' + repo_id.replace('/', '--'))
    blobs = {}
    for name, _ in folder_files(root):
        data = (root / name).read_bytes()
        blob = repo / 'blobs' / _blob_id(data, name)
        if not blob.is_file() or blob.stat().st_size != len(data):
            write_atomic(blob, data)
        blobs[name] = blob
    commit = hashlib.sha1(''.join(f'{n}\0{b.name}\n' for n, b in sorted(blobs.items())).encode()).hexdigest()
    snapshot = repo / 'snapshots' / commit
    for name, blob in blobs.items():
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        _link(blob, link)
    write_atomic(repo / 'refs' / revision, commit)
    return snapshot


# ---- command line -------------------------------------------------------------------------------------------
def _cli_publish(args: argparse.Namespace) -> int:
    print(publish(args.folder, args.repo_id, args.yes, args.private, commit_message=args.message))
    return 0


def _cli_cache(args: argparse.Namespace) -> int:
    snapshot = install_in_cache(args.folder, args.repo_id, args.cache_dir, args.revision)
    print(snapshot)
    print(f"load it offline with: HF_HUB_OFFLINE=1 python -c \"import entrannas_timm, timm; "
          f"timm.create_model('hf-hub:{args.repo_id}', pretrained=True)\"")
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Register ``entrannas publish`` and ``entrannas cache``."""
    p = subparsers.add_parser(
        'publish', help='upload an exported folder to the Hugging Face Hub (a dry run unless --yes)',
        description='Create the model repo ORG/NAME and upload a folder written by entrannas export, with '
                    'huggingface_hub (token from `hf auth login` or HF_TOKEN). Without --yes it only lists the files '
                    'and their sizes.')
    p.add_argument('folder', metavar='DIR', help='folder written by entrannas export')
    p.add_argument('--repo-id', required=True, metavar='ORG/NAME', help='Hub model repo to create or update')
    p.add_argument('--yes', action='store_true', help='upload for real')
    p.add_argument('--private', action='store_true', help='create the repo as private')
    p.add_argument('--message', default='Upload model exported by entrannas-timm', help='commit message')
    p.set_defaults(func=_cli_publish)

    p = subparsers.add_parser(
        'cache', help='install an exported folder into the local Hugging Face cache (offline use)',
        description='Install a folder written by entrannas export into the local Hugging Face cache as ORG/NAME, in '
                    'its real layout, so that timm.create_model("hf-hub:ORG/NAME", pretrained=True) loads it with '
                    'HF_HUB_OFFLINE=1 exactly as if downloaded (and a registry tag name.tag does when ORG/NAME is '
                    'entrannas/name.tag). The cache is HF_HUB_CACHE, or HF_HOME/hub, or ~/.cache/huggingface/hub.')
    p.add_argument('folder', metavar='DIR', help='folder written by entrannas export')
    p.add_argument('--repo-id', required=True, metavar='ORG/NAME', help='repo id to install it as')
    p.add_argument('--revision', default='main', help='branch whose ref points at it (default main)')
    p.add_argument('--cache-dir', help='cache folder (default: huggingface_hub\'s, from HF_HUB_CACHE / HF_HOME)')
    p.set_defaults(func=_cli_cache)
