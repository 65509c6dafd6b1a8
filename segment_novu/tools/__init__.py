"""The ``segment-novu`` command: ``check``, ``replay`` and ``subscriber-hash``."""
