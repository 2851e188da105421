"""The toolkit's version, as installed (falls back to the source tree's when run uninstalled)."""

from importlib import metadata

try:
    __version__ = metadata.version("edgevision")
except metadata.PackageNotFoundError:  # running from a source checkout without `pip install`
    __version__ = "0.1.0"
