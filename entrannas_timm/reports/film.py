"""The architecture film of a search report: the derived cells at every recorded epoch, as PNG frames and a GIF."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ..models.genotype import Genotype
from ..utils.files import write_atomic
from .plot import genotype_image
from .records import (
    LIMITS,
)
from .run import SearchRun

if TYPE_CHECKING:
    from PIL import Image

__all__ = ['GIF_FRAMES', 'gif_epochs', 'render_frames']

GIF_FRAMES = 60  # most frames in cells.gif: evenly spaced epochs and the last (every epoch has its PNG)


# ---- (a) the architecture film ------------------------------------------------------------------
FRAME_BOX = (1280, 1440)  # largest frame (px); a fully connected DST cell is scaled down to fit
FRAME_DPI = 72
_FRAME_INDEX = 'index.json'  # frames/index.json: what each frame shows, so an unchanged frame is not redrawn


def _fit(im: Image.Image, box: Tuple[int, int] = FRAME_BOX) -> Image.Image:
    from PIL import Image
    scale = min(box[0] / im.width, box[1] / im.height, 1.0)
    if scale == 1.0:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _on_canvas(im: Image.Image, canvas: Tuple[int, int]) -> Image.Image:
    """The drawing centred at the top of a white canvas (every frame gets the same size, as a GIF needs)."""
    from PIL import Image
    if im.size == canvas:
        return im
    out = Image.new('RGB', canvas, 'white')
    out.paste(im, ((canvas[0] - im.width) // 2, 0))
    return out


def _save_png(path: Path, im: Image.Image) -> None:
    buf = io.BytesIO()
    im.save(buf, format='PNG', compress_level=3)
    write_atomic(path, buf.getvalue())


def _read_index(path: Path) -> Dict[str, Dict[str, Any]]:
    """A previous report's frame index; anything unreadable or odd means "redraw everything"."""
    try:
        if path.stat().st_size > LIMITS['json_file_bytes']:
            return {}
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError, RecursionError):
        return {}
    frames = data.get('frames') if isinstance(data, dict) and data.get('version') == 1 else None
    if not isinstance(frames, dict):
        return {}

    def size_ok(v: Any) -> bool:
        return (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v)
                and 0 < v[0] <= FRAME_BOX[0] and 0 < v[1] <= FRAME_BOX[1])
    return {k: v for k, v in frames.items() if isinstance(v, dict) and isinstance(v.get('key'), str)
            and size_ok(v.get('size')) and size_ok(v.get('canvas'))}


