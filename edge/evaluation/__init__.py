"""How well a bundle decodes: window metrics (:mod:`~edge.evaluation.metrics`), continuous-use scores
(:mod:`~edge.evaluation.scoring`), replays of a recording through the runtime's own path
(:mod:`~edge.evaluation.replay`), a labelled run's truth (:mod:`~edge.evaluation.live`) and the gesture
evaluation (:mod:`~edge.evaluation.gesture`).  Numpy only: it all runs on the Pi.
"""
