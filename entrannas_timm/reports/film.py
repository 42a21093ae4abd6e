"""The architecture film of a search report: the derived cells at the epochs where they changed, as PNG frames
and a GIF.

A long search derives the same cell for many epochs in a row, so the film shows the first recorded epoch, every
epoch whose derived genotype differs from the epoch before, and the last one; more than ``max_frames`` of those
are thinned evenly (the first and the last always stay). Graphviz draws each distinct genotype once (the heading,
which names the epoch, is added to the drawing), every frame is written as a PNG under ``frames/`` as it is made,
and ``frames/index.json`` lets the next report reuse the frames that did not change.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ..models.genotype import Genotype
from ..utils.files import write_atomic
from .plot import genotype_graph, render_graph
from .records import (
    LIMITS,
)
from .run import SearchRun

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = ['MAX_FRAMES', 'Film', 'changed_epochs', 'film_epochs', 'render_frames']

MAX_FRAMES = 200  # most frames in the film: epochs where the cell changed, thinned evenly, and the first and last


# ---- which epochs the film shows ----------------------------------------------------------------
def _thin(epochs: Sequence[int], most: int) -> List[int]:
    """At most ``most`` evenly spaced items of ``epochs``, always the first and the last (the last alone if 1)."""
    if len(epochs) <= most:
        return list(epochs)
    if most < 2:
        return [epochs[-1]]
    picks = {round(i * (len(epochs) - 1) / (most - 1)) for i in range(most)}
    return [epochs[i] for i in sorted(picks)]


def changed_epochs(genotypes: Sequence[Tuple[int, str]]) -> List[int]:
    """The epochs whose genotype differs from the one before, from (epoch, genotype) pairs in epoch order."""
    return [epoch for (_, before), (epoch, text) in zip(genotypes, genotypes[1:]) if text != before]


def film_epochs(genotypes: Sequence[Tuple[int, str]], most: int = MAX_FRAMES) -> List[int]:
    """The epochs the film shows, from (epoch, genotype) pairs in epoch order: the first epoch, each epoch whose
    genotype differs from the one before, and the last epoch, thinned to at most ``most`` evenly spaced ones
    (always the first and the last)."""
    if not genotypes:
        return []
    return _thin(sorted({genotypes[0][0], *changed_epochs(genotypes), genotypes[-1][0]}), most)


@dataclass
class Film:
    """What :func:`render_frames` made: the PNG frames and GIF, and which epochs they show (for the caption)."""
    frames: List[Path]
    gif: Optional[Path]
    epochs: List[int]
    changed: int    # epochs whose derived genotype differs from the epoch before
    recorded: int   # epochs with a derived genotype
    most: int       # the bound on frames the film was made with
    thinned: bool   # whether the film left out epochs where the cell changed (more than ``most`` frames)

    @property
    def caption(self) -> str:
        """Which epochs the film shows, in words (the report prints it under the animation)."""
        n = len(self.epochs)
        if n == 0:
            return 'film: no frames (no epoch record holds a derived genotype)'
        if self.recorded == 1:
            return f'film: 1 frame, epoch {self.epochs[0]} (the only recorded epoch)'
        which = (f'the {self.changed} epoch{"s" if self.changed != 1 else ""} where the derived cell changed, '
                 'with the first and the last epoch') if self.changed else \
            'the first and the last epoch (the derived cell never changed)'
        text = f'film: {n} frame{"s" if n != 1 else ""} of {self.recorded} recorded epochs, {which}'
        if self.thinned:
            text += f', thinned evenly to at most {self.most}'
        return text + '; frames/ holds them as PNG'


# ---- drawing the frames ---------------------------------------------------------------------------
FRAME_BOX = (1280, 1440)  # largest frame (px); a fully connected DST cell is scaled down to fit
FRAME_DPI = 72
HEADING_PX = 18           # the epoch heading above each drawing (the size Graphviz gives a figure's title)
_HEADING_BAND = 28        # px of white the heading sits in (the drawing below has its own margin)
_FRAME_INDEX = 'index.json'  # frames/index.json: what each frame shows, so an unchanged frame is not redrawn
_INDEX_VERSION = 2           # 2: headings drawn onto a per-genotype drawing (1 drew each frame with Graphviz)


@functools.cache
def _font(size: int) -> Union[ImageFont.FreeTypeFont, ImageFont.ImageFont]:
    from PIL import ImageFont
    try:  # the sans-serif face Graphviz's Helvetica usually resolves to on Linux; else Pillow's own
        return ImageFont.truetype('DejaVuSans-Bold.ttf', size)
    except OSError:
        return ImageFont.load_default(size)


def _fit(im: Image.Image, box: Tuple[int, int]) -> Image.Image:
    from PIL import Image
    scale = min(box[0] / im.width, box[1] / im.height, 1.0)
    if scale == 1.0:
        return im
    return im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)


def _with_heading(drawing: Image.Image, heading: str) -> Image.Image:
    """The heading centred in a white band above the drawing (fitted so that both stay within FRAME_BOX)."""
    from PIL import Image, ImageDraw
    font = _font(HEADING_PX)
    drawing = _fit(drawing, (FRAME_BOX[0], FRAME_BOX[1] - _HEADING_BAND))
    left, top, right, bottom = font.getbbox(heading)
    width = min(max(drawing.width, right - left + 20), FRAME_BOX[0])
    out = Image.new('RGB', (width, _HEADING_BAND + drawing.height), 'white')
    ImageDraw.Draw(out).text(((width - (right - left)) // 2 - left, (_HEADING_BAND - (bottom - top)) // 2 - top),
                             heading, fill='black', font=font)
    out.paste(drawing, ((width - drawing.width) // 2, _HEADING_BAND))
    return out


def _on_canvas(im: Image.Image, canvas: Tuple[int, int]) -> Image.Image:
    """The frame centred at the top of a white canvas (every frame gets the same size, as a GIF needs)."""
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
    frames = data.get('frames') if isinstance(data, dict) and data.get('version') == _INDEX_VERSION else None
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


def _draw_frames(run: SearchRun, frames_dir: Path, plan: Sequence[Tuple[int, str]]
                 ) -> Tuple[Dict[int, Dict[str, Any]], Tuple[int, int]]:
    """Make each planned (epoch, genotype) frame and write its PNG at once, on the largest canvas so far; reuse
    a frame the last report made for the same genotype and heading. Graphviz draws each genotype once: its PNG
    is kept (compressed) until the last frame that shows it. Returns the frames by epoch and the final canvas."""
    from PIL import Image
    subtitle = ' · '.join(x for x in (run.setting('method'), run.setting('dataset'), run.name) if x)
    total = run.planned_epochs
    width = max(3, len(str(max(run.epochs[-1], total or 0))))
    index = _read_index(frames_dir / _FRAME_INDEX)
    uses = Counter(text for _, text in plan)
    drawings: Dict[str, bytes] = {}  # genotype -> Graphviz PNG, while a later frame still needs it
    entries: Dict[int, Dict[str, Any]] = {}
    canvas = (1, 1)
    for epoch, text in plan:
        heading = f'epoch {epoch} of {total}' if total else f'epoch {epoch}'
        key = hashlib.sha256(json.dumps([text, heading, subtitle, FRAME_DPI, FRAME_BOX, _INDEX_VERSION]).encode()
                             ).hexdigest()
        path = frames_dir / f'epoch_{epoch:0{width}d}.png'
        old = index.get(str(epoch))
        uses[text] -= 1
        if old is not None and old['key'] == key and _png_size(path) == tuple(old['canvas']):
            entry = dict(old, path=path)
        else:
            if text not in drawings:
                # the name is not drawn into the frame (the heading says the epoch): a crafted name cannot reach DOT
                g = Genotype.from_dict(json.loads(text)).replace(name=None)
                drawings[text] = render_graph(genotype_graph(g, title='', subtitle=subtitle, dpi=FRAME_DPI), 'png')
            with Image.open(io.BytesIO(drawings[text])) as im:
                frame = _with_heading(im.convert('RGB'), heading)
            canvas = (max(canvas[0], frame.width), max(canvas[1], frame.height))
            _save_png(path, _on_canvas(frame, canvas))
            entry = dict(key=key, size=list(frame.size), canvas=list(canvas), path=path)
        if not uses[text]:
            drawings.pop(text, None)
        canvas = (max(canvas[0], entry['size'][0]), max(canvas[1], entry['size'][1]))
        entries[epoch] = entry
    return entries, canvas


def _recentre(entries: Dict[int, Dict[str, Any]], canvas: Tuple[int, int]) -> None:
    """Put frames made on a smaller canvas than the largest frame onto the final one (one at a time)."""
    from PIL import Image
    for entry in entries.values():
        if tuple(entry['canvas']) != canvas:
            (w, h), (cw, _) = entry['size'], entry['canvas']
            with Image.open(entry['path']) as im:
                frame = im.convert('RGB').crop(((cw - w) // 2, 0, (cw - w) // 2 + w, h))
            _save_png(entry['path'], _on_canvas(frame, canvas))
            entry['canvas'] = list(canvas)


def _write_gif(frames: Sequence[Path], path: Path, frame_ms: int) -> Path:
    """The GIF, streamed to disk: one frame decoded at a time, and the one before it, so that a frame stores only
    the box where it differs. Each frame has its own fast 64-colour palette (diagrams are flat colours) and shows
    for ``frame_ms``; the last one for longer."""
    from PIL import GifImagePlugin, Image, ImageChops

    def write(f: Any) -> None:
        before = None
        for i, frame in enumerate(frames):
            with Image.open(frame) as im:
                rgb = im.convert('RGB')
            duration = frame_ms if i < len(frames) - 1 else max(3 * frame_ms, 2000)
            box = (0, 0, *rgb.size) if before is None else ImageChops.difference(before, rgb).getbbox() or (0, 0, 1, 1)
            part = rgb.crop(box).quantize(colors=64, method=Image.Quantize.FASTOCTREE)
            if before is None:  # the first frame's palette is the global one
                header, _ = GifImagePlugin.getheader(part, info={'loop': 0, 'duration': duration})
                f.write(b''.join(header))
            f.write(b''.join(GifImagePlugin.getdata(part, offset=box[:2], duration=duration,
                                                    include_color_table=before is not None)))
            before = rgb
        f.write(b';')  # GIF trailer
    return write_atomic(path, write)


def render_frames(run: SearchRun, out_dir: Path, frame_ms: int = 700, max_frames: int = MAX_FRAMES) -> Film:
    """The film's PNG frames (see :func:`film_epochs`), written as they are made, and the animated GIF of them.
    Memory stays bounded: one frame at a time, and the Graphviz PNGs of genotypes a later frame shows again.

    A frame whose drawing (genotype, heading) has not changed since the last report is reused, not redrawn.
    """
    frames_dir = out_dir / 'frames'
    drawn = [(rec['epoch'], text) for rec, text in zip(run.records, run.genotypes) if text is not None]
    if len(drawn) < len(run.records):
        run.notes.append(f'{len(run.records) - len(drawn)} epoch record(s) without a "genotype" field: '
                         'no frame for them')
    candidates = film_epochs(drawn, len(drawn))  # before thinning
    epochs = _thin(candidates, max_frames)
    chosen = set(epochs)
    entries, canvas = _draw_frames(run, frames_dir, [(e, t) for e, t in drawn if e in chosen])
    _recentre(entries, canvas)
    paths = [e['path'] for e in entries.values()]
    if frames_dir.is_dir():
        for stale in frames_dir.glob('epoch_*.png'):
            if stale not in paths:
                stale.unlink()
    film = Film(paths, None, epochs, len(changed_epochs(drawn)), len(drawn), max_frames, len(epochs) < len(candidates))
    if not entries:
        return film
    write_atomic(frames_dir / _FRAME_INDEX, json.dumps({'version': _INDEX_VERSION, 'frames': {
        str(e): {k: v for k, v in entry.items() if k != 'path'} for e, entry in entries.items()}}))
    film.gif = _write_gif(paths, out_dir / 'cells.gif', frame_ms)
    return film
