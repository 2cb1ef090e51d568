"""Plan, then execute: the pure planner and the executor of its steps.

``plan`` turns a pipeline and its recorded state into steps with reasons (``planned`` is the
plan as data); ``executor`` runs them (the training chain in order, uploads and scenes
concurrently); ``steps`` says how each step kind runs; ``training`` and ``scene`` are the step
functions; ``remote`` makes every POST exactly-once where Bria allows proof; ``context`` is what
a step is given; ``pacing``, ``outputs``, ``names``, ``interrupts`` and ``crashpoints`` serve them.
"""
