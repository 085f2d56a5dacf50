"""Decode one uploaded photo into the square tile the model sees.

The same function serves the HTTP path, the synthetic training data and calibration, so the model
is trained and calibrated on exactly the pixels it will be served.

Steps: sniff the format (JPEG, PNG, WebP; HEIC with the ``[heic]`` extra) → refuse images over the
pixel limit *before* decoding → JPEG DCT scaling through Pillow ``draft`` to the smallest size that
still covers the analysis resolution → EXIF orientation → any mode (CMYK, grey, palette, alpha,
16-bit) to 8-bit RGB → centre square crop → the analysis image (used by the quality check) and the
model tile.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from authentiq.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedMediaType

log = logging.getLogger(__name__)

BASE_FORMATS = ("JPEG", "PNG", "WEBP")
_heif_state: dict[str, bool] = {}


def supported_formats() -> tuple[str, ...]:
    """Formats we accept; HEIF/HEIC only when ``pillow-heif`` is installed (``[heic]`` extra)."""
    if "registered" not in _heif_state:
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            _heif_state["registered"] = False
        else:
            register_heif_opener()
            _heif_state["registered"] = True
    return (*BASE_FORMATS, "HEIF") if _heif_state["registered"] else BASE_FORMATS


@dataclass(frozen=True)
class DecodedView:
    """One decoded view: the model tile, a larger grey image for the quality check, and facts."""

    tile: np.ndarray  # uint8 [tile, tile, 3]
    analysis: np.ndarray  # float32 [a, a] grey, 0..255
    display: np.ndarray  # uint8 [a, a, 3]: the square the model saw, for heatmap overlays
    format: str
    width: int  # after EXIF orientation, at full resolution
    height: int
    jpeg_quality: int | None = None  # estimated from the quantization tables; None: not a JPEG


# libjpeg's luminance quantization table at quality 50 (ITU-T T.81, Annex K), in the natural
# order Pillow gives tables in: an encoder at quality q scales it by 5000/q % (q < 50) or
# 200 - 2q % (q >= 50), each entry clipped to 1..255.
_BASE_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def jpeg_quality(img: Image.Image) -> int | None:
    """The quality (1-100) a JPEG was saved at, estimated from the quantization table its first
    (luminance) component uses, as libjpeg scales it (other encoders' tables give a comparable
    figure); None for other formats. Entries clipped at 255 are left out, which keeps the
    lowest qualities apart. Read from the header: no pixel is decoded."""
    tables = getattr(img, "quantization", None)
    layers = getattr(img, "layer", None)  # (component, h, v, its table): the first is luma
    index = layers[0][3] if layers else 0
    if not tables or index not in tables or len(tables[index]) != len(_BASE_LUMA):
        return None
    kept = [(q, b) for q, b in zip(tables[index], _BASE_LUMA, strict=True) if q < 255]
    if not kept:
        return 1
    scale = 100 * sum(q for q, _ in kept) / sum(b for _, b in kept)  # % of the quality-50 table
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(max(1, min(100, round(quality))))


# Bytes per pixel as Pillow holds each mode in memory (RGB is padded to 4).
_HELD_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
_REDUCIBLE = {"L", "LA", "La", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
              "I", "F"}  # modes Image.reduce takes


@dataclass(frozen=True)
class Probe:
    """A photo's header, read without decoding its pixels: what decoding it will cost."""

    image: Image.Image  # opened, DCT scaling (JPEG draft) chosen, pixels not decoded yet
    view: str | None
    format: str
    orientation: int
    width: int  # after EXIF orientation, at full resolution
    height: int
    decoded_bytes: int  # the raster as it will be decoded: w * h * channels * bytes per sample

    @property
    def working_bytes(self) -> int:
        """Memory a decode holds at its peak: the raster and one RGB working copy at most."""
        w, h = self.image.size
        return self.decoded_bytes + w * h * 4


