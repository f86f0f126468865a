"""The node agent: stage one (PXE-booted initramfs) and provisiond (runtime OS), one package."""

__version__ = "2.0.0.dev0"
