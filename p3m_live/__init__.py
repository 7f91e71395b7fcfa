"""p3m-live: real-time portrait matting with P3M-Net."""

__version__ = "0.1.0"
