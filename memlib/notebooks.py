"""Execute the numbered notebooks with papermill, in order, for one profile.

Executed notebooks read like a terminal, not like a recording of one: the kernel runs with
``TQDM_DISABLE=1`` (tqdm ≥ 4.66 reads it as the default of ``disable``, so every bar that does
not force itself on stays off), and each executed notebook's stream outputs are then reduced to
what a terminal would show at the end (:func:`render_stream`): a bar redrawn with carriage
returns keeps its final line, a bar that cleared itself (``leave=False``) leaves nothing.
A bar that forces itself on (``disable=False``) and stays (``leave=True``) leaves one final
line, which is dropped too (:func:`drop_progress_lines`). papermill's own bar in the terminal
is unaffected. Inline figures are narrowed and stored as palette PNGs or JPEGs
(:func:`inline_image`), so an executed notebook stays light.
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import os
import re
import time
from pathlib import Path

from .errors import InputError
from .locations import checkout_root
from . import provenance
from .machine import cpu_model
from .params import away_from_committed_figures, check_cells_fit, load_params

# The runner (make figures) is the one part of memlib that needs the source checkout: the
# notebooks live there and it writes <checkout>/<figures_dir>. An installed wheel has no
# notebooks; REPO is then the current folder and run_notebooks says what is missing.
REPO = checkout_root() or Path.cwd()
NOTEBOOK_DIR = REPO / "notebooks"


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The numbered notebooks ``notebooks/NN_*.ipynb`` in order (optionally filtered by prefix)."""
    if not NOTEBOOK_DIR.is_dir():
        raise InputError(f"no notebooks in {NOTEBOOK_DIR}: run-notebooks needs the source "
                         f"checkout (git clone the repository; an installed memlib has no notebooks)")
    paths = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in names)]
        if not paths:
            raise InputError(f"no notebook matches {names}; have: "
                             f"{', '.join(p.stem for p in sorted(NOTEBOOK_DIR.glob('*.ipynb')))}")
    return paths


def run_notebooks(profile: str = "default", names: list[str] | None = None,
                  kernel: str | None = None,
                  params_file: str | os.PathLike | None = None) -> list[dict]:
    """Run notebooks with ``-p profile <profile>``; executed copies go to ``<figures_dir>/executed``.

    ``params_file``: your own YAML (keys of ``params/default.yaml``) used instead of the
    profile, passed to every notebook as ``-p params_file <path>``; its ``figures_dir`` decides
    where the outputs go.

    A run of every notebook rebuilds ``<figures_dir>/claims.csv`` from scratch (it deletes the
    file first, so no row of an earlier run survives); a run of some notebooks merges their
    rows into it, keeping the other notebooks' rows.

    Returns one row per notebook (name, profile, seconds, finished, cpu); each notebook's row in
    ``<figures_dir>/executed/timings.csv`` is replaced as soon as it finishes, with the UTC time
    it finished and the CPU it ran on, so a timing read later names the machine that made it.
    ``<figures_dir>/provenance.json`` (:mod:`memlib.provenance`) is rewritten after each
    notebook: this run's notebooks, machine, precision, threads, versions and commit.
    """
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager

    params = load_params(profile, path=params_file)
    check_cells_fit(params)            # a cell count the set sizes rule out fails before any notebook
    params = away_from_committed_figures(params)
    paths = notebook_paths(names)      # before anything is written: no notebooks, no figures/
    parameters = {"profile": profile}
    if params_file is not None:
        parameters["params_file"] = str(Path(params_file).resolve())
        profile = Path(params_file).name
    out_dir = REPO / params["figures_dir"] / "executed"
    out_dir.mkdir(parents=True, exist_ok=True)
    if kernel is None:
        kernel = "memlib" if "memlib" in KernelSpecManager().find_kernel_specs() else "python3"
    if paths == notebook_paths():
        from .claims import CLAIMS_TABLE
        (REPO / params["figures_dir"] / CLAIMS_TABLE).unlink(missing_ok=True)
    rows, cpu = [], cpu_model()
    for path in paths:
        start = time.perf_counter()
        print(f"[memlib] {path.name} (profile {profile}) …", flush=True)
        try:
            with _environment(KERNEL_ENV):     # read by the kernel papermill starts
                papermill.execute_notebook(str(path), str(out_dir / path.name),
                                           parameters=parameters, kernel_name=kernel,
                                           cwd=str(REPO), progress_bar=True)
        finally:
            if (out_dir / path.name).exists():
                tidy_executed(out_dir / path.name)
        seconds = time.perf_counter() - start
        finished = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        rows.append({"notebook": path.stem, "profile": profile, "seconds": round(seconds, 1),
                     "finished": finished, "cpu": cpu})
        print(f"[memlib] {path.name} done in {seconds / 60:.1f} min", flush=True)
        _record_timing(out_dir / "timings.csv", rows[-1])
        provenance.write(out_dir.parent / provenance.PROVENANCE_FILE,
                         provenance.collect(params, profile, rows, REPO,
                                            complete=paths == notebook_paths() and len(rows) == len(paths)))
    return rows