def probe(data: bytes, *, analysis_size: int = 256, max_pixels: int = 50_000_000,
          max_decoded_bytes: int | None = None, view: str | None = None) -> Probe:
    """Read the header only (Pillow gives size and mode before ``load``): refuse what is too
    large before any pixel is decoded — too many pixels, or more decoded bytes than
    ``max_decoded_bytes`` (a small PNG of a huge, flat, 16-bit or alpha image)."""
    if not data:
        raise EmptyFile("the file is empty (0 bytes)", view=view)
    formats = supported_formats()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # corrupt EXIF: metadata, not the photo
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaType(
            f"{_the(view)} file is not a {', '.join(formats[:-1])} or {formats[-1]} image",
            view=view
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc), view=view) from exc
    except OSError as exc:  # header present but unreadable
        raise CorruptImage(f"cannot read the image header: {exc}", view=view) from exc

    width, height = img.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{width}×{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}",
            view=view,
        )
    fmt = img.format or "unknown"
    try:
        orientation = _orientation(img)
        if orientation in (5, 6, 7, 8):  # EXIF says rotate by 90° or 270°
            width, height = height, width
        if fmt == "JPEG":
            # DCT scaling: decode at 1/2, 1/4 or 1/8 while the short side stays >= analysis_size.
            k = analysis_size / min(width, height)
            if k < 1:
                img.draft(None, (max(1, int(width * k + 0.999)), max(1, int(height * k + 0.999))))
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"{_the(view)} photo cannot be decoded ({exc}); send it again",
                           view=view) from exc
    decoded = img.size[0] * img.size[1] * _HELD_BYTES.get(img.mode, 4)
    if max_decoded_bytes is not None and decoded > max_decoded_bytes:
        raise ImageTooLarge(
            f"{img.size[0]}×{img.size[1]} {img.mode} decodes to {decoded / 2**20:,.0f} MiB; the "
            f"limit per photo is {max_decoded_bytes / 2**20:,.0f} MiB (send a JPEG, or fewer "
            f"pixels)", view=view, decoded_bytes=decoded)
    return Probe(img, view, fmt, orientation, width, height, decoded)


def decode_view(
    data: bytes,
    *,
    tile_size: int,
    analysis_size: int = 256,
    max_pixels: int = 50_000_000,
    max_decoded_bytes: int | None = None,
    view: str | None = None,
) -> DecodedView:
    """Decode image bytes into a :class:`DecodedView`; raise a domain error on bad input."""
    return decode_probed(probe(data, analysis_size=analysis_size, max_pixels=max_pixels,
                               max_decoded_bytes=max_decoded_bytes, view=view),
                         tile_size=tile_size, analysis_size=analysis_size)


def decode_probed(p: Probe, *, tile_size: int, analysis_size: int = 256) -> DecodedView:
    """Decode the pixels of a probed photo. A large raster is reduced to its centre square at
    twice the analysis size before any transposition or mode conversion, so that no full-size
    copy is made (an RGBA PNG used to peak at 4× its raster)."""
    img = p.image
    try:
        img.load()
        w, h = img.size
        side = min(w, h)
        factor = side // (2 * analysis_size)
        if factor >= 2 and img.mode in _REDUCIBLE:
            left, top = (w - side) // 2, (h - side) // 2
            img = img.reduce(factor, box=(left, top, left + side, top + side))
        if p.orientation in _TRANSPOSE:
            img = img.transpose(_TRANSPOSE[p.orientation])
        rgb = _to_rgb(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(f"{_the(p.view)} photo cannot be decoded ({exc}); send it again",
                           view=p.view) from exc

    square = _centre_square(rgb)
    analysis_img = square.resize((analysis_size, analysis_size), Image.Resampling.BILINEAR)
    tile_img = analysis_img.resize((tile_size, tile_size), Image.Resampling.BOX)
    analysis = np.asarray(analysis_img.convert("L"), dtype=np.float32)
    return DecodedView(
        tile=np.asarray(tile_img, dtype=np.uint8),
        analysis=analysis,
        display=np.asarray(analysis_img, dtype=np.uint8),
        format=p.format,
        width=p.width,
        height=p.height,
        jpeg_quality=jpeg_quality(p.image),
    )


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}


def release_memory() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``): after a large decode, glibc
    keeps the freed raster in its arenas and RSS stays high. A no-op elsewhere."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


@functools.cache
def _libc() -> Any:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation (1..8); 1 when the EXIF block is missing, corrupt or nonsensical."""
    if img.format == "PNG" and "exif" not in img.info:
        # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the
        # pixels: a probe would decode every PNG outside the decode budget. Only an eXIf chunk
        # before the pixel data (where the PNG extension puts it) is read.
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            value = img.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, struct.error):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; alpha is composited on white, 16-bit scaled, not clipped."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img).astype(np.float32)
        peak = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _centre_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def _the(view: str | None) -> str:
    return f"the {view}" if view else "this"
