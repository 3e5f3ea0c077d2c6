"""How well a bundle decodes: window metrics (:mod:`~edge.evaluation.metrics`), continuous-use scores
(:mod:`~edge.evaluation.scoring`), replays of a recording through the runtime's own path
(:mod:`~edge.evaluation.replay`), a labelled run's truth (:mod:`~edge.evaluation.live`), the gesture
evaluation (:mod:`~edge.evaluation.gesture`) and ``neurogrip evaluate`` (:mod:`~edge.evaluation.evaluate`):
the held-out part of a task's data (:mod:`~edge.evaluation.held_out`, read by
:mod:`~edge.evaluation.datasets`) cut into windows by the bundle's chain (:mod:`~edge.evaluation.windows`).
Numpy only: it all runs on the Pi (training takes its data, windows and held-out blocks from here).
"""
