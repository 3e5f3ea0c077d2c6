"""The signal chain: the bit-exact fixed-point filter (:mod:`~edge.chain.dsp`) and the stage that
runs a bundle's filter, decimation and windowing on streamed chunks (:mod:`~edge.chain.signal_chain`).

The C kernel behind both is loaded by :mod:`edge.native` (docs/design.md § 2).
"""