TIMING_COLUMNS = ["notebook", "profile", "seconds", "finished", "cpu"]
# Added to the environment of the kernels run_notebooks starts: progress bars off by default.
KERNEL_ENV = {"TQDM_DISABLE": "1"}
# Inline figures of executed notebooks (memlib.notebooks.inline_image); figures/ keeps the full PNGs.
PALETTE_COLORS = 32       # colours of inline charts
INLINE_JPEG_QUALITY = 70  # inline sample galleries
INLINE_MAX_WIDTH = 720    # px
INLINE_MAX_BYTES = 20_000  # per inline image: a notebook of ~8 figures stays under ≈ 300 kB
INLINE_MIN_WIDTH = 420    # px: no inline image is narrowed further than this to meet INLINE_MAX_BYTES
# tqdm's standard bar as a terminal shows it at the end, e.g.
# "embed test [vit, 112px]: 100%|██████████| 2000/2000 [00:52<00:00, 40.90img/s]"
_PROGRESS_LINE = re.compile(r"^.*\d+%\|.*\| *[\d.]+[kMGT]?/[\d.]+[kMGT]? \[[^\]]*\]$")
_TERMINAL_CONTROL = re.compile(r"(\r|\n|\x1b\[A)")


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables inside the block (for child processes) and restore them.

    tqdm reads ``TQDM_*`` when it is first imported, and papermill has imported it by now,
    so this process's own bars keep their settings."""
    import tqdm  # noqa: F401  (imported before the variables change: see above)

    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def render_stream(text: str) -> str:
    """What a terminal shows after printing ``text``: carriage returns (``\\r``) and cursor-up
    (``ESC[A``, tqdm's nested bars) overwrite earlier characters.

    A line that was written and ended up blank (a progress bar that cleared itself) is
    dropped; empty lines that were printed as such are kept; trailing spaces are removed.
    """
    lines, touched = [""], [False]
    row = col = 0
    for token in _TERMINAL_CONTROL.split(text):
        if token == "\r":
            col = 0
        elif token == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
                touched.append(False)
        elif token == "\x1b[A":
            row = max(0, row - 1)
        elif token:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token):]
            touched[row] = True
            col += len(token)
    out = []
    for i, (line, written) in enumerate(zip(lines, touched)):
        if written and not line.strip():
            continue
        newline = "\n" if i < len(lines) - 1 else ""     # every line but the last ended in one
        out.append(line.rstrip() + newline)
    return "".join(out)


