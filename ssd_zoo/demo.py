"""The demo's logic (``demo/demo_ssd.py`` is the thin CLI): find images, run a zoo model,
draw detections with ``torchvision.utils.draw_bounding_boxes``, write annotated images /
an annotated video, report detections as text or JSON.

Bad input never stops the batch: each problem becomes one ``error: ...`` line naming the
culprit (see :class:`DemoError`), the other inputs are still processed, and the caller
exits non-zero.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .atomic import atomic_write_bytes

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_NETWORK = "ssd_300_res10_face_caffe"
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3")


class DemoError(Exception):
    """A problem to report as one line (no traceback)."""


@dataclass
class Report:
    """What happened: per-input records and one-line errors."""
    records: List[Dict] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors.append(message)
        print(f"error: {message}", file=sys.stderr, flush=True)


# ---- inputs ------------------------------------------------------------------------------
def collect_images(specs: Sequence[str], report: Report) -> List[Path]:
    """Expand files, folders (their images, sorted) and globs; report the ones that match
    nothing.  Duplicates are dropped, order kept."""
    out: List[Path] = []
    for spec in specs:
        p = Path(os.path.expanduser(spec))
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTS
                           and q.is_file())
            if not found:
                report.error(f"{spec}: folder holds no images ({', '.join(IMAGE_EXTS)})")
            out += found
        elif glob.has_magic(spec):
            found = sorted(Path(q) for q in glob.glob(os.path.expanduser(spec), recursive=True)
                           if Path(q).is_file())
            if not found:
                report.error(f"{spec}: no file matches this pattern")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            report.error(f"{spec}: no such file or folder")
    return list(dict.fromkeys(out))


def prepare_out_dir(out: str) -> Path:
    """Create ``out`` and check it is writable (DemoError naming it otherwise)."""
    path = Path(os.path.expanduser(out))
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise DemoError(f"--out {out}: not writable ({exc.strerror or exc})") from None
    return path


# ---- the model ---------------------------------------------------------------------------
def load_network(name: str, weights: Optional[str] = None, cuda: bool = False,
                 fast: bool = False):
    """``get_model(name)`` with the published/bundled weights, or ``weights``; DemoError
    with suggestions for unknown names, and when CUDA is asked for but absent.  ``fast``:
    wrapped by ``ssd_zoo.fast.optimize_for_inference`` (Gluon-layout SSDs only)."""
    import torch
    import ssd_zoo
    if cuda and not torch.cuda.is_available():
        raise DemoError("--cuda: no CUDA device available (torch.cuda.is_available() is "
                        "False); run without --cuda")
    try:
        entry = ssd_zoo.get_entry(name)
    except ValueError as exc:
        raise DemoError(f"--network {exc}") from None
    if weights is None and not (entry.has_weights or entry.bundled_file):
        raise DemoError(f"--network {name} has no published weights; pass --weights PATH|URL "
                        f"or one of: {', '.join(ssd_zoo.list_models(pretrained=True))}")
    try:
        net = ssd_zoo.get_model(name, pretrained=weights is None, weights=weights)
    except (ValueError, OSError, RuntimeError) as exc:
        what = f"--weights {weights}" if weights else f"--network {name}"
        raise DemoError(f"{what}: {_one_line(exc)}") from None
    net = net.to("cuda") if cuda else net
    if fast:
        from .bundled import CaffeSSD
        from .fast import optimize_for_inference
        if isinstance(net, CaffeSSD):
            raise DemoError(f"--fast: {name} is a converted Caffe network; --fast applies to "
                            "the Gluon-CV-layout SSDs")
        net = optimize_for_inference(net)
    return net


def run_detect(net, images: List[np.ndarray], threshold: float, short: Optional[int]):
    """Detections of RGB arrays.  Converted Caffe nets resize to their input size
    themselves (exactly as OpenCV's blobFromImage), so they get the original pixels."""
    from .bundled import CaffeSSD
    from .detect import detect
    if isinstance(net, CaffeSSD) and short is None:
        return [detect(net, img, threshold=threshold, short=min(img.shape[:2]),
                       max_size=max(img.shape[:2])) for img in images]
    return detect(net, images, threshold=threshold, short=short)


# ---- drawing and writing -----------------------------------------------------------------
def draw(rgb: np.ndarray, det: Dict) -> np.ndarray:
    """Boxes with "name score" labels drawn on a copy of ``rgb`` (HxWx3 uint8)."""
    import torch
    from torchvision.utils import draw_bounding_boxes
    h, w = rgb.shape[:2]
    img = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)
    if len(det["scores"]) == 0:
        return rgb.copy()
    boxes = torch.as_tensor(det["boxes"], dtype=torch.float32).clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2])
    labels = [f"{n} {s:.2f}" for n, s in zip(det["names"], det["scores"])]
    colors = [PALETTE[int(c) % len(PALETTE)] for c in det["labels"]]
    width = max(2, round(min(h, w) / 200))
    out = draw_bounding_boxes(img, boxes, labels=labels, colors=colors, width=width,
                              fill_labels=True)  # PIL's built-in font (no TTF needed)
    return out.permute(1, 2, 0).contiguous().numpy()


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Encode by suffix and write atomically (temp file + rename)."""
    import cv2
    ok, buf = cv2.imencode(path.suffix, rgb[:, :, ::-1])
    if not ok:
        raise OSError(f"cannot encode {path.suffix} images")
    atomic_write_bytes(path, buf.tobytes())


def out_name(src: Path, taken: set) -> str:
    """``<stem>.jpg`` (``.png`` kept), made unique among ``taken``."""
    suffix = ".png" if src.suffix.lower() == ".png" else ".jpg"
    name, i = f"{src.stem}{suffix}", 1
    while name in taken:
        name, i = f"{src.stem}-{i}{suffix}", i + 1
    taken.add(name)
    return name


def record(source: str, det: Dict, shape: Tuple[int, int], output: Optional[str]) -> Dict:
    """A JSON-ready detection record of one image / frame."""
    return {"input": source, "output": output, "height": int(shape[0]), "width": int(shape[1]),
            "detections": [{"name": n, "label": int(l), "score": round(float(s), 6),
                            "box_xyxy": [round(float(v), 2) for v in b]}
                           for n, l, s, b in zip(det["names"], det["labels"], det["scores"],
                                                 det["boxes"])]}


def format_record(rec: Dict) -> str:
    dets = rec["detections"]
    lines = [f"{rec['input']}: {len(dets)} detection(s)"
             + (f" -> {rec['output']}" if rec["output"] else "")]
    lines += [f"  {d['name']:<14} {d['score']:.3f}  [" + ", ".join(f"{v:.1f}" for v in
                                                                   d["box_xyxy"]) + "]"
              for d in dets]
    return "\n".join(lines)


# ---- the runs ----------------------------------------------------------------------------
def process_images(net, paths: List[Path], out_dir: Optional[Path], report: Report,
                   threshold: float = 0.5, short: Optional[int] = None, batch_size: int = 8,
                   quiet: bool = False, progress: Optional[bool] = None) -> None:
    """Detect on ``paths`` in batches; write ``out_dir/<name>`` per image; unreadable
    images become one error line each and the rest go on."""
    from tqdm import tqdm
    from .transforms import ImageReadError, imread_rgb
    show_bar = len(paths) >= 10 if progress is None else progress
    bar = tqdm(total=len(paths), unit="img", disable=not show_bar, file=sys.stderr,
               dynamic_ncols=True)
    taken: set = set()
    for start in range(0, len(paths), max(1, batch_size)):
        batch = []
        for p in paths[start:start + batch_size]:
            try:
                batch.append((p, imread_rgb(p)))
            except ImageReadError as exc:
                report.error(str(exc))
                bar.update(1)
        if not batch:
            continue
        dets = run_detect(net, [img for _, img in batch], threshold, short)
        for (p, img), det in zip(batch, dets):
            output = None
            if out_dir is not None:
                target = out_dir / out_name(p, taken)
                try:
                    write_image(target, draw(img, det))
                    output = str(target)
                except OSError as exc:
                    report.error(f"{target}: cannot write ({_one_line(exc)})")
            rec = record(str(p), det, img.shape[:2], output)
            report.records.append(rec)
            if not quiet:
                bar.write(format_record(rec), file=sys.stdout)
            bar.update(1)
    bar.close()


def process_video(net, video: str, out_dir: Optional[Path], report: Report,
                  threshold: float = 0.5, short: Optional[int] = None,
                  max_frames: Optional[int] = None, quiet: bool = False) -> None:
    """Detect on every frame of ``video``; write ``out_dir/<stem>_det.mp4`` (mp4v) with the
    annotated frames through cv2.VideoWriter."""
    import cv2
    from tqdm import tqdm
    if not Path(video).is_file():
        report.error(f"{video}: no such video file")
        return
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        report.error(f"{video}: not a decodable video (corrupt or unsupported format)")
        return
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames:
        total = min(total or max_frames, max_frames)
    writer, target = None, None
    if out_dir is not None:
        target = out_dir / f"{Path(video).stem}_det.mp4"
        h, w = frame.shape[:2]
        writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not writer.isOpened():
            report.error(f"{target}: cv2.VideoWriter cannot open it (mp4v codec missing?)")
            writer, target = None, None
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=quiet, dynamic_ncols=True)
    counts, n = [], 0
    while ok and (not max_frames or n < max_frames):
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        det = run_detect(net, [rgb], threshold, short)[0]
        if writer is not None:
            writer.write(np.ascontiguousarray(draw(rgb, det)[:, :, ::-1]))
        rec = record(f"{video}#{n}", det, rgb.shape[:2], None)
        report.records.append(rec)
        counts.append(len(rec["detections"]))
        n += 1
        bar.update(1)
        ok, frame = cap.read()
    bar.close()
    cap.release()
    if writer is not None:
        writer.release()
    if not quiet:
        print(f"{video}: {n} frame(s), {sum(counts)} detection(s)"
              + (f" -> {target}" if target else ""))


def show(out_dir: Optional[Path], records: Iterable[Dict]) -> Optional[str]:
    """Display the annotated images; returns a one-line reason when there is no display."""
    import cv2
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return "--show: no display available (DISPLAY is not set)"
    try:
        for rec in records:
            if rec.get("output"):
                cv2.imshow("ssd_zoo demo", cv2.imread(rec["output"]))
                if cv2.waitKey(0) & 0xFF in (27, ord("q")):
                    break
        cv2.destroyAllWindows()
    except cv2.error:
        return "--show: this OpenCV build has no GUI support (opencv-python-headless)"
    return None


def to_json(network: str, report: Report) -> str:
    return json.dumps({"network": network, "images": report.records,
                       "errors": report.errors}, indent=1)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


__all__ = ["DemoError", "Report", "collect_images", "prepare_out_dir", "load_network",
           "run_detect", "draw", "process_images", "process_video", "show", "to_json",
           "DEFAULT_NETWORK"]
