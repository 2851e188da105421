"""deploy: the contract between training time and run time.

Preprocessing, model cards, runtime backends and the `Classifier` live here and import no
torch, so `pip install edgevision[runtime]` runs any exported model on a Raspberry Pi. The
torch side (exporters, parity checks) is `deploy.export`, imported only when exporting.
"""

from deploy.version import __version__

__all__ = ["__version__"]