def _png_size(path: Path) -> Optional[Tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size if im.format == 'PNG' else None
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None


def gif_epochs(epochs: Sequence[int], most: int) -> List[int]:
    """At most ``most`` evenly spaced epochs of ``epochs``, always the first and the last."""
    if len(epochs) <= most:
        return list(epochs)
    if most < 2:
        return [epochs[-1]]
    picks = {round(i * (len(epochs) - 1) / (most - 1)) for i in range(most)}
    return [epochs[i] for i in sorted(picks)]


def _draw_frames(run: SearchRun, frames_dir: Path) -> Tuple[Dict[int, Dict[str, Any]], Tuple[int, int]]:
    """Draw each epoch's frame and write its PNG at once, on the largest canvas so far; reuse a frame the
    last report drew for the same genotype and heading. Returns the frames by epoch and the final canvas."""
    subtitle = ' · '.join(x for x in (run.setting('method'), run.setting('dataset'), run.name) if x)
    total = run.planned_epochs
    width = max(3, len(str(max(run.epochs[-1], total or 0))))
    index = _read_index(frames_dir / _FRAME_INDEX)
    entries: Dict[int, Dict[str, Any]] = {}
    canvas = (1, 1)
    for rec, text in zip(run.records, run.genotypes):
        if text is None:
            continue
        epoch = rec['epoch']
        heading = f'epoch {epoch} of {total}' if total else f'epoch {epoch}'
        key = hashlib.sha256(json.dumps([text, heading, subtitle, FRAME_DPI, FRAME_BOX]).encode()).hexdigest()
        path = frames_dir / f'epoch_{epoch:0{width}d}.png'
        old = index.get(str(epoch))
        if old is not None and old['key'] == key and _png_size(path) == tuple(old['canvas']):
            entry = dict(old, path=path)
        else:
            # the name is not drawn into the frame (the heading says the epoch): a crafted name cannot reach DOT
            g = Genotype.from_dict(json.loads(text)).replace(name=None)
            im = _fit(genotype_image(g, title=heading, subtitle=subtitle, dpi=FRAME_DPI))
            canvas = (max(canvas[0], im.width), max(canvas[1], im.height))
            _save_png(path, _on_canvas(im, canvas))
            entry = dict(key=key, size=list(im.size), canvas=list(canvas), path=path)
        canvas = (max(canvas[0], entry['size'][0]), max(canvas[1], entry['size'][1]))
        entries[epoch] = entry
    return entries, canvas


def _recentre(entries: Dict[int, Dict[str, Any]], canvas: Tuple[int, int]) -> None:
    """Put frames drawn on a smaller canvas than the largest frame onto the final one (one at a time)."""
    from PIL import Image
    for entry in entries.values():
        if tuple(entry['canvas']) != canvas:
            (w, h), (cw, _) = entry['size'], entry['canvas']
            with Image.open(entry['path']) as im:
                drawing = im.convert('RGB').crop(((cw - w) // 2, 0, (cw - w) // 2 + w, h))
            _save_png(entry['path'], _on_canvas(drawing, canvas))
            entry['canvas'] = list(canvas)


def _write_gif(frames: Sequence[Path], path: Path, frame_ms: int) -> Path:
    from PIL import Image
    gif = []
    for frame in frames:  # one fast 64-colour palette per frame: diagrams are flat colours
        with Image.open(frame) as im:
            gif.append(im.convert('RGB').quantize(colors=64, method=Image.Quantize.FASTOCTREE))
    durations = [frame_ms] * (len(gif) - 1) + [max(3 * frame_ms, 2000)]
    buf = io.BytesIO()
    gif[0].save(buf, format='GIF', save_all=True, append_images=gif[1:], duration=durations, loop=0)
    return write_atomic(path, buf.getvalue())


def render_frames(run: SearchRun, out_dir: Path, frame_ms: int = 700,
                  gif_frames: int = GIF_FRAMES) -> Tuple[List[Path], Optional[Path]]:
    """A PNG per recorded epoch, written as it is drawn, and the animated GIF of at most ``gif_frames`` of
    them; returns (frames, gif). Memory stays bounded: one drawing at a time, then only the GIF's frames.

    A frame whose drawing (genotype, heading) has not changed since the last report is reused, not redrawn.
    """
    frames_dir = out_dir / 'frames'
    entries, canvas = _draw_frames(run, frames_dir)
    skipped = len(run.records) - len(entries)
    if skipped:
        run.notes.append(f'{skipped} epoch record(s) without a "genotype" field: no frame for them')
    _recentre(entries, canvas)
    paths = [e['path'] for e in entries.values()]
    if frames_dir.is_dir():
        for stale in frames_dir.glob('epoch_*.png'):
            if stale not in paths:
                stale.unlink()
    if not entries:
        return [], None
    write_atomic(frames_dir / _FRAME_INDEX, json.dumps({'version': 1, 'frames': {
        str(e): {k: v for k, v in entry.items() if k != 'path'} for e, entry in entries.items()}}))
    chosen = gif_epochs(sorted(entries), gif_frames)
    if len(chosen) < len(entries):
        run.notes.append(f'the animation shows {len(chosen)} of {len(entries)} epochs (evenly spaced, and the '
                         f'last); every epoch is in frames/')
    return paths, _write_gif([entries[e]['path'] for e in chosen], out_dir / 'cells.gif', frame_ms)