def tidy_executed(path: str | os.PathLike) -> None:
    """Rewrite an executed notebook so that it reads cleanly and stays light.

    Each cell's adjacent stream outputs of one kind (stdout or stderr) are merged and reduced
    to their final terminal text (:func:`render_stream`) without the final lines of progress
    bars that forced themselves on (:func:`drop_progress_lines`), and every inline PNG is narrowed
    to :data:`INLINE_MAX_WIDTH` pixels (and further, to about :data:`INLINE_MAX_BYTES`) and
    stored as a palette PNG or a JPEG, whichever is smaller (:func:`inline_image`), so that an
    executed notebook stays under ≈ 300 kB. The full-resolution figures written to
    ``<figures_dir>`` are not touched.
    """
    import nbformat

    from .store import atomic_path

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        outputs = []
        for out in cell.outputs:
            if (out.output_type == "stream" and outputs and outputs[-1].output_type == "stream"
                    and outputs[-1].name == out.name):
                outputs[-1].text += out.text
            else:
                outputs.append(out)
        for out in outputs:
            if out.output_type == "stream":
                out.text = drop_progress_lines(render_stream(out.text))
            elif {"image/png", "image/jpeg"} & set(out.get("data", {})):
                mime, data = inline_image(out.data.pop("image/png", None) or out.data.pop("image/jpeg"))
                out.data[mime] = data
            if "text/html" in out.get("data", {}):     # a table: the notebook shows its HTML
                out.data.pop("text/plain", None)
        cell.outputs = [o for o in outputs if o.output_type != "stream" or o.text.strip()]
    with atomic_path(path, suffix=".ipynb") as tmp:
        nbformat.write(nb, str(tmp))


def drop_progress_lines(text: str) -> str:
    """``text`` without the lines that are a finished tqdm bar in its standard format."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not _PROGRESS_LINE.match(line.rstrip("\n")))


def inline_image(image_base64: str, max_width: int | None = None,
                 max_bytes: int | None = None) -> tuple[str, str]:
    """The lightest faithful inline copy of a base64 PNG or JPEG: ``(mime type, base64 data)``.

    The image is narrowed to at most ``max_width`` pixels (default :data:`INLINE_MAX_WIDTH`;
    aspect kept, Lanczos), flattened onto white and encoded twice: as a PNG with a
    :data:`PALETTE_COLORS`-colour palette (charts: few distinct colours, what is lost are
    antialiasing shades) and as a JPEG of quality :data:`INLINE_JPEG_QUALITY` (sample galleries:
    photographs, which a palette cannot compress); the smaller wins. While that is over
    ``max_bytes`` (default :data:`INLINE_MAX_BYTES`) the width shrinks by 15 %, down to
    :data:`INLINE_MIN_WIDTH`. The input is kept when nothing is smaller.
    """
    import base64
    import io

    from PIL import Image

    max_width = INLINE_MAX_WIDTH if max_width is None else max_width
    max_bytes = INLINE_MAX_BYTES if max_bytes is None else max_bytes
    raw = base64.b64decode(image_base64)
    original = Image.open(io.BytesIO(raw))
    mime_in = "image/jpeg" if original.format == "JPEG" else "image/png"
    rgba = original.convert("RGBA")
    flat = Image.new("RGB", original.size, "white")
    flat.paste(rgba, mask=rgba.getchannel("A"))
    width = min(max_width, original.width)
    while True:
        image = flat if width == original.width else flat.resize(
            (width, max(1, round(original.height * width / original.width))), Image.Resampling.LANCZOS)
        encoded = {}
        for mime, fmt, options in (("image/png", "PNG", {}), ("image/jpeg", "JPEG", {"quality": INLINE_JPEG_QUALITY})):
            buffer = io.BytesIO()
            (image.quantize(PALETTE_COLORS) if fmt == "PNG" else image).save(buffer, format=fmt, optimize=True, **options)
            encoded[mime] = buffer.getvalue()
        mime = min(encoded, key=lambda m: len(encoded[m]))   # charts: the PNG; photographs: the JPEG
        data = encoded[mime]
        size = len(data)
        if size <= max_bytes or width <= INLINE_MIN_WIDTH:
            break
        width = max(INLINE_MIN_WIDTH, int(width * 0.85))
    if size >= len(raw):
        return mime_in, image_base64
    return mime, base64.b64encode(data).decode("ascii")


def _record_timing(path: Path, row: dict) -> None:
    """Replace this notebook's row in ``timings.csv`` (other notebooks' rows are kept; rows
    written before ``finished``/``cpu`` were recorded keep those fields empty)."""
    from .store import atomic_path

    old = []
    if path.exists():
        with open(path, newline="") as f:
            old = [r for r in csv.DictReader(f) if r["notebook"] != row["notebook"]]
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, TIMING_COLUMNS, restval="", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(old + [row], key=lambda r: r["notebook"]))
