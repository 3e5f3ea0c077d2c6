"""Sub-commands that are more than a call into one package: ``neurogrip run`` and its console
(:mod:`~edge.commands.run`), ``info``/``synth``/``record`` (:mod:`~edge.commands.recordings`),
``replay-outputs`` (:mod:`~edge.commands.replay_outputs`), ``doctor`` (:mod:`~edge.commands.doctor`)
and ``neurogrip demo``'s edge half (:mod:`~edge.commands.demo`).
"""
