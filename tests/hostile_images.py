"""Image files made to hurt a reader, written by the tests that need them."""
import struct
import zlib


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG (138 bytes at 60000 × 60000) whose header claims width × height grey pixels (a
    decompression bomb's header: OpenCV raises on one beyond its 2^30-pixel limit instead of returning None)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))
