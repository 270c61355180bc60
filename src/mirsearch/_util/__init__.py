"""The lowest floor: helpers every layer may use (atomic writes, directory locks). Imports nothing of mirsearch
except :mod:`mirsearch.errors`."""

from mirsearch._util.files import atomic_path, atomic_save_npy, atomic_write_bytes, atomic_write_text, directory_lock

__all__ = ["atomic_path", "atomic_save_npy", "atomic_write_bytes", "atomic_write_text", "directory_lock"]
