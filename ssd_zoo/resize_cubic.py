"""Bicubic resize of uint8 images, bit-exact with ``mx.image.imresize(..., interp=2)``.

MXNet 1.9.1 links a static OpenCV 3.4.2; its ``cv::resize(INTER_CUBIC)`` on 8-bit data
(``resizeGeneric_`` with ``HResizeCubic<uchar,int,short>`` and
``VResizeCubic<uchar,int,short,FixedPtCast<int,uchar,22>,VResizeCubicVec_32s8u>``) does:

* scale = 1 / (dst_size / src_size) in double; for every destination index d
  ``f = float((d + 0.5) * scale - 0.5)``, ``s = floor(f)``, ``t = f - s`` (float32);
* Keys cubic weights (A = -0.75) evaluated in float32 exactly as ``interpolateCubic``
  (the 4th weight is ``1 - w0 - w1 - w2``), each converted to Q11 fixed point with
  ``saturate_cast<short>(w * 2048)`` (round half to even), no renormalisation;
* source taps ``s-1 .. s+2`` clamped into the image (replicated border) in both directions;
* horizontal pass: exact int32 dot products (pixel x Q11 weight);
* vertical pass, SSE2 vector path (``VResizeCubicVec_32s8u``) on the first
  ``8 * floor(width*cn / 8)`` values of each row: the int32 rows and weights
  ``beta_k * 2**-22`` are converted to float32, combined as
  ``((r0*b0 + r1*b1) + r2*b2) + r3*b3`` with float32 rounding after every operation, then
  rounded half-to-even (``_mm_cvtps_epi32``) and saturated to uint8;
* the remaining ``width*cn % 8`` values of each row go through the scalar integer path:
  ``(r0*b0 + r1*b1 + r2*b2 + r3*b3 + 2**21) >> 22`` saturated to uint8;
* equal source and destination sizes are a plain copy.

opencv-python 4.x's ``cv2.resize(INTER_CUBIC)`` differs from this by +-1 on ~1% of the
values, so it cannot stand in for MXNet's resize (INTER_LINEAR / INTER_AREA do agree).
"""
from __future__ import annotations

import numpy as np

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS  # INTER_RESIZE_COEF_SCALE
_A = np.float32(-0.75)
_ONE = np.float32(1.0)


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """interpolateCubic(float x, float* coeffs) in float32, vectorized -> (n, 4) float32."""
    t = t.astype(np.float32)
    a = _A
    x1 = t + _ONE
    w0 = ((a * x1 - np.float32(5) * a) * x1 + np.float32(8) * a) * x1 - np.float32(4) * a
    w1 = ((a + np.float32(2)) * t - (a + np.float32(3))) * t * t + _ONE
    u = _ONE - t
    w2 = ((a + np.float32(2)) * u - (a + np.float32(3))) * u * u + _ONE
    w3 = _ONE - w0 - w1 - w2
    return np.stack([w0, w1, w2, w3], axis=1).astype(np.float32)


def _taps(src_size: int, dst_size: int):
    """Source indices (n, 4) int64 (border-replicated) and Q11 weights (n, 4) int32."""
    scale = 1.0 / (float(dst_size) / float(src_size))  # 1./inv_scale, both in double
    d = np.arange(dst_size, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f)
    t = (f - s.astype(np.float32)).astype(np.float32)
    w = _cubic_weights(t)
    iw = np.clip(np.rint(w * np.float32(_COEF_SCALE)), -32768, 32767).astype(np.int32)
    idx = s.astype(np.int64)[:, None] + np.arange(-1, 3, dtype=np.int64)[None, :]
    np.clip(idx, 0, src_size - 1, out=idx)
    return idx, iw


def resize_cubic(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an HxW or HxWxC uint8 image to (height, width) like MXNet's OpenCV 3.4.2
    ``cv::resize(..., INTER_CUBIC)``."""
    if img.dtype != np.uint8:
        raise TypeError(f"bicubic resize expects uint8, got {img.dtype}")
    width, height = int(width), int(height)
    if width <= 0 or height <= 0:
        raise ValueError(f"invalid target size {width}x{height}")
    squeeze = img.ndim == 2
    src = img[:, :, None] if squeeze else img
    if src.ndim != 3:
        raise ValueError(f"expected HxW or HxWxC image, got shape {img.shape}")
    sh, sw, cn = src.shape
    if sh == 0 or sw == 0:
        raise ValueError(f"empty image {img.shape}")
    if (sh, sw) == (height, width):
        out = src.copy()
        return out[:, :, 0] if squeeze else out

    xidx, alpha = _taps(sw, width)
    yidx, beta = _taps(sh, height)

    # horizontal pass, only on source rows the vertical pass reads (exact int32)
    rows, yinv = np.unique(yidx, return_inverse=True)
    yinv = yinv.reshape(yidx.shape)
    s = src.reshape(sh, sw * cn)[rows]
    rw = width * cn
    chan = np.arange(cn, dtype=np.int64)
    hbuf = np.empty((len(rows), rw), dtype=np.int32)
    tmp = np.empty_like(hbuf)
    for k in range(4):
        cols = (xidx[:, k, None] * cn + chan).reshape(rw)
        w = np.repeat(alpha[:, k], cn)
        if k == 0:
            np.multiply(np.take(s, cols, axis=1), w, out=hbuf, dtype=np.int32)
        else:
            np.multiply(np.take(s, cols, axis=1), w, out=tmp, dtype=np.int32)
            hbuf += tmp

    # vertical pass: SSE2 float path on the 8-aligned prefix of each row, integer
    # FixedPtCast on the remaining width*cn % 8 values
    nvec = rw - rw % 8
    out = np.empty((height, rw), dtype=np.uint8)
    if nvec:
        hf = hbuf[:, :nvec].astype(np.float32)  # exact: |values| < 2**24
        bf = beta.astype(np.float32) * np.float32(1.0 / (_COEF_SCALE * _COEF_SCALE))
        acc = np.multiply(hf[yinv[:, 0]], bf[:, 0, None])
        ftmp = np.empty_like(acc)
        for k in range(1, 4):
            np.multiply(hf[yinv[:, k]], bf[:, k, None], out=ftmp)
            acc += ftmp
        np.rint(acc, out=acc)
        np.clip(acc, 0, 255, out=acc)
        out[:, :nvec] = acc
    if nvec < rw:
        bi = beta.astype(np.int64)
        acc = hbuf[yinv[:, 0], nvec:].astype(np.int64) * bi[:, 0, None]
        for k in range(1, 4):
            acc += hbuf[yinv[:, k], nvec:].astype(np.int64) * bi[:, k, None]
        acc = (acc + (1 << (2 * _COEF_BITS - 1))) >> (2 * _COEF_BITS)
        out[:, nvec:] = np.clip(acc, 0, 255)
    out = out.reshape(height, width, cn)
    return out[:, :, 0] if squeeze else out
