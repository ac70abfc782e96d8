"""Encrypted backup archives: a stream of AES-256-GCM chunks keyed from a key file.

Why chunks: an archive can be many gigabytes, so it is written and read as a stream (tarfile's "w|gz"/"r|gz")
and never held in memory. Each chunk is sealed on its own with a nonce made of a random per-archive prefix and the
chunk's number, and the number plus a "last chunk" flag are authenticated, so reordered, dropped, altered or
truncated archives are refused instead of restoring part of a database.

Layout: MAGIC, 16-byte salt, 8-byte nonce prefix, then chunks of (4-byte big-endian length, ciphertext+tag).
The key is HKDF-SHA256 of the key file's bytes (at least 32 of them) with the salt.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"COLLAB-BACKUP-AESGCM-1\n"
CHUNK = 1 << 20
_LEN = struct.Struct(">I")


class ArchiveKeyError(Exception):
    """The key file is unusable, or the archive was not made with it (or was altered)."""


def read_key_file(path: str | os.PathLike) -> bytes:
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise ArchiveKeyError(f"The key file {path} cannot be read: {err.strerror}.") from None
    if raw.isascii() and raw.rstrip(b"\r\n").decode().isprintable():
        raw = raw.rstrip(b"\r\n")  # a typed or base64 key: its line ending is not part of it
    if len(raw) < 32:
        raise ArchiveKeyError(f"The key file {path} holds fewer than 32 bytes; make one with "
                              "`head -c 32 /dev/urandom > backup.key`.")
    return raw


def is_encrypted(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _aead(key_material: bytes, salt: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"collab backup archive").derive(key_material)
    return AESGCM(key)


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, 1 if last else 0)


class EncryptingWriter:
    """A write-only file object: what is written goes out sealed, chunk by chunk, to `raw`."""

    def __init__(self, raw, key_material: bytes) -> None:
        self.raw = raw
        salt, self.prefix = os.urandom(16), os.urandom(8)
        self.aead = _aead(key_material, salt)
        self.buf = bytearray()
        self.index = 0
        raw.write(MAGIC + salt + self.prefix)

    def write(self, data) -> int:
        self.buf += data
        while len(self.buf) > CHUNK:  # keep at least one byte back: the last chunk must be sealed as the last
            self._seal(bytes(self.buf[:CHUNK]), last=False)
            del self.buf[:CHUNK]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.index)
        sealed = self.aead.encrypt(nonce, plain, _aad(self.index, last))
        self.raw.write(_LEN.pack(len(sealed)) + sealed)
        self.index += 1

    def close(self) -> None:
        self._seal(bytes(self.buf), last=True)
        self.buf.clear()

    def flush(self) -> None:
        self.raw.flush()


class DecryptingReader:
    """A read-only file object over an archive made by EncryptingWriter."""

    def __init__(self, raw, key_material: bytes) -> None:
        self.raw = raw
        head = raw.read(len(MAGIC) + 24)
        if not head.startswith(MAGIC):
            raise ArchiveKeyError("This archive is not encrypted; restore it without --key-file.")
        self.aead = _aead(key_material, head[len(MAGIC):len(MAGIC) + 16])
        self.prefix = head[len(MAGIC) + 16:]
        self.buf = b""
        self.index = 0
        self.done = False

    def _next(self) -> None:
        size = self.raw.read(_LEN.size)
        if len(size) < _LEN.size:
            raise ArchiveKeyError("The archive is truncated: its last part is missing.")
        sealed = self.raw.read(_LEN.unpack(size)[0])
        nonce = self.prefix + struct.pack(">I", self.index)
        for last in (False, True):
            try:
                plain = self.aead.decrypt(nonce, sealed, _aad(self.index, last))
            except InvalidTag:
                continue
            self.index += 1
            self.done = last
            self.buf += plain
            return
        raise ArchiveKeyError("The archive cannot be decrypted with this key file (wrong key, or the file was altered).")

    def read(self, n: int = -1) -> bytes:
        while not self.done and (n < 0 or len(self.buf) < n):
            self._next()
        if n < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:n], self.buf[n:]
        return out
