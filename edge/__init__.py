"""neurogrip edge: everything the Raspberry Pi runs (numpy only, no TensorFlow).

Sub-modules are imported lazily by their users so that ``import edge`` stays
cheap on the Pi; see ``edge.recordings`` (file readers), ``edge.recordings.synthetic``
(realistic synthetic EEG) and ``edge.cli`` (the ``neurogrip`` command).
"""

__version__ = "0.1.0"
