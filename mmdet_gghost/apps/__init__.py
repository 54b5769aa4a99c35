"""Applications, the package's top layer (above :mod:`..benchmark`): each
combines everything below (train, evaluate, time, plot) into one job driven
by a script in ``tools/`` (``make demo`` is ``tools/demo.py`` over
:func:`.demo.run_demo`).  Nothing in the library imports them.
"""
