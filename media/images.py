"""Image validation and decoding (Pillow).

Uploads are identified from their bytes, never from the client's filename or
Content-Type. Accepted: JPEG (including MPO, the multi-picture JPEG many phones
save: its first picture is a plain JPEG), PNG (8- and 16-bit), WebP, and
HEIC/HEIF (iPhones' default, decoded by pillow-heif). Decoding applies the
EXIF orientation so that face boxes refer to the upright picture a person sees,
and scales 16-bit greyscale to 8 bits (Pillow's own conversion clips every value
above 255 to white, so a 16-bit photo of a face would show no face; issue 11
item 16).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "DecodedImage",
    "ImageInfo",
    "ImageRejected",
    "decode_for_detection",
    "decode_rgb",
    "inspect_image",
    "public_copy",
]

#: Pillow format name -> (media type, file extension).
ACCEPTED_MEDIA_TYPES: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "MPO": ("image/jpeg", "jpg"),  # a JPEG followed by more pictures (phones' depth maps)
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "HEIF": ("image/heic", "heic"),
}
#: Formats whose decoder can skip work at a reduced scale (libjpeg DCT scaling).
_JPEG_LIKE = frozenset({"JPEG", "MPO"})

pillow_heif.register_heif_opener()

# Our own pixel limit (settings.upload.max_pixels) is checked before decoding;
# Pillow's global guard stays on as a second line.
Image.MAX_IMAGE_PIXELS = 200_000_000


class ImageRejected(ValueError):
    """The bytes are not an acceptable image. ``reason`` is one of
    ``not_an_image``, ``unsupported_format``, ``corrupt``, ``too_many_pixels``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ImageInfo:
    media_type: str
    extension: str
    width: int  # pixels, after EXIF orientation
    height: int


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise ImageRejected("not_an_image", "the file is not a recognisable image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("corrupt", f"the image data is damaged or truncated: {exc}") from exc
    if image.format not in ACCEPTED_MEDIA_TYPES:
        raise ImageRejected(
            "unsupported_format",
            f"image format {image.format} is not accepted; send the photo as JPEG, PNG, WebP "
            "or HEIC (on a phone: share or export it as JPEG, e.g. iPhone Settings > Camera > "
            "Formats > Most Compatible)",
        )
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}",
        )
    return image


def _load_upright(image: Image.Image) -> Image.Image:
    # face_recognition sets this global to True when imported, which would make
    # Pillow silently accept truncated files; a damaged upload must be refused.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("corrupt", f"the image data is damaged or truncated: {exc}") from exc
    return upright if upright is not None else image


def _rgb(image: Image.Image) -> np.ndarray:
    """``image`` as an RGB array (height × width × 3, uint8). 16-bit greyscale
    (Pillow modes ``I;16*``, and ``I`` holding 16-bit values) is scaled by
    255/65535, as an 8-bit export of the same photo would be, not clipped."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image).astype(np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def inspect_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Identify and fully decode ``data`` to prove it is a whole, sane image.

    Args:
        data: the uploaded bytes.
        max_pixels: largest accepted width × height (decompression-bomb guard).

    Returns:
        The sniffed media type, extension and upright size in pixels.

    Raises:
        ImageRejected: not an image, an unaccepted format, truncated/corrupt data,
            or more than ``max_pixels`` pixels.
    """
    image = _open(data, max_pixels)
    fmt = str(image.format)
    upright = _load_upright(image)
    media_type, extension = ACCEPTED_MEDIA_TYPES[fmt]
    return ImageInfo(media_type, extension, upright.width, upright.height)


def decode_rgb(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode to an upright RGB array of shape (height, width, 3), dtype uint8.

    Raises:
        ImageRejected: as :func:`inspect_image`.
    """
    upright = _load_upright(_open(data, max_pixels))
    return _rgb(upright)


@dataclass
class DecodedImage:
    """An upright RGB picture, possibly decoded at a reduced scale.

    ``rgb`` (height × width × 3, uint8) is what was decoded; ``full_size`` is the
    upright (width, height) of the original in pixels. ``scale`` maps coordinates of
    ``rgb`` to the original's: ``x_full = x * scale[0]``, ``y_full = y * scale[1]``.
    :meth:`full_rgb` decodes the original at full resolution when it is needed
    (once; the result is kept).
    """

    rgb: np.ndarray
    full_size: tuple[int, int]
    data: bytes = field(repr=False, default=b"")
    max_pixels: int = 0
    _full: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_array(cls, rgb: np.ndarray) -> DecodedImage:
        """Wrap an already decoded full-resolution array."""
        height, width = rgb.shape[:2]
        return cls(rgb=rgb, full_size=(width, height))

    @property
    def scale(self) -> tuple[float, float]:
        height, width = self.rgb.shape[:2]
        return self.full_size[0] / width, self.full_size[1] / height

    @property
    def reduced(self) -> bool:
        return self.scale != (1.0, 1.0)

    def full_rgb(self) -> np.ndarray:
        """The original at full resolution, shape (full height, full width, 3).

        Raises:
            ImageRejected: as :func:`inspect_image`.
        """
        if not self.reduced:
            return self.rgb
        if self._full is None:
            self._full = decode_rgb(self.data, max_pixels=self.max_pixels)
        return self._full


def decode_for_detection(data: bytes, *, max_pixels: int, min_side: int) -> DecodedImage:
    """Decode ``data`` upright at the smallest scale whose longest side is still at
    least ``min_side`` pixels.

    JPEG is decoded with libjpeg's DCT scaling (1/2, 1/4 or 1/8 of each side,
    Pillow's ``Image.draft``), which skips most of the decoding work instead of
    decoding everything and then resizing: a 12 MP photo decodes at 1/2 scale in
    about 17 ms instead of 125 ms (measured on this project's bench machine, see
    docs/performance.md). Other formats, and JPEGs no larger than ``min_side``,
    are decoded at full resolution.

    Raises:
        ImageRejected: as :func:`inspect_image`.
    """
    image = _open(data, max_pixels)
    raw_width, raw_height = image.size
    longest = max(raw_width, raw_height)
    if image.format in _JPEG_LIKE and longest > min_side:
        factor = min_side / longest
        image.draft("RGB", (math.ceil(raw_width * factor), math.ceil(raw_height * factor)))
    reduced_raw = image.size
    upright = _load_upright(image)
    swapped = upright.size != reduced_raw
    full_size = (raw_height, raw_width) if swapped else (raw_width, raw_height)
    rgb = _rgb(upright)
    return DecodedImage(rgb=rgb, full_size=full_size, data=data, max_pixels=max_pixels)


def public_copy(data: bytes, *, max_pixels: int, max_side: int = 1024) -> bytes:
    """A copy fit for publication: upright, at most ``max_side`` pixels on its
    longest side, re-encoded as JPEG (quality 85) with **no metadata** — EXIF
    (GPS position, capture time, camera serial), XMP and ICC are all dropped.

    PIPL art. 28–29: a public 寻亲公告 shows the face, never where or when a
    phone took the picture.

    Raises:
        ImageRejected: as :func:`inspect_image`.
    """
    upright = Image.fromarray(_rgb(_load_upright(_open(data, max_pixels))))
    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    clean = Image.new("RGB", upright.size)
    clean.paste(upright)  # a fresh image carries no info dict from the original
    buf = io.BytesIO()
    clean.save(buf, format="JPEG", quality=85, optimize=True)
    return buf.getvalue()
